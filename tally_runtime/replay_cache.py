"""Replay caches: Redis (shared by every replica) and in-process.

Both keep the ``tally_protocol.replay.ReplayCache`` contract and run the same
contract test suite.  Redis uses one atomic ``SET key 1 NX PX ttl``: exactly
one of any number of concurrent presentations wins, on whichever replica.

Loss detection (RFC 4120 §3.2.3, docs/protocol.md "Losing the replay
cache"): each cache has a birth time.  Redis keeps it in marker keys written
once (``SET NX``, no expiry) and read in the same ``MULTI`` as every claim, so
a flush, a restart without persistence or a failover that missed writes shows
as a missing marker: it is re-created with birth = now and authenticators
dated before birth + skew are refused with ``ReplayCacheRecovering``.  The
in-process cache is born with its process: a new process forgot everything.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import redis

from tally_protocol.errors import StoreUnavailable
from tally_protocol.replay import REPLAY_KEY_SIZE, refuse_before_recovered

from .redis_store import store_errors

#: Short prefix: the key is the prefix, a hash tag and 16 raw hash bytes, so
#: memory per entry stays small and keys hash uniformly over cluster slots.
PREFIX = b"tr:"
#: Suffix of a shard's birth marker; no replay key (16 bytes) ends this way at this length.
MARKER = b"birth"
#: Every replay key and its shard's marker share a hash tag (the hex of the key's
#: first byte), so one MULTI touches one slot: Redis Cluster safe.  256 tags
#: spread over a cluster's masters; a shard that loses writes loses its markers too.
SHARDS = 256


def shard_tag(key: bytes) -> bytes:
    return b"{%02x}" % key[0]


class RedisReplayCache:
    def __init__(self, client: redis.Redis, prefix: bytes = PREFIX,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock

    def entry_key(self, key: bytes) -> bytes:
        return self._prefix + shard_tag(key) + key

    def marker_key(self, key: bytes) -> bytes:
        return self._prefix + shard_tag(key) + MARKER

    def claim(self, key: bytes, ttl_ms: int, *, ctime: int, max_skew_s: int) -> bool:
        if len(key) != REPLAY_KEY_SIZE or ttl_ms <= 0:
            raise ValueError("replay key must be 16 bytes and ttl positive")
        now = self._clock()
        marker = self.marker_key(key)
        with store_errors():
            pipe = self._client.pipeline(transaction=True)
            pipe.set(marker, str(math.ceil(now)).encode(), nx=True)  # re-born after a loss, else untouched
            pipe.get(marker)
            pipe.set(self.entry_key(key), b"1", nx=True, px=ttl_ms)
            reborn, raw_birth, claimed = pipe.execute()
        try:
            birth = float(raw_birth)
        except (TypeError, ValueError):  # someone wrote the marker by hand: we cannot tell, so fail closed
            raise StoreUnavailable("the replay cache's birth marker is unreadable") from None
        if reborn:
            # The first claim to see a loss dates every shard's rebirth, so one window covers
            # the whole store (shards that kept their marker keep their birth: SET NX).
            self.seed(birth=birth)
        # A refused authenticator stays recorded: the client retries with a fresh one.
        refuse_before_recovered(birth, ctime, max_skew_s, now)
        return bool(claimed)

    def seed(self, birth: float = 0.0) -> None:
        """Write every shard's marker unless present (``SET NX``, one pipeline, split per node on a Cluster).

        With ``birth=0``: for a store created empty with its realm, where no
        authenticator can predate the keys (``kdc init``).  After a loss, with
        the loss's rebirth, so every shard recovers in the same window."""
        with store_errors():
            pipe = self._client.pipeline(transaction=False)
            for tag in range(SHARDS):
                pipe.set(self._prefix + shard_tag(bytes([tag])) + MARKER, str(math.ceil(birth)).encode(), nx=True)
            pipe.execute()


class InMemoryReplayCache:
    """For a single process (tests, one-replica deployments without Redis).

    ``birth`` defaults to the construction time: a new process has no record
    of what an earlier one accepted.
    """

    def __init__(self, clock: Callable[[], float] = time.time, *, birth: float | None = None) -> None:
        self._clock = clock
        self._birth = clock() if birth is None else birth
        self._entries: dict[bytes, float] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def claim(self, key: bytes, ttl_ms: int, *, ctime: int, max_skew_s: int) -> bool:
        if len(key) != REPLAY_KEY_SIZE or ttl_ms <= 0:
            raise ValueError("replay key must be 16 bytes and ttl positive")
        now = self._clock()
        refuse_before_recovered(self._birth, ctime, max_skew_s, now)
        with self._lock:
            if now >= self._next_sweep:  # amortised expiry keeps memory bounded
                self._entries = {k: exp for k, exp in self._entries.items() if exp > now}
                self._next_sweep = now + 1.0
            expires = self._entries.get(key)
            if expires is not None and expires > now:
                return False
            self._entries[key] = now + ttl_ms / 1000
            return True

    def __len__(self) -> int:
        return len(self._entries)
