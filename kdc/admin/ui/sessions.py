"""Server-side records of logged-in admin sessions, in Redis.

The browser holds a signed cookie with a random session id; Redis holds
what the id means: the account, when the session began and when it was last
used.  Keeping the record on the server is what makes logout real (a copied
cookie stops working) and lets the UI enforce both timeouts:

* idle: unused for ``idle_s``, the session ends;
* absolute: ``lifetime_s`` after login it ends however busy it is.

Times are values from the injected clock; Redis TTLs only collect garbage.
Records are stored under a hash of the id, so a dump of Redis hands out no
live session.  Every Redis call fails closed (``StoreUnavailable``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from tally_protocol import Random
from tally_runtime.redis_store import store_errors

SESSION_ID_BYTES = 32


@dataclass(frozen=True, slots=True)
class UiSession:
    """A live admin session: whose it is and its timestamps (epoch seconds)."""

    account: str
    created: float
    seen: float


class UiSessions:
    """Opens, resumes and closes admin sessions of one realm."""

    def __init__(self, redis_client: redis.Redis, realm: str, *, idle_s: int, lifetime_s: int,
                 clock: Callable[[], float] = time.time, rng: Random = os.urandom) -> None:
        self._redis = redis_client
        self._prefix = f"tally:admin-ui:{realm}:session:"  # one key per session, no hash tag: spread over the slots
        self._idle_s = idle_s
        self._lifetime_s = lifetime_s
        self._clock = clock
        self._rng = rng

    def _key(self, sid: str) -> str:
        return self._prefix + hashlib.sha256(sid.encode()).hexdigest()

    def _store(self, sid: str, session: UiSession) -> None:
        doc = {"account": session.account, "created": session.created, "seen": session.seen}
        with store_errors():
            # GC slack beyond the idle limit: the clock, not the TTL, decides expiry.
            self._redis.set(self._key(sid), json.dumps(doc), ex=self._idle_s + 60)

    def open(self, account: str) -> str:
        """A new session for ``account``; returns its id (a fresh one at every login: no fixation)."""
        sid = self._rng(SESSION_ID_BYTES).hex()
        now = self._clock()
        self._store(sid, UiSession(account, now, now))
        return sid

    def resume(self, sid: str) -> UiSession | None:
        """The live session ``sid`` (its last use now recorded), or None if unknown, idle or too old."""
        with store_errors():
            raw = self._redis.get(self._key(sid))
        if raw is None:
            return None
        try:
            doc = json.loads(raw)
            session = UiSession(str(doc["account"]), float(doc["created"]), float(doc["seen"]))
        except (ValueError, KeyError, TypeError):
            self.close(sid)
            return None
        now = self._clock()
        if now - session.seen > self._idle_s or now - session.created > self._lifetime_s or now < session.created:
            self.close(sid)
            return None
        session = UiSession(session.account, session.created, now)
        self._store(sid, session)
        return session

    def close(self, sid: str) -> None:
        with store_errors():
            self._redis.delete(self._key(sid))
