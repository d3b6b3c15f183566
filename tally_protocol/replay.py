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
* RFC 4120 §3.2.3: a cache that may have lost entries (it has a recorded
  birth time, and a missing record means a loss) refuses authenticators
  dated before its birth plus the skew window: any of them could already
  have been presented and forgotten.
"""

from __future__ import annotations

import math
import struct
from typing import Protocol

from .crypto import digest
from .errors import ReplayCacheRecovering, ReplayDetected
from .principal import Principal

REPLAY_KEY_SIZE = 16


class ReplayCache(Protocol):
    """Where accepted authenticators are recorded.

    ``claim`` atomically records ``key`` for ``ttl_ms`` milliseconds and returns
    True, or returns False when it is already recorded.  It raises
    ``StoreUnavailable`` when it cannot tell: callers then accept nothing; and
    ``ReplayCacheRecovering`` when the authenticator's ``ctime`` falls before
    the cache's birth plus ``max_skew_s`` (see ``refuse_before_recovered``).
    """

    def claim(self, key: bytes, ttl_ms: int, *, ctime: int, max_skew_s: int) -> bool: ...


def replay_key(service: Principal, client: Principal, ctime: int, nonce: bytes) -> bytes:
    return digest(
        b"tallystick-v1 replay", str(service).encode(), str(client).encode(),
        struct.pack(">Q", ctime), nonce,
    )[:REPLAY_KEY_SIZE]


def replay_ttl_ms(ctime: int, now: float, max_skew_s: int, margin_s: int) -> int:
    """Time until ``ctime`` leaves the acceptance window, plus the margin; at least 1 s."""
    return max(1000, int((ctime + max_skew_s + margin_s - now) * 1000))


def refuse_before_recovered(birth: float, ctime: int, max_skew_s: int, now: float) -> None:
    """Raise ``ReplayCacheRecovering`` for an authenticator the cache may have forgotten.

    An authenticator with ``ctime < birth + max_skew_s`` could have been
    accepted, and recorded, before the cache lost its entries; from
    ``birth + max_skew_s`` on, every acceptable authenticator is newer than
    the loss.  ``retry_after`` counts from ``now`` (at least 1 s).
    """
    recovered_at = birth + max_skew_s
    if ctime < recovered_at:
        raise ReplayCacheRecovering(retry_after=max(1, math.ceil(recovered_at - now)))


def claim_or_reject(cache: ReplayCache, key: bytes, ttl_ms: int, *, ctime: int, max_skew_s: int) -> None:
    """Record an authenticator; a second presentation raises ``ReplayDetected``."""
    if not cache.claim(key, ttl_ms, ctime=ctime, max_skew_s=max_skew_s):
        raise ReplayDetected()
