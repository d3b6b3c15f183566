"""One contract for every replay cache: in-process, Redis on fakeredis, Redis on a real redis-server.

Each implementation subclasses ``ReplayCacheContract`` and reruns its whole
suite; only how time passes differs (a fake clock in-process, a short real
TTL on Redis, since Redis expires keys on its own clock).  ``cache`` has been
running long (its birth is far behind the fixed clock); ``fresh_cache`` has
just lost everything (born now) and must refuse authenticators it may have
forgotten (RFC 4120 §3.2.3).
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
from redis.crc import key_slot
from redis.retry import Retry

from tally_protocol.errors import ReplayCacheRecovering, StoreUnavailable
from tally_protocol.replay import REPLAY_KEY_SIZE, ReplayCache
from tally_runtime.replay_cache import CLAIM_SHA, MEMBER_SIZE, InMemoryReplayCache, RedisReplayCache
from tests.support.redis_proc import RedisProcess, free_port

NOW = 1_000_000.0
SKEW = 300
LONG_TTL_MS = 60_000
SHORT_TTL_MS = 50
THREADS = 16


def new_key() -> bytes:
    return os.urandom(REPLAY_KEY_SIZE)


class FakeClock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def claim(cache: ReplayCache, key: bytes, ttl_ms: int, ctime: int = int(NOW)) -> bool:
    return cache.claim(key, ttl_ms, ctime=ctime, max_skew_s=SKEW)


class ReplayCacheContract:
    """Rerun by every implementation: ``cache`` builds one, ``let_expire`` lets ``ttl_ms`` pass."""

    @pytest.fixture
    def cache(self) -> ReplayCache:
        raise NotImplementedError

    @pytest.fixture
    def fresh_cache(self) -> ReplayCache:
        raise NotImplementedError

    def let_expire(self, ttl_ms: int) -> None:
        raise NotImplementedError

    def test_first_claim_is_accepted(self, cache: ReplayCache) -> None:
        assert claim(cache, new_key(), LONG_TTL_MS) is True

    def test_second_claim_of_the_same_key_is_refused(self, cache: ReplayCache) -> None:
        key = new_key()
        claim(cache, key, LONG_TTL_MS)
        assert claim(cache, key, LONG_TTL_MS) is False

    def test_claims_of_different_keys_are_independent(self, cache: ReplayCache) -> None:
        claim(cache, new_key(), LONG_TTL_MS)
        assert claim(cache, new_key(), LONG_TTL_MS) is True

    def test_key_can_be_claimed_again_once_its_ttl_has_passed(self, cache: ReplayCache) -> None:
        key = new_key()
        claim(cache, key, SHORT_TTL_MS)
        self.let_expire(SHORT_TTL_MS)
        assert claim(cache, key, LONG_TTL_MS) is True

    def test_concurrent_claims_of_one_key_accept_exactly_one(self, cache: ReplayCache) -> None:
        key, barrier = new_key(), threading.Barrier(THREADS)

        def claim_together() -> bool:
            barrier.wait(timeout=10)
            return claim(cache, key, LONG_TTL_MS)

        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(lambda _: claim_together(), range(THREADS)))
        assert results.count(True) == 1

    def test_key_of_the_wrong_size_is_a_programming_error(self, cache: ReplayCache) -> None:
        with pytest.raises(ValueError):
            claim(cache, b"short", LONG_TTL_MS)

    def test_fresh_cache_refuses_an_authenticator_it_may_have_forgotten(self, fresh_cache: ReplayCache) -> None:
        with pytest.raises(ReplayCacheRecovering) as caught:
            claim(fresh_cache, new_key(), LONG_TTL_MS, ctime=int(NOW))
        assert caught.value.status_hint == 503
        assert caught.value.data["retry_after"] == SKEW

    def test_fresh_cache_refuses_until_birth_plus_skew(self, fresh_cache: ReplayCache) -> None:
        with pytest.raises(ReplayCacheRecovering):
            claim(fresh_cache, new_key(), LONG_TTL_MS, ctime=int(NOW) + SKEW - 1)

    def test_fresh_cache_accepts_authenticators_from_birth_plus_skew(self, fresh_cache: ReplayCache) -> None:
        assert claim(fresh_cache, new_key(), LONG_TTL_MS, ctime=int(NOW) + SKEW) is True


class TestInMemoryReplayCache(ReplayCacheContract):
    @pytest.fixture
    def cache(self) -> ReplayCache:
        self.clock = FakeClock()
        return InMemoryReplayCache(clock=self.clock, birth=NOW - 10 * SKEW)

    @pytest.fixture
    def fresh_cache(self) -> ReplayCache:
        return InMemoryReplayCache(clock=FakeClock())  # born with its process

    def let_expire(self, ttl_ms: int) -> None:
        self.clock.now += ttl_ms / 1000 + 0.001

    def test_expired_entries_are_swept_so_memory_stays_bounded(self) -> None:
        clock = FakeClock()
        cache = InMemoryReplayCache(clock=clock, birth=0)
        for _ in range(100):
            claim(cache, new_key(), 1000)
        clock.now += 2
        claim(cache, new_key(), 1000)
        assert len(cache) == 1


class RedisContract(ReplayCacheContract):
    """Redis expires keys on the server's clock: wait out a short PX, nothing more."""

    def let_expire(self, ttl_ms: int) -> None:
        time.sleep(ttl_ms / 1000 + 0.02)

    @pytest.fixture
    def cache(self, client: redis.Redis) -> ReplayCache:
        cache = RedisReplayCache(client, clock=FakeClock())
        cache.seed(birth=NOW - 10 * SKEW)
        return cache

    @pytest.fixture
    def fresh_cache(self, client: redis.Redis) -> ReplayCache:
        return RedisReplayCache(client, clock=FakeClock())  # an empty store: no marker

    def test_entry_is_stored_with_the_requested_ttl(self, cache: RedisReplayCache, client: redis.Redis) -> None:
        key = new_key()
        claim(cache, key, LONG_TTL_MS)
        bucket, member = cache.entry(key, int(NOW))
        assert client.sismember(bucket, member)
        assert 0 < client.pttl(bucket) <= LONG_TTL_MS

    def test_a_bucket_lives_as_long_as_its_longest_lived_entry(self, cache: RedisReplayCache,
                                                               client: redis.Redis) -> None:
        long, short = b"\x00" + new_key()[1:], b"\x00" + new_key()[1:]  # one shard, one ctime: one bucket
        claim(cache, long, LONG_TTL_MS)
        claim(cache, short, SHORT_TTL_MS)
        assert cache.entry(long, int(NOW))[0] == cache.entry(short, int(NOW))[0]
        assert client.pttl(cache.entry(long, int(NOW))[0]) > LONG_TTL_MS - 5_000

    def test_a_replay_lands_in_the_bucket_of_its_first_presentation(self, cache: RedisReplayCache) -> None:
        key = new_key()
        claim(cache, key, LONG_TTL_MS, ctime=int(NOW) - 1)
        assert cache.holds(key, int(NOW) - 1)
        assert claim(cache, key, LONG_TTL_MS, ctime=int(NOW) - 1) is False

    def test_an_entry_is_one_short_member_not_a_key_of_its_own(self, cache: RedisReplayCache,
                                                              client: redis.Redis) -> None:
        before = client.dbsize()
        for _ in range(20):
            claim(cache, b"\x07" + new_key()[1:], LONG_TTL_MS)
        bucket, member = cache.entry(b"\x07" + new_key()[1:], int(NOW))
        assert (client.dbsize() - before, client.scard(bucket), len(member)) == (1, 20, MEMBER_SIZE)

    def test_entry_and_its_marker_share_a_cluster_slot(self, cache: RedisReplayCache) -> None:
        key = new_key()
        assert key_slot(cache.entry(key, int(NOW))[0]) == key_slot(cache.marker_key(key))

    def test_a_node_that_lost_its_scripts_is_sent_the_script_again(self, cache: RedisReplayCache,
                                                                  client: redis.Redis) -> None:
        key = new_key()
        client.script_flush()  # a restarted or newly promoted node: EVALSHA answers NOSCRIPT
        assert claim(cache, key, LONG_TTL_MS) is True
        assert claim(cache, key, LONG_TTL_MS) is False

    def test_marker_is_written_once_and_keeps_its_birth(self, client: redis.Redis) -> None:
        clock = FakeClock()
        cache, key = RedisReplayCache(client, clock=clock), new_key()
        claim(cache, key, LONG_TTL_MS, ctime=int(NOW) + SKEW)
        clock.now += 100
        claim(cache, key[:1] + new_key()[1:], LONG_TTL_MS, ctime=int(NOW) + SKEW)  # same shard
        assert client.get(cache.marker_key(key)) == str(int(NOW)).encode()

    def test_flushed_store_refuses_until_the_window_has_passed(self, cache: RedisReplayCache,
                                                             client: redis.Redis) -> None:
        claim(cache, new_key(), LONG_TTL_MS)
        client.flushall()
        with pytest.raises(ReplayCacheRecovering):
            claim(cache, new_key(), LONG_TTL_MS)

    def test_seed_never_overwrites_a_birth_after_a_loss(self, fresh_cache: RedisReplayCache) -> None:
        key = new_key()
        with pytest.raises(ReplayCacheRecovering):
            claim(fresh_cache, key, LONG_TTL_MS)
        fresh_cache.seed(birth=0)
        with pytest.raises(ReplayCacheRecovering):
            claim(fresh_cache, key[:1] + new_key()[1:], LONG_TTL_MS)

    def test_a_loss_seen_in_one_shard_dates_every_missing_shard(self, client: redis.Redis) -> None:
        clock = FakeClock()
        cache = RedisReplayCache(client, clock=clock)
        with pytest.raises(ReplayCacheRecovering):
            claim(cache, b"\x00" + new_key()[1:], LONG_TTL_MS)
        clock.now += SKEW  # the window has passed for every shard, not only the first one touched
        assert claim(cache, b"\x01" + new_key()[1:], LONG_TTL_MS, ctime=int(NOW) + SKEW) is True

    def test_a_shard_that_lost_its_marker_recovers_alone(self, cache: RedisReplayCache, client: redis.Redis) -> None:
        lost, kept = b"\x00" + new_key()[1:], b"\x01" + new_key()[1:]
        client.delete(cache.marker_key(lost))
        assert claim(cache, kept, LONG_TTL_MS) is True
        with pytest.raises(ReplayCacheRecovering):
            claim(cache, lost, LONG_TTL_MS)


    def test_an_unreadable_birth_marker_fails_closed(self, cache: RedisReplayCache, client: redis.Redis) -> None:
        key = new_key()
        client.set(cache.marker_key(key), b"not a time")
        with pytest.raises(StoreUnavailable):
            claim(cache, key, LONG_TTL_MS)

class TestRedisReplayCacheOnFakeredis(RedisContract):
    @pytest.fixture
    def client(self) -> redis.Redis:
        return fakeredis.FakeRedis(server=fakeredis.FakeServer())


    def test_disconnected_store_raises_store_unavailable(self) -> None:
        server = fakeredis.FakeServer()
        server.connected = False
        with pytest.raises(StoreUnavailable):
            claim(RedisReplayCache(fakeredis.FakeRedis(server=server)), new_key(), LONG_TTL_MS)


class TestRedisReplayCacheWithoutGroupCommit(RedisContract):
    """Each claim alone in its round trip (as on a Cluster): the same contract."""

    @pytest.fixture
    def client(self) -> redis.Redis:
        return fakeredis.FakeRedis(server=fakeredis.FakeServer())

    @pytest.fixture
    def cache(self, client: redis.Redis) -> ReplayCache:
        cache = RedisReplayCache(client, clock=FakeClock(), group_commit=False)
        cache.seed(birth=NOW - 10 * SKEW)
        return cache

    @pytest.fixture
    def fresh_cache(self, client: redis.Redis) -> ReplayCache:
        return RedisReplayCache(client, clock=FakeClock(), group_commit=False)


class TestRedisReplayCacheOnRealRedis(RedisContract):
    @pytest.fixture
    def client(self, real_redis: redis.Redis) -> redis.Redis:
        return real_redis


    def test_the_script_is_sent_once_then_run_by_its_digest(self, cache: RedisReplayCache,
                                                           client: redis.Redis) -> None:
        client.script_flush()
        client.config_resetstat()
        for _ in range(3):
            claim(cache, new_key(), LONG_TTL_MS)
        stats = client.info("commandstats")
        assert (stats["cmdstat_eval"]["calls"], stats["cmdstat_evalsha"]["calls"]) == (1, 3)
        assert client.script_exists(CLAIM_SHA) == [True]

    def test_two_clients_of_one_server_share_claims(self, cache: ReplayCache, redis_server: RedisProcess) -> None:
        key = new_key()
        other = RedisReplayCache(redis.Redis.from_url(redis_server.url), clock=FakeClock())
        assert claim(cache, key, LONG_TTL_MS) is True
        assert claim(other, key, LONG_TTL_MS) is False


@pytest.fixture
def unreachable_client() -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, socket_timeout=1,
                         retry=Retry(NoBackoff(), 0))  # fail at once, no backoff
    yield client
    client.close()


def test_unreachable_redis_raises_store_unavailable(unreachable_client: redis.Redis) -> None:
    with pytest.raises(StoreUnavailable):
        claim(RedisReplayCache(unreachable_client), new_key(), LONG_TTL_MS)
