"""``HeldConnection``: the group commit's own connection keeps every guarantee of a pool checkout."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tally_runtime.redis_settings import RedisSettings
from tally_runtime.redis_store import HeldConnection, connect, round_trip
from tests.support.redis_proc import RedisProcess
from tests.support.redis_topologies import SentinelGroup


def test_round_trips_reuse_one_connection_and_return_every_reply(real_redis: redis.Redis) -> None:
    held = HeldConnection(real_redis)
    first_id, ok, value = held.round_trip([("CLIENT", "ID"), ("SET", "k", "1"), ("GET", "k")])
    second_id, count, pong = held.round_trip([("CLIENT", "ID"), ("INCR", "k"), ("PING",)])
    assert (ok, value, count, pong) == (b"OK", b"1", 2, b"PONG")
    assert first_id == second_id  # the same connection both times


def test_an_error_reply_is_raised_after_every_reply_is_read(real_redis: redis.Redis) -> None:
    held = HeldConnection(real_redis)
    with pytest.raises(redis.exceptions.ResponseError):
        held.round_trip([("SET", "k", "x"), ("INCR", "k"), ("SET", "after", "1")])
    assert held.round_trip([("GET", "after")]) == [b"1"]  # the third command ran and its reply was not left behind


def test_a_read_that_times_out_never_leaves_its_reply_for_the_next_command(redis_server: RedisProcess) -> None:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=0.2)
    held = HeldConnection(client)
    with pytest.raises(redis.exceptions.TimeoutError):
        held.round_trip([("BLPOP", "nothing-here", "0.6")])  # answers nil after 0.6 s, past the timeout
    assert held.round_trip([("PING",)]) == [b"PONG"]  # not the late nil of BLPOP
    client.close()


def test_a_connection_the_server_closed_is_replaced_before_the_write(real_redis: redis.Redis) -> None:
    held = HeldConnection(real_redis)
    held.round_trip([("CLIENT", "SETNAME", "held")])
    real_redis.client_kill_filter(_type="normal", skipme=True)  # as a restarted server would have
    assert held.round_trip([("SET", "k", "1")]) == [b"OK"]  # checked, reconnected, sent once


def test_a_forked_child_uses_a_connection_of_its_own(real_redis: redis.Redis) -> None:
    held = HeldConnection(real_redis)
    held.round_trip([("SET", "parent", "1")])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the parent's socket must not carry its commands
        try:
            reply = held.round_trip([("CLIENT", "ID"), ("INCR", "child")])
            os.write(write, str(reply[0]).encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    child_id = int(os.read(read, 64))
    os.close(read)
    os.close(write)
    parent_id, value = held.round_trip([("CLIENT", "ID"), ("GET", "child")])
    assert child_id != parent_id
    assert value == b"1"


def test_a_cluster_client_is_refused() -> None:
    cluster = redis.RedisCluster.__new__(redis.RedisCluster)
    with pytest.raises(TypeError):
        HeldConnection(cluster)  # type: ignore[arg-type]


def test_after_a_sentinel_failover_it_writes_to_the_new_master_not_the_demoted_one(tmp_path: Path) -> None:
    group = SentinelGroup(tmp_path).start()
    try:
        client = connect(RedisSettings.from_env({**group.env(), "TALLY_REDIS_MIN_REPLICAS": "0"}))
        held = HeldConnection(client)
        assert held.round_trip([("SET", "before", "1")]) == [b"OK"]
        group.kill_master()
        group.wait_failover()
        group.revive()  # the old master is back, as a replica: it answers READONLY to writes
        replies: list[object] = []
        for _ in range(5):  # the first write may still meet the old socket; the next ones must not
            try:
                replies.append(held.round_trip([("SET", "after", "1")]))
            except redis.exceptions.RedisError as e:
                replies.append(type(e).__name__)
        assert replies[-3:] == [[b"OK"]] * 3, replies
    finally:
        group.stop()


def test_it_takes_no_slot_of_the_pool(redis_server: RedisProcess) -> None:
    client = redis.Redis.from_url(redis_server.url, max_connections=1)
    held = HeldConnection(client)
    assert held.round_trip([("SET", "k", "1")]) == [b"OK"]
    assert client.get("k") == b"1"  # the pool's one connection is still free for everything else
    client.close()


def test_a_paused_server_fails_each_round_trip_within_one_command_timeout(tmp_path: Path) -> None:
    own = RedisProcess(tmp_path)
    own.start()
    timeout_ms = 300
    client = connect(RedisSettings.from_env({"TALLY_REDIS_URL": own.url, "TALLY_REDIS_MIN_REPLICAS": "0",
                                             "TALLY_REDIS_COMMAND_TIMEOUT_MS": str(timeout_ms),
                                             "TALLY_REDIS_CONNECT_TIMEOUT_MS": str(timeout_ms)}))
    held = HeldConnection(client)
    held.round_trip([("PING",)])
    own.pause()
    try:
        for _ in range(3):  # the first meets the live connection, the next ones a new one: never twice the wait
            start = time.monotonic()
            with pytest.raises(redis.exceptions.RedisError):
                held.round_trip([("SET", "k", "1")])
            assert time.monotonic() - start < 1.6 * timeout_ms / 1000
    finally:
        own.resume()
    assert held.round_trip([("PING",)]) == [b"PONG"]
    own.stop()


def test_a_sentinel_connection_is_dropped_once_the_pool_knows_another_master(tmp_path: Path) -> None:
    group = SentinelGroup(tmp_path).start()
    try:
        client = connect(RedisSettings.from_env({**group.env(), "TALLY_REDIS_MIN_REPLICAS": "0"}))
        held = HeldConnection(client)
        (first_id,) = held.round_trip([("CLIENT", "ID")])
        # As if another connection of this process had learnt of a failover the held one has not seen
        # (a partition can leave the old master answering): the next write must not go down the old socket.
        pool: Any = client.connection_pool  # a SentinelConnectionPool
        pool.proxy.master_address = ("127.0.0.1", group.replica().port)
        (second_id,) = held.round_trip([("CLIENT", "ID")])
        assert second_id != first_id  # reconnected (through the sentinels, which still name the same master)
    finally:
        group.stop()


def test_round_trips_go_through_the_calling_thread_s_own_connection(redis_server: RedisProcess) -> None:
    client = redis.Redis.from_url(redis_server.url, max_connections=1)
    mine = {round_trip(client, b"", [("CLIENT", "ID")])[0] for _ in range(3)}
    assert len(mine) == 1  # one thread, one connection, reused
    ids: list[int] = []
    threads = [threading.Thread(target=lambda: ids.append(round_trip(client, b"", [("CLIENT", "ID")])[0]))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(set(ids) | mine) == 4  # every thread its own: none waits for another's reply
    assert client.get("nothing") is None  # and the pool's one connection is still free for everything else
    client.close()
