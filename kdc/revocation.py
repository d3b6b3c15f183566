"""The realm's revocation list in Redis: tickets refused before they expire.

Two kinds of entries, both bounded in time because no ticket outlives the
realm's longest ticket life:

* **principal revoked-before times**: every ticket of the principal whose
  ``authtime`` is earlier is refused.  ``authtime`` is the time of the login
  (the AS exchange); service tickets and renewed TGTs keep it, so one entry
  kills every ticket of every session opened before the revocation.  A new
  login gets a later ``authtime`` and works again: to keep a principal out,
  disable it as well.  An entry is dropped once its time plus the longest
  ticket life has passed.
* **ticket ids**: one ticket (the KDC's issuance audit events name its
  ``ticket_id``).  Kept until the ticket's end, the ``until`` given.
  Revoking a TGT's id stops it buying service tickets and renewals; service
  tickets it already bought have their own ids.

Key layout, one hash tag for the list (``{REALM:rev}``): a snapshot reads the
counter and both entries in one MULTI, and a write bumps the counter with its
entry, so the three keys must share a Redis Cluster slot.  The tag is the
list's own, not the principal database's, so the two land on different slots:

* ``tally:{REALM:rev}:p``  hash ``principal -> revoked-before`` (epoch seconds)
* ``tally:{REALM:rev}:t``  sorted set ``ticket id (hex) -> until``, pruned by
  score on every write and expiring as a whole (EXPIRE) after its last entry
* ``tally:{REALM:rev}:v``  a counter bumped by every change

Reading: ``is_revoked`` keeps the whole (small) list in process memory.  It
reads the counter at most once per ``cache_s`` (1 s for relying services)
and reloads the list only when the counter moved, so the hot path costs at
most one Redis GET per second per process, and a revocation reaches every
process within ``cache_s`` plus one request.  With ``cache_s=0`` (the KDC)
every check reads the counter: the KDC reads it in its exchange's batch
(``queue_version``) and passes it to ``snapshot_at``.  An unreachable store
is ``StoreUnavailable``: fail closed, as everywhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from tally_protocol.errors import InvalidRequest
from tally_protocol.messages.ticket import TICKET_ID_SIZE
from tally_protocol.principal import Principal
from tally_runtime.redis_settings import Durability
from tally_runtime.redis_store import confirm_replicated, store_errors, transact

from .key_policy import CEILING_TICKET_S
from .store_batch import Batch, Reply

#: How stale a relying service's copy may be, in seconds.
DEFAULT_CACHE_S = 1.0


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class RevocationSnapshot:
    """The list as read at one version: ``principals`` name -> revoked-before, ``tickets`` hex id -> until."""

    version: int
    principals: dict[str, int]
    tickets: dict[str, int]

    def revokes(self, client: Principal, authtime: int, ticket_id: bytes, now: float) -> bool:
        before = self.principals.get(str(client))
        if before is not None and authtime < before:
            return True
        until = self.tickets.get(ticket_id.hex())
        return until is not None and now < until


_EMPTY = RevocationSnapshot(-1, {}, {})


def _version(raw: Any) -> int:
    return int(raw) if raw is not None else 0


class RevocationList:
    """One realm's revocation list (``redis`` shared by the KDC, the admin tools and every relying service)."""

    def __init__(self, redis_client: redis.Redis, realm: str, clock: Callable[[], float] = time.time, *,
                 cache_s: float = DEFAULT_CACHE_S, longest_ticket_s: int = CEILING_TICKET_S,
                 durability: Durability | None = None) -> None:
        self.realm = Principal.tgs(realm).realm
        self._redis = redis_client
        self._clock = clock
        if cache_s < 0 or longest_ticket_s < 1:
            raise InvalidRequest("cache_s must be >= 0 and longest_ticket_s >= 1")
        self._cache_s = cache_s
        self._longest_ticket_s = longest_ticket_s
        prefix = f"tally:{{{self.realm}:rev}}"
        self._principals_key = f"{prefix}:p"
        self._tickets_key = f"{prefix}:t"
        self._version_key = f"{prefix}:v"
        self._ack_key = f"{prefix}:ack"
        self._durability = durability or Durability()
        self._lock = threading.Lock()
        self._snapshot = _EMPTY
        self._checked_at: float | None = None

    # -- writing --------------------------------------------------------------

    def revoke_principal(self, principal: Principal, before: int | None = None) -> int:
        """Refuse every ticket of ``principal`` whose ``authtime`` is earlier than ``before``; returns it.

        Default: the next whole second, so a ticket issued in the same second
        as the revocation, just before it, is refused too (a login in that
        second must be repeated a second later).
        """
        if principal.realm != self.realm:
            raise InvalidRequest(f"{principal} is not in realm {self.realm}")
        now = self._clock()
        when = int(now) + 1 if before is None else int(before)
        stale_before = int(now) - self._longest_ticket_s

        def tx(pipe: Any) -> None:
            current = pipe.hgetall(self._principals_key)
            stale = [name for name, t in current.items() if int(t) < stale_before]
            pipe.multi()
            if stale:
                pipe.hdel(self._principals_key, *stale)
            pipe.hset(self._principals_key, str(principal), when)
            pipe.incr(self._version_key)

        self._transact(self._principals_key, tx)
        return when

    def revoke_ticket(self, ticket_id: bytes, until: int) -> None:
        """Refuse the ticket ``ticket_id`` until ``until`` (its end time; later it is refused as expired anyway)."""
        if len(ticket_id) != TICKET_ID_SIZE:
            raise InvalidRequest(f"a ticket id is {TICKET_ID_SIZE} bytes ({2 * TICKET_ID_SIZE} hex digits)")
        now = int(self._clock())
        if until <= now:
            raise InvalidRequest("the ticket has already ended; nothing to revoke")
        until = min(until, now + self._longest_ticket_s)  # no ticket lives longer: keeps the list bounded

        def tx(pipe: Any) -> None:
            last = pipe.zrange(self._tickets_key, -1, -1, withscores=True)
            expires = max([until, *(int(score) for _, score in last)])
            pipe.multi()
            pipe.zremrangebyscore(self._tickets_key, "-inf", now)
            pipe.zadd(self._tickets_key, {ticket_id.hex(): until})
            pipe.expire(self._tickets_key, expires - now + 1)  # relative: Redis's clock may differ from ours
            pipe.incr(self._version_key)

        self._transact(self._tickets_key, tx)

    def _transact(self, key: str, fn: Callable[[Any], None]) -> None:
        transact(self._redis, [key], fn, contended="too many concurrent revocations; try again")
        # A revocation a failover forgets would make revoked tickets good again: like a replay
        # claim, it counts only once the replicas the store is configured to require have it.
        confirm_replicated(self._redis, self._ack_key, self._durability, what="the revocation")

    # -- reading --------------------------------------------------------------

    def snapshot(self) -> RevocationSnapshot:
        """The list as of at most ``cache_s`` ago (one GET when due, a reload only when it changed)."""
        if self._fresh(self._clock()):
            return self._snapshot
        with self._lock:
            now = self._clock()
            if self._fresh(now):  # another thread refreshed while this one waited
                return self._snapshot
            with store_errors():
                raw = self._redis.get(self._version_key)
            return self._refresh(_version(raw), now)

    def queue_version(self, batch: Batch) -> Reply[int]:
        """Read the list's version in ``batch``, for ``snapshot_at``."""
        return batch.add(lambda replies: _version(replies[0]), ("GET", self._version_key))

    def snapshot_at(self, version: int) -> RevocationSnapshot:
        """The list as of ``version`` or later, read just now by the caller (reloaded only when it moved)."""
        if version == self._snapshot.version:
            return self._snapshot
        with self._lock:
            return self._refresh(version, self._clock())

    def _refresh(self, version: int, now: float) -> RevocationSnapshot:
        """Under the lock: reload when ``version`` (just read) differs from the copy's."""
        if version != self._snapshot.version:
            with store_errors():
                self._snapshot = self._load(now)
        self._checked_at = now
        return self._snapshot

    def _fresh(self, now: float) -> bool:
        checked = self._checked_at
        # A clock stepping back counts as stale: the copy is never trusted for longer than cache_s.
        return checked is not None and 0 <= now - checked < self._cache_s

    def _load(self, now: float) -> RevocationSnapshot:
        pipe: Any
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(self._version_key)
            pipe.hgetall(self._principals_key)
            pipe.zrangebyscore(self._tickets_key, f"({int(now)}", "+inf", withscores=True)
            raw_version, principals, tickets = pipe.execute()
        return RevocationSnapshot(
            version=int(raw_version) if raw_version is not None else 0,
            principals={_text(name): int(t) for name, t in principals.items()},
            tickets={_text(tid): int(until) for tid, until in tickets},
        )

    def revoked_at(self, version: int, client: Principal, authtime: int, ticket_id: bytes) -> bool:
        """``is_revoked`` against the list as of ``version``, which the caller read just now (``queue_version``)."""
        return self.snapshot_at(version).revokes(client, authtime, ticket_id, self._clock())

    def is_revoked(self, client: Principal, authtime: int, ticket_id: bytes) -> bool:
        """Whether a ticket of ``client`` from ``authtime`` with ``ticket_id`` is revoked (cached ``cache_s``)."""
        return self.snapshot().revokes(client, authtime, ticket_id, self._clock())
