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
* The KDC's exchanges read a name's state and count a request through a
  ``Batch`` (``queue_state``, ``RateLimiter.queue``), in the same round trip
  as their other reads; the checks on the answers are the same.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from tally_protocol import Random
from tally_protocol.errors import ConfigurationError, LockedOut, RateLimited
from tally_runtime.redis_store import store_errors

from .store_batch import Batch, Reply, send_now


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """``threshold`` failures within ``window_s`` lock the name for ``duration_s``."""

    threshold: int = 5
    window_s: int = 900
    duration_s: int = 900

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.window_s < 1 or self.duration_s < 1:
            raise ConfigurationError("lockout threshold, window and duration must be positive")


@dataclass(frozen=True, slots=True)
class LockState:
    """A name's lockout as read: locked until ``until`` (epoch seconds; None: never locked), failures counted?"""

    until: float | None
    failures: bool

    @classmethod
    def from_replies(cls, replies: list[Any]) -> LockState:
        raw_until, fails = replies
        return cls(None if raw_until is None else float(raw_until), bool(fails))


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

    def queue_state(self, batch: Batch, name: str) -> Reply[LockState]:
        """Read ``name``'s lock and whether failures are counted, in ``batch`` (two single-key reads)."""
        fails_key, until_key = self._keys(name)
        return batch.add(LockState.from_replies, ("GET", until_key), ("EXISTS", fails_key))

    def state(self, name: str) -> LockState:
        return send_now(self._redis, lambda batch: self.queue_state(batch, name))

    def check(self, name: str, state: LockState | None = None) -> None:
        """``LockedOut(retry_after=s)`` while ``name`` is locked (as read in ``state``, else read now)."""
        until = (state or self.state(name)).until
        if until is None:
            return
        remaining = until - self._clock()
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

    def record_success(self, name: str, state: LockState | None = None) -> None:
        """A successful pre-authentication forgets earlier failures.

        With the ``state`` read before the attempt and no failures in it, there
        is nothing to forget and nothing is written: a failure counted since
        then stays counted, as if it came after this success (stricter, never
        laxer, than deleting it).
        """
        if state is not None and not state.failures:
            return
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
    """Fixed-window counter per subject: INCR then EXPIRE of the window's key, pipelined.

    Not a MULTI: both commands go out in one write on one connection and Redis
    runs them in order.  Should a connection die between them, the window's
    key is left without a TTL: garbage that never counts again (the window is
    in its name), never a wrong count.
    """

    def __init__(self, redis_client: redis.Redis, policy: RateLimitPolicy = RateLimitPolicy(),
                 clock: Callable[[], float] = time.time, prefix: str = "tally:rate") -> None:
        self._redis = redis_client
        self.policy = policy
        self._clock = clock
        self._prefix = prefix

    def queue(self, batch: Batch, subject: str) -> Reply[int]:
        """Count one request of ``subject`` in ``batch``; the reply is the window's count so far."""
        window = int(self._clock()) // self.policy.window_s
        key = f"{self._prefix}:{{{subject}}}:{window}"
        return batch.add(_first_int, ("INCR", key), ("EXPIRE", key, self.policy.window_s + 1))

    def refuse_beyond(self, count: int) -> None:
        """``RateLimited`` when ``count`` (from ``queue``) is beyond the limit; ``retry_after``: the window's rest."""
        if count > self.policy.requests:
            window, now = self.policy.window_s, self._clock()
            raise RateLimited(retry_after=max(1, math.ceil((int(now) // window + 1) * window - now)))

    def hit(self, address: str) -> None:
        """Count one request from ``address``; ``RateLimited`` beyond the limit."""
        self.refuse_beyond(send_now(self._redis, lambda batch: self.queue(batch, address)))


def _first_int(replies: list[Any]) -> int:
    return int(replies[0])
