"""One contract for every replay cache: in-process, Redis on fakeredis, Redis on a real redis-server.

Each implementation subclasses ``ReplayCacheContract`` and reruns its whole
suite; only how time passes differs (a fake clock in-process, a short real
TTL on Redis, since Redis expires keys on its own clock).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import fakeredis
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tally_protocol.errors import StoreUnavailable
from tally_protocol.replay import REPLAY_KEY_SIZE, ReplayCache
from tally_runtime.replay_cache import InMemoryReplayCache, RedisReplayCache
from tests.support.redis_proc import RedisProcess, free_port

LONG_TTL_MS = 60_000
SHORT_TTL_MS = 50
THREADS = 16


def new_key() -> bytes:
    return os.urandom(REPLAY_KEY_SIZE)


class ReplayCacheContract:
    """Rerun by every implementation: ``cache`` builds one, ``let_expire`` lets ``ttl_ms`` pass."""

    @pytest.fixture
    def cache(self) -> ReplayCache:
        raise NotImplementedError

    def let_expire(self, ttl_ms: int) -> None:
        raise NotImplementedError

    def test_first_claim_is_accepted(self, cache: ReplayCache) -> None:
        assert cache.claim(new_key(), LONG_TTL_MS) is True

    def test_second_claim_of_the_same_key_is_refused(self, cache: ReplayCache) -> None:
        key = new_key()
        cache.claim(key, LONG_TTL_MS)
        assert cache.claim(key, LONG_TTL_MS) is False

    def test_claims_of_different_keys_are_independent(self, cache: ReplayCache) -> None:
        cache.claim(new_key(), LONG_TTL_MS)
        assert cache.claim(new_key(), LONG_TTL_MS) is True

    def test_key_can_be_claimed_again_once_its_ttl_has_passed(self, cache: ReplayCache) -> None:
        key = new_key()
        cache.claim(key, SHORT_TTL_MS)
        self.let_expire(SHORT_TTL_MS)
        assert cache.claim(key, LONG_TTL_MS) is True

    def test_concurrent_claims_of_one_key_accept_exactly_one(self, cache: ReplayCache) -> None:
        key, barrier = new_key(), threading.Barrier(THREADS)

        def claim() -> bool:
            barrier.wait(timeout=10)
            return cache.claim(key, LONG_TTL_MS)

        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(lambda _: claim(), range(THREADS)))
        assert results.count(True) == 1

    def test_key_of_the_wrong_size_is_a_programming_error(self, cache: ReplayCache) -> None:
        with pytest.raises(ValueError):
            cache.claim(b"short", LONG_TTL_MS)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestInMemoryReplayCache(ReplayCacheContract):
    @pytest.fixture
    def cache(self) -> ReplayCache:
        self.clock = FakeClock()
        return InMemoryReplayCache(clock=self.clock)

    def let_expire(self, ttl_ms: int) -> None:
        self.clock.now += ttl_ms / 1000 + 0.001

    def test_expired_entries_are_swept_so_memory_stays_bounded(self) -> None:
        clock = FakeClock()
        cache = InMemoryReplayCache(clock=clock)
        for _ in range(100):
            cache.claim(new_key(), 1000)
        clock.now += 2
        cache.claim(new_key(), 1000)
        assert len(cache) == 1


class RedisContract(ReplayCacheContract):
    """Redis expires keys on the server's clock: wait out a short PX, nothing more."""

    def let_expire(self, ttl_ms: int) -> None:
        time.sleep(ttl_ms / 1000 + 0.02)

    def test_entry_is_stored_with_the_requested_ttl(self, cache: RedisReplayCache, client: redis.Redis) -> None:
        key = new_key()
        cache.claim(key, LONG_TTL_MS)
        assert 0 < client.pttl(b"tr:" + key) <= LONG_TTL_MS


class TestRedisReplayCacheOnFakeredis(RedisContract):
    @pytest.fixture
    def client(self) -> redis.Redis:
        return fakeredis.FakeRedis(server=fakeredis.FakeServer())

    @pytest.fixture
    def cache(self, client: redis.Redis) -> ReplayCache:
        return RedisReplayCache(client)

    def test_disconnected_store_raises_store_unavailable(self) -> None:
        server = fakeredis.FakeServer()
        server.connected = False
        with pytest.raises(StoreUnavailable):
            RedisReplayCache(fakeredis.FakeRedis(server=server)).claim(new_key(), LONG_TTL_MS)


class TestRedisReplayCacheOnRealRedis(RedisContract):
    @pytest.fixture
    def client(self, real_redis: redis.Redis) -> redis.Redis:
        return real_redis

    @pytest.fixture
    def cache(self, client: redis.Redis) -> ReplayCache:
        return RedisReplayCache(client)

    def test_two_clients_of_one_server_share_claims(self, cache: ReplayCache, redis_server: RedisProcess) -> None:
        key = new_key()
        other = RedisReplayCache(redis.Redis.from_url(redis_server.url))
        assert cache.claim(key, LONG_TTL_MS) is True
        assert other.claim(key, LONG_TTL_MS) is False


@pytest.fixture
def unreachable_client() -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, socket_timeout=1,
                         retry=Retry(NoBackoff(), 0))  # fail at once, no backoff
    yield client
    client.close()


def test_unreachable_redis_raises_store_unavailable(unreachable_client: redis.Redis) -> None:
    with pytest.raises(StoreUnavailable):
        RedisReplayCache(unreachable_client).claim(new_key(), LONG_TTL_MS)
