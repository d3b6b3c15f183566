"""The three Redis topologies behind one interface, and a realm deployed on each with replicas.

``Store`` is what the end-to-end topology tests need from a topology: its settings, and the
faults: kill the master (SIGKILL), wait for the failover, revive the killed node, and hold a
replica back so that what the master acknowledges meanwhile never reaches it.

* ``Standalone``: one redis-server with an append-only file.  There is no replica, so no
  failover: the outage lasts until the server is restarted (as systemd would), and the AOF,
  written before Redis answers, keeps every claim it acknowledged.
* ``Sentinel`` and ``Cluster`` wrap ``tests.support.redis_topologies``.  After a failover the
  new master has no replica until the killed node comes back; with ``TALLY_REDIS_MIN_REPLICAS``
  = 1 replay claims fail closed until then, so ``revive`` is part of the recovery.

``hold_back_replica`` is the lost-write fault that asynchronous replication allows: the
victim's replica is stopped (SIGSTOP) and a large value is written through the master so the
replication socket's kernel buffers fill; whatever the master acknowledges after that sits in
its own output buffer and dies with it.  Without ``WAIT`` such a claim is accepted and then
forgotten by the promoted replica, and a replay of it would be accepted.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import redis
from redis.crc import key_slot

from tests.e2e.realm import Deployment, provision
from tests.support.redis_proc import RedisProcess
from tests.support.redis_topologies import RedisCluster3x3, SentinelGroup, ServerProcess, wait_until

#: The key the replica-hold-back fault writes (and, on the Cluster, whose master is the victim).
BLOB_KEY = b"{tally-e2e-lag}blob"
#: Larger than loopback's socket buffers hold for a replica that is not reading.
BLOB_BYTES = 48 * 1024 * 1024
#: Generous for a busy 2-core machine; a failover is a few seconds.
FAILOVER_TIMEOUT_S = 45.0
#: All test traffic comes from 127.0.0.1 as alice: the KDC's per-address and per-principal
#: limits are raised above the load, as an operator would for a load test.
LOAD_TEST_LIMITS = {"TALLY_RATE_LIMIT_REQUESTS": "100000", "TALLY_AS_RATE_LIMIT": "100000",
                    "TALLY_TGS_RATE_LIMIT": "100000"}


class Store(Protocol):
    name: str

    def env(self) -> dict[str, str]: ...

    def kill_master(self) -> None: ...

    def wait_failover(self) -> None: ...

    def revive(self) -> None: ...

    def hold_back_replica(self) -> HeldReplica | None: ...

    def stop(self) -> None: ...


def _pid(client: redis.Redis) -> int:
    return int(client.info("server")["process_id"])


class Standalone:
    """A persistent (AOF) redis-server; killing it is an outage that ends with its restart."""

    name = "standalone"

    def __init__(self, workdir: Path) -> None:
        self.server = RedisProcess(workdir, persistent=True)
        self.server.start()

    def env(self) -> dict[str, str]:
        return {"TALLY_REDIS_URL": self.server.url}

    def kill_master(self) -> None:
        with redis.Redis(host="127.0.0.1", port=self.server.port, socket_timeout=2) as c:
            os.kill(_pid(c), signal.SIGKILL)
        self.server.stop()  # reaps the killed process (it no longer runs, so nothing is signalled)

    def wait_failover(self) -> None:
        """Nothing takes over: a standalone store is down until it is restarted."""

    def revive(self) -> None:
        self.server.start()

    def hold_back_replica(self) -> HeldReplica | None:
        return None  # no replica, nothing replicated: the AOF is written before Redis answers

    def stop(self) -> None:
        self.server.stop()


@dataclass
class HeldReplica:
    """A stopped replica of ``master``; ``release`` lets it run again."""

    replica_pid: int
    master: ServerProcess

    def release(self) -> None:
        os.kill(self.replica_pid, signal.SIGCONT)


def _hold_back(master: ServerProcess) -> HeldReplica:
    """SIGSTOP ``master``'s replica and fill the replication link so later writes stay in the master."""
    with master.client() as m:
        replica = next(v for k, v in m.info("replication").items() if k.startswith("slave"))
        with redis.Redis(host=replica["ip"], port=int(replica["port"]), socket_timeout=2,
                         **master.client_kwargs) as r:
            pid = _pid(r)
        os.kill(pid, signal.SIGSTOP)
        held = HeldReplica(pid, master)
        try:
            with redis.Redis(host="127.0.0.1", port=master.port, socket_timeout=30, **master.client_kwargs) as big:
                big.set(BLOB_KEY, b"x" * BLOB_BYTES)

            def backlogged() -> bool:
                return any(int(c["omem"]) > 0 for c in m.client_list(_type="replica"))
            wait_until(backlogged, 10, "the replica's link did not back up")
        except BaseException:
            held.release()
            raise
        return held


class Sentinel:
    name = "sentinel"

    def __init__(self, workdir: Path) -> None:
        self.group = SentinelGroup(workdir).start()

    def env(self) -> dict[str, str]:
        return self.group.env()

    def kill_master(self) -> None:
        self.group.kill_master()

    def wait_failover(self) -> None:
        self.group.wait_failover(FAILOVER_TIMEOUT_S)

    def revive(self) -> None:
        self.group.revive(FAILOVER_TIMEOUT_S)

    def hold_back_replica(self) -> HeldReplica | None:
        return _hold_back(self.group.master())

    def stop(self) -> None:
        self.group.stop()


class Cluster:
    """The 3x3 Cluster; the victim is the master serving ``BLOB_KEY``'s slot."""

    name = "cluster"

    def __init__(self, workdir: Path) -> None:
        self.cluster = RedisCluster3x3(workdir).start()
        self.slot = key_slot(BLOB_KEY)

    def env(self) -> dict[str, str]:
        return self.cluster.env()

    def kill_master(self) -> None:
        self.cluster.kill_master_of_slot(self.slot)

    def wait_failover(self) -> None:
        self.cluster.wait_failover(FAILOVER_TIMEOUT_S)

    def revive(self) -> None:
        self.cluster.revive(FAILOVER_TIMEOUT_S)

    def hold_back_replica(self) -> HeldReplica | None:
        return _hold_back(self.cluster.node(self.cluster.master_of_slot(self.slot)))

    def stop(self) -> None:
        self.cluster.stop()


STORES: dict[str, type[Standalone | Sentinel | Cluster]] = {
    "standalone": Standalone, "sentinel": Sentinel, "cluster": Cluster,
}


@dataclass
class ReplicatedRealm:
    """A realm on ``store`` served by several KDC and relying-service ("api") processes."""

    store: Store
    deployment: Deployment
    kdc_urls: list[str]
    api_urls: list[str]

    @property
    def workdir(self) -> Path:
        return self.deployment.workdir


@contextmanager
def replicated_realm(store_name: str, workdir: Path, *, kdcs: int = 2, services: int = 2) -> Iterator[ReplicatedRealm]:
    """Start the ``store_name`` topology, provision the realm in it and start the replicas; stop all after."""
    (workdir / "redis").mkdir()
    store: Store = STORES[store_name](workdir / "redis")
    try:
        d = provision(workdir, store.env()["TALLY_REDIS_URL"], env={**LOAD_TEST_LIMITS, **store.env()})
        try:
            kdc_urls, api_urls = d.start_replicas(kdcs, services)
            yield ReplicatedRealm(store, d, kdc_urls, api_urls)
        finally:
            d.shutdown()
    finally:
        store.stop()
