"""Replay caches: Redis (shared by every replica) and in-process.

Both keep the ``tally_protocol.replay.ReplayCache`` contract and run the same
contract test suite.  Redis uses one atomic ``SET key 1 NX PX ttl``: exactly
one of any number of concurrent presentations wins, on whichever replica.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis

from tally_protocol.replay import REPLAY_KEY_SIZE

from .redis_store import store_errors

#: Short prefix: the key is the prefix plus 16 raw hash bytes, so memory per
#: entry stays small and keys hash uniformly over cluster slots.
PREFIX = b"tr:"


class RedisReplayCache:
    def __init__(self, client: redis.Redis, prefix: bytes = PREFIX) -> None:
        self._client = client
        self._prefix = prefix

    def claim(self, key: bytes, ttl_ms: int) -> bool:
        if len(key) != REPLAY_KEY_SIZE or ttl_ms <= 0:
            raise ValueError("replay key must be 16 bytes and ttl positive")
        with store_errors():
            return bool(self._client.set(self._prefix + key, b"1", nx=True, px=ttl_ms))


class InMemoryReplayCache:
    """For a single process (tests, one-replica deployments without Redis)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[bytes, float] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def claim(self, key: bytes, ttl_ms: int) -> bool:
        if len(key) != REPLAY_KEY_SIZE or ttl_ms <= 0:
            raise ValueError("replay key must be 16 bytes and ttl positive")
        now = self._clock()
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
