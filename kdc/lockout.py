"""Failed pre-authentication lockout and per-address rate limiting, in Redis.

Rules this module keeps:

* Failures are counted per principal name whether or not the name exists,
  so lockout behaves identically for real and unknown names and reveals
  nothing (the AS answers unknown names with PREAUTH_FAILED too).
* Times come from the injected clock and are stored as values: Redis TTLs
  only collect garbage, so a fixed clock in tests decides every outcome.
* Both fail closed: a Redis error is ``StoreUnavailable``, never "allow".
* Keys are hash-tagged per name (lockout) or per address (rate), spreading
  the load over a cluster's slots instead of one hot realm slot.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from tally_protocol import Random
from tally_protocol.errors import ConfigurationError, LockedOut, RateLimited
from tally_runtime.redis_store import store_errors


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """``threshold`` failures within ``window_s`` lock the name for ``duration_s``."""

    threshold: int = 5
    window_s: int = 900
    duration_s: int = 900

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.window_s < 1 or self.duration_s < 1:
            raise ConfigurationError("lockout threshold, window and duration must be positive")


class Lockout:
    """Counts failed pre-authentications in a sliding window (a sorted set of failure times)."""

    def __init__(self, redis_client: redis.Redis, realm: str, policy: LockoutPolicy = LockoutPolicy(),
                 clock: Callable[[], float] = time.time, rng: Random = os.urandom) -> None:
        self._redis = redis_client
        self._realm = realm
        self.policy = policy
        self._clock = clock
        self._rng = rng

    def _keys(self, name: str) -> tuple[str, str]:
        tag = f"tally:lock:{{{self._realm}:{name}}}"
        return f"{tag}:fails", f"{tag}:until"

    def check(self, name: str) -> None:
        """``LockedOut(retry_after=s)`` while ``name`` is locked."""
        _, until_key = self._keys(name)
        with store_errors():
            raw = self._redis.get(until_key)
        if raw is None:
            return
        remaining = float(raw) - self._clock()
        if remaining > 0:
            raise LockedOut(retry_after=max(1, math.ceil(remaining)))

    def record_failure(self, name: str) -> bool:
        """Count one failure; returns True when this failure locked the name."""
        fails_key, until_key = self._keys(name)
        now = self._clock()
        p = self.policy
        with store_errors():
            pipe = self._redis.pipeline(transaction=True)
            pipe.zadd(fails_key, {f"{now!r}:{self._rng(8).hex()}": now})
            pipe.zremrangebyscore(fails_key, "-inf", now - p.window_s)
            pipe.zcard(fails_key)
            pipe.expire(fails_key, p.window_s)
            count = int(pipe.execute()[2])
            if count < p.threshold:
                return False
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(until_key, repr(now + p.duration_s), px=p.duration_s * 1000)
            pipe.delete(fails_key)
            pipe.execute()
        return True

    def record_success(self, name: str) -> None:
        """A successful pre-authentication forgets earlier failures."""
        fails_key, _ = self._keys(name)
        with store_errors():
            self._redis.delete(fails_key)


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    """At most ``requests`` per ``window_s`` from one client address."""

    requests: int = 30
    window_s: int = 1

    def __post_init__(self) -> None:
        if self.requests < 1 or self.window_s < 1:
            raise ConfigurationError("rate limit requests and window must be positive")


class RateLimiter:
    """Fixed-window counter per client address (INCR + EXPIRE in one transaction)."""

    def __init__(self, redis_client: redis.Redis, policy: RateLimitPolicy = RateLimitPolicy(),
                 clock: Callable[[], float] = time.time, prefix: str = "tally:rate") -> None:
        self._redis = redis_client
        self.policy = policy
        self._clock = clock
        self._prefix = prefix

    def hit(self, address: str) -> None:
        """Count one request from ``address``; ``RateLimited`` beyond the limit."""
        window = int(self._clock()) // self.policy.window_s
        key = f"{self._prefix}:{{{address}}}:{window}"
        with store_errors():
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(key)
            pipe.expire(key, self.policy.window_s + 1)
            count = int(pipe.execute()[0])
        if count > self.policy.requests:
            raise RateLimited(retry_after=self.policy.window_s)
