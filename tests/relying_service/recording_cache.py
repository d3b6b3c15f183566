"""A replay cache that records every claim, to show which requests reach the store."""

from __future__ import annotations

from tally_protocol.replay import ReplayCache
from tally_runtime.replay_cache import InMemoryReplayCache
from tests.relying_service.memory_realm import NOW


class RecordingCache:
    def __init__(self, inner: ReplayCache | None = None) -> None:
        self.inner = inner or InMemoryReplayCache(clock=lambda: NOW, birth=0)
        self.claims: list[tuple[bytes, int]] = []

    def claim(self, key: bytes, ttl_ms: int, *, ctime: int, max_skew_s: int) -> bool:
        self.claims.append((key, ttl_ms))
        return self.inner.claim(key, ttl_ms, ctime=ctime, max_skew_s=max_skew_s)
