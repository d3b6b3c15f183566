"""Secrets shown once: a new client key file, an enrollment token, a pairing code.

After a POST creates a secret, the UI redirects to a page that shows it
(post/redirect/get), and that page must work exactly once: a reload, the
back button or a second tab finds nothing.  So the secret waits in a
one-time slot:

* Redis holds it for at most ``ttl_s`` (5 minutes), encrypted with Fernet
  under a fresh random key, and gives it out once (GETDEL);
* the slot id and its key travel only in the admin's own signed session
  cookie, so Redis alone (a dump, a replica) never holds a readable secret,
  and the cookie alone opens nothing once the slot is taken or expired.

The page that shows it is sent with ``Cache-Control: no-store``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from cryptography.fernet import Fernet, InvalidToken

from tally_protocol import Random
from tally_runtime.redis_store import store_errors

SLOT_ID_BYTES = 16
DEFAULT_TTL_S = 300


@dataclass(frozen=True)
class SlotTicket:
    """What the session cookie keeps to open one slot: its id and its key (never logged)."""

    slot_id: str
    key: str = field(repr=False)

    def to_dict(self) -> dict[str, str]:
        return {"id": self.slot_id, "key": self.key}

    @classmethod
    def from_dict(cls, data: Any) -> SlotTicket | None:
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str) or not isinstance(data.get("key"), str):
            return None
        return cls(data["id"], data["key"])


class OneTimeSecrets:
    """Stash a JSON document once; take it back once."""

    def __init__(self, redis_client: redis.Redis, realm: str, *, ttl_s: int = DEFAULT_TTL_S,
                 clock: Callable[[], float] = time.time, rng: Random = os.urandom) -> None:
        self._redis = redis_client
        self._prefix = f"tally:admin-ui:{realm}:once:"  # one key per slot, no hash tag: spread over the slots
        self._ttl_s = ttl_s
        self._clock = clock
        self._rng = rng

    def _key(self, slot_id: str) -> str:
        return self._prefix + hashlib.sha256(slot_id.encode()).hexdigest()

    def stash(self, document: Mapping[str, Any]) -> SlotTicket:
        ticket = SlotTicket(self._rng(SLOT_ID_BYTES).hex(), base64.urlsafe_b64encode(self._rng(32)).decode())
        token = Fernet(ticket.key.encode()).encrypt_at_time(json.dumps(dict(document)).encode(), int(self._clock()))
        with store_errors():
            self._redis.set(self._key(ticket.slot_id), token, ex=self._ttl_s)
        return ticket

    def take(self, ticket: SlotTicket) -> dict[str, Any] | None:
        """The stashed document, removed from the store; None when taken, expired or not ours."""
        with store_errors():
            token = self._redis.getdel(self._key(ticket.slot_id))
        if token is None:
            return None
        try:
            raw = token if isinstance(token, bytes) else str(token).encode()
            plain = Fernet(ticket.key.encode()).decrypt_at_time(raw, self._ttl_s, int(self._clock()))
            document = json.loads(plain)
        except (InvalidToken, ValueError, TypeError):
            return None
        return document if isinstance(document, dict) else None

    def exists(self, ticket: SlotTicket) -> bool:
        """Whether the slot still waits (not taken, not expired); reveals nothing of its content."""
        with store_errors():
            return bool(self._redis.exists(self._key(ticket.slot_id)))

    def discard(self, ticket: SlotTicket) -> None:
        with store_errors():
            self._redis.delete(self._key(ticket.slot_id))
