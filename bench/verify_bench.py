"""Item 1 (verifications per second on one core, against the peers) and item 4's replicas sharing one Redis.

Each contender runs in its own ``bench.verify_worker`` process pinned to
core 0, with redis-server pinned to core 1, so "one core" is the verifying
process's core; every request is pre-generated and used once, and only the
accepting side is timed.  Contenders run in rounds, alternating order, and
the best round counts: on a shared machine the fastest round is the one
least disturbed by other work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tally_protocol.keys import Key, Keyset
from tally_protocol.principal import Principal
from tally_runtime.keytab_file import write_keytab
from tally_runtime.replay_cache import RedisReplayCache

from .mit_realm import MitRealm
from .procs import CpuMeter
from .redis_server import RedisServer
from .report import Report, Row

#: Enough threads for one process to keep its core busy while some of them wait for Redis (their
#: replay claims then share round trips: tally_runtime/group_commit.py).
VERIFY_THREADS = 16
SECTION = "1. Verifications per second, one core (verifier pinned to core 0, redis-server to core 1)"
REPLICA_SECTION = "4b. Verification with service processes sharing one Redis (unpinned, 2 cores)"


@dataclass(frozen=True)
class Contender:
    key: str
    worker: str
    label: str
    #: Expected best rate, to size the pre-generated batch (running out early is fine: the rate is count/time).
    rate_guess: int
    env: Mapping[str, str] | None = None
    #: Threads verifying at once in the one process (a threaded server's requests).
    threads: int = 1


CONTENDERS = (
    Contender("tally", "tally", "tallystick Verifier.verify (binding, Redis replay claim)", 9000),
    Contender("tally-threads", "tally", f"same, {VERIFY_THREADS} threads in the process (to saturate its core)",
              20000, threads=VERIFY_THREADS),
    Contender("tally-unbatched", "tally-unbatched", f"same, {VERIFY_THREADS} threads, claims not group-committed",
              20000, threads=VERIFY_THREADS),
    Contender("mit-file", "gssapi", "python-gssapi accept_sec_context, MIT file rcache", 25000),
    Contender("mit-none", "gssapi", "python-gssapi accept_sec_context, KRB5RCACHETYPE=none", 30000,
              {"KRB5RCACHETYPE": "none"}),
    Contender("jwt", "jwt", "PyJWT HS256 decode (no replay check)", 50000),
    Contender("floor", "floor-gcm", "floor: 2 AES-256-GCM opens + 1 Redis SET NX (Python)", 12000),
    Contender("floor-siv", "floor-gcmsiv", "floor with the suite's AES-256-GCM-SIV", 12000),
    Contender("tally-reply", "tally-reply", "tallystick verify + Authentication-Info proof", 8000),
    Contender("mit-mutual", "gssapi-mutual", "python-gssapi accept, mutual auth (AP-REP), file rcache", 20000),
    Contender("tally-core", "tally-core", "part of verify: verify_ap_request alone (no I/O)", 80000),
    Contender("tally-claim", "redis-claim", "part of verify: RedisReplayCache.claim alone", 12000),
    Contender("redis-ping", "redis-ping", "I/O floor: one raw-socket Redis round trip (PING)", 30000),
)


class VerifyRig:
    """A redis-server, a service keytab and (for the peers) an MIT realm with a client TGT."""

    def __init__(self, workdir: Path, mit: MitRealm, *, redis_cpus: set[int] | None) -> None:
        self.dir = workdir
        self.redis = RedisServer(workdir / "redis-verify", "redis-verify", cpus=redis_cpus).start()
        RedisReplayCache(self.redis.client()).seed(birth=0)  # as `tally kdc init` does for a new store
        self.keytab = write_keytab(workdir / "verify-api.keytab", Principal("api", "BENCH.TEST"),
                                   Keyset([Key(os.urandom(32), 1)]))
        self.mit = mit

    def start(self, worker: str, n: int, seconds: float, env: Mapping[str, str] | None = None,
              cpus: set[int] | None = None, threads: int = 1) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.verify_worker", worker, "--n", str(n), "--seconds", f"{seconds:g}",
             "--redis-url", self.redis.url, "--keytab", str(self.keytab), "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=self.mit.env(**(env or {})),
            cwd=Path(__file__).resolve().parent.parent)
        if cpus is not None:
            os.sched_setaffinity(proc.pid, cpus)
        return proc

    @staticmethod
    def ready(proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            proc.wait()
            raise RuntimeError(f"verify worker failed to start (exit {proc.returncode}): {line}")

    @staticmethod
    def go(proc: subprocess.Popen[str]) -> None:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()

    @staticmethod
    def result(proc: subprocess.Popen[str]) -> dict[str, Any]:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        proc.wait()
        if proc.returncode != 0 or not line:
            raise RuntimeError(f"verify worker exited {proc.returncode}")
        doc: dict[str, Any] = json.loads(line)
        return doc

    def stop(self) -> None:
        self.redis.stop()


def run_one_core(report: Report, rig: VerifyRig, *, seconds: float, rounds: int) -> dict[str, dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for r in range(rounds):
        order = CONTENDERS if r % 2 == 0 else tuple(reversed(CONTENDERS))
        for c in order:
            proc = rig.start(c.worker, max(1000, int(c.rate_guess * seconds * 1.2)), seconds, c.env, cpus={0},
                             threads=c.threads)
            rig.ready(proc)
            rig.go(proc)
            doc = rig.result(proc)
            if doc["errors"]:
                raise RuntimeError(f"{c.label}: {doc['errors']} of {doc['count']} refused ({doc['first_error']})")
            if c.key not in best or doc["rate"] > best[c.key]["rate"]:
                best[c.key] = doc
    for c in CONTENDERS:
        doc = best[c.key]
        report.add(Row(SECTION, c.label, doc["rate"], "verify/s", doc["p50_us"] / 1e3, doc["p99_us"] / 1e3,
                       f"verifier busy {doc['cpu_s'] / doc['seconds']:.2f} core; n={doc['count']}, best of {rounds}"))
    report.ratio("1. tallystick verify / MIT accept with file rcache", best["tally"]["rate"],
                 best["mit-file"]["rate"], ">=", 2.0)
    report.ratio(f"1. tallystick verify, {VERIFY_THREADS} threads / MIT accept with file rcache",
                 best["tally-threads"]["rate"], best["mit-file"]["rate"], ">=", 2.0)
    report.ratio("1. floor / tallystick verify (AES-GCM floor)", best["floor"]["rate"], best["tally"]["rate"],
                 "<=", 3.0)
    return best


def run_replicas(report: Report, rig: VerifyRig, *, seconds: float, counts: tuple[int, ...]) -> None:
    """``k`` verifying processes started together against one redis-server; aggregate rate and Redis CPU."""
    for k in counts:
        n = max(1000, int(9000 * seconds * 1.2 / k))
        procs = [rig.start("tally", n, seconds) for _ in range(k)]
        for p in procs:
            rig.ready(p)
        meter = CpuMeter({"redis": rig.redis.server})  # the workers report their own CPU time
        meter.start()
        for p in procs:
            rig.go(p)
        docs = [rig.result(p) for p in procs]
        cores = meter.stop(sum(d["cpu_s"] for d in docs))  # counted as the "generator" group: the services
        if any(d["errors"] for d in docs):
            raise RuntimeError(f"replicas: requests refused ({docs[0]['first_error']})")
        wall = max(d["seconds"] for d in docs)
        total = sum(d["count"] for d in docs) / wall
        services = cores["generator"]
        p99 = max(d["p99_us"] for d in docs) / 1e3
        p50 = sorted(d["p50_us"] for d in docs)[k // 2] / 1e3
        report.add(Row(REPLICA_SECTION, f"{k} service process{'es' if k > 1 else ''}", total, "verify/s", p50, p99,
                       f"cores: services {services:.2f} + redis {cores['redis']:.2f}; other {cores['other']:.2f}"))

