from __future__ import annotations

import pytest
import redis

from kdc.lockout import Lockout, LockoutPolicy, RateLimiter, RateLimitPolicy
from tally_protocol.errors import ConfigurationError, LockedOut, RateLimited, StoreUnavailable
from tests.kdc.conftest import REALM, FixedClock

POLICY = LockoutPolicy(threshold=3, window_s=60, duration_s=300)


@pytest.fixture
def lockout(any_redis: redis.Redis, clock: FixedClock) -> Lockout:
    return Lockout(any_redis, REALM, POLICY, clock)


def fail(lockout: Lockout, name: str, times: int) -> list[bool]:
    return [lockout.record_failure(name) for _ in range(times)]


def test_name_locks_at_the_threshold(lockout: Lockout) -> None:
    assert fail(lockout, "alice@EXAMPLE.TEST", 3) == [False, False, True]
    with pytest.raises(LockedOut) as err:
        lockout.check("alice@EXAMPLE.TEST")
    assert err.value.data["retry_after"] == 300


def test_failures_below_the_threshold_do_not_lock(lockout: Lockout) -> None:
    fail(lockout, "alice@EXAMPLE.TEST", 2)
    lockout.check("alice@EXAMPLE.TEST")


def test_lock_lifts_after_its_duration(lockout: Lockout, clock: FixedClock) -> None:
    fail(lockout, "alice@EXAMPLE.TEST", 3)
    clock.advance(299)
    with pytest.raises(LockedOut) as err:
        lockout.check("alice@EXAMPLE.TEST")
    assert err.value.data["retry_after"] == 1
    clock.advance(1)
    lockout.check("alice@EXAMPLE.TEST")


def test_failures_outside_the_window_are_forgotten(lockout: Lockout, clock: FixedClock) -> None:
    fail(lockout, "alice@EXAMPLE.TEST", 2)
    clock.advance(61)
    assert fail(lockout, "alice@EXAMPLE.TEST", 2) == [False, False]
    lockout.check("alice@EXAMPLE.TEST")


def test_success_resets_the_failure_count(lockout: Lockout) -> None:
    fail(lockout, "alice@EXAMPLE.TEST", 2)
    lockout.record_success("alice@EXAMPLE.TEST")
    assert fail(lockout, "alice@EXAMPLE.TEST", 2) == [False, False]


def test_unknown_names_lock_exactly_like_known_ones(lockout: Lockout) -> None:
    assert fail(lockout, "nobody@EXAMPLE.TEST", 3) == [False, False, True]
    with pytest.raises(LockedOut):
        lockout.check("nobody@EXAMPLE.TEST")


def test_lock_is_per_name(lockout: Lockout) -> None:
    fail(lockout, "alice@EXAMPLE.TEST", 3)
    lockout.check("bob@EXAMPLE.TEST")


def test_lockout_fails_closed_when_the_store_is_down(down_redis: redis.Redis, clock: FixedClock) -> None:
    lockout = Lockout(down_redis, REALM, POLICY, clock)
    with pytest.raises(StoreUnavailable):
        lockout.check("alice@EXAMPLE.TEST")
    with pytest.raises(StoreUnavailable):
        lockout.record_failure("alice@EXAMPLE.TEST")


def test_rate_limiter_refuses_beyond_the_limit_per_address(any_redis: redis.Redis, clock: FixedClock) -> None:
    limiter = RateLimiter(any_redis, RateLimitPolicy(requests=2), clock)
    limiter.hit("127.0.0.1")
    limiter.hit("127.0.0.1")
    with pytest.raises(RateLimited) as err:
        limiter.hit("127.0.0.1")
    assert err.value.data["retry_after"] == 1
    limiter.hit("127.0.0.2")


def test_rate_limit_window_resets(any_redis: redis.Redis, clock: FixedClock) -> None:
    limiter = RateLimiter(any_redis, RateLimitPolicy(requests=1), clock)
    limiter.hit("127.0.0.1")
    clock.advance(1)
    limiter.hit("127.0.0.1")


def test_rate_limiter_fails_closed_when_the_store_is_down(down_redis: redis.Redis, clock: FixedClock) -> None:
    with pytest.raises(StoreUnavailable):
        RateLimiter(down_redis, RateLimitPolicy(), clock).hit("127.0.0.1")


def test_policies_refuse_non_positive_values() -> None:
    with pytest.raises(ConfigurationError):
        LockoutPolicy(threshold=0)
    with pytest.raises(ConfigurationError):
        RateLimitPolicy(requests=0)
