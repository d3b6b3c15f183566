"""Replay cache contract and the derivation of its keys and lifetimes.

Rules this module keeps:

* The key is derived only from fields the AEAD authenticated (service,
  client, ctime, 128-bit authenticator nonce), never from an unauthenticated
  field, so an attacker cannot make two presentations look different.
* It is scoped by service and is a uniform hash, so entries spread evenly
  over a Redis Cluster's slots.
* An entry lives until the authenticator's timestamp leaves the skew window
  (plus a small margin for replicas' clock differences), so the cache stays
  bounded by request rate × window.
"""

from __future__ import annotations

import struct
from typing import Protocol

from .crypto import digest
from .errors import ReplayDetected
from .principal import Principal

REPLAY_KEY_SIZE = 16


class ReplayCache(Protocol):
    """Where accepted authenticators are recorded.

    ``claim`` atomically records ``key`` for ``ttl_ms`` milliseconds and returns
    True, or returns False when it is already recorded.  It raises
    ``StoreUnavailable`` when it cannot tell: callers then accept nothing.
    """

    def claim(self, key: bytes, ttl_ms: int) -> bool: ...


def replay_key(service: Principal, client: Principal, ctime: int, nonce: bytes) -> bytes:
    return digest(
        b"tallystick-v1 replay", str(service).encode(), str(client).encode(),
        struct.pack(">Q", ctime), nonce,
    )[:REPLAY_KEY_SIZE]


def replay_ttl_ms(ctime: int, now: float, max_skew_s: int, margin_s: int) -> int:
    """Time until ``ctime`` leaves the acceptance window, plus the margin; at least 1 s."""
    return max(1000, int((ctime + max_skew_s + margin_s - now) * 1000))


def claim_or_reject(cache: ReplayCache, key: bytes, ttl_ms: int) -> None:
    """Record an authenticator; a second presentation raises ``ReplayDetected``."""
    if not cache.claim(key, ttl_ms):
        raise ReplayDetected()
