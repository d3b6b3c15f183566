"""``python -m bench``: tallystick's throughput, side by side with its peers, measured in one run.

Sets up everything on loopback in a temporary directory (its own
redis-servers, a throwaway MIT realm with krb5kdc, `tally kdc serve`, a Flask
service under gunicorn), runs the items of docs/performance.md, tears it all
down and prints one table; targets are printed as ratios, never asserted.

    python -m bench            # full run (under ~10 minutes on 2 cores)
    python -m bench --quick    # smoke run (under ~2 minutes)
    python -m bench --only 1,4 --json results.json --keep
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import e2e_bench, kdc_bench, profile_bench, scale_bench, verify_bench
from .kdc_load import build
from .machine import describe
from .mit_realm import MitRealm
from .redis_server import RedisServer
from .report import Report
from .tally_realm import TallyRealm
from .verify_bench import VerifyRig
from .wrk_load import require_wrk


@dataclass(frozen=True)
class Plan:
    verify_seconds: float
    verify_rounds: int
    kdc_concurrencies: list[int]
    kdc_seconds: float
    e2e_concurrencies: list[int]
    e2e_seconds: float
    replay_entries: int
    replica_counts: tuple[int, ...]
    replica_seconds: float
    principal_sizes: list[int]
    principal_seconds: float
    profile_seconds: float

    @property
    def kdc_bodies(self) -> int:
        """Fresh bodies per KDC run: more than 2 cores of this KDC can use in that time."""
        return int(2500 * self.kdc_seconds) + 1000


FULL = Plan(verify_seconds=2.5, verify_rounds=2, kdc_concurrencies=[4, 8, 32], kdc_seconds=5,
            e2e_concurrencies=[8, 32], e2e_seconds=5, replay_entries=100_000, replica_counts=(1, 2, 4),
            replica_seconds=3, principal_sizes=[10, 100_000, 1_000_000], principal_seconds=4, profile_seconds=4)
QUICK = Plan(verify_seconds=1, verify_rounds=1, kdc_concurrencies=[8], kdc_seconds=2, e2e_concurrencies=[16],
             e2e_seconds=2, replay_entries=20_000, replica_counts=(1, 2, 4), replica_seconds=1,
             principal_sizes=[10, 10_000, 50_000], principal_seconds=2, profile_seconds=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run with fewer requests and principals")
    parser.add_argument("--only", default="1,2,3,4,5", help="comma-separated items to run (default: all)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, keytabs, profiles)")
    args = parser.parse_args(argv)
    items = {int(i) for i in args.only.split(",") if i.strip()}
    plan = QUICK if args.quick else FULL
    require_wrk()
    profile_bench.require_py_spy() if 5 in items else None

    workdir = Path(tempfile.mkdtemp(prefix="tally-bench-"))
    report = Report(machine=describe())
    started = time.monotonic()
    mit: MitRealm | None = None
    rig: VerifyRig | None = None
    realm: TallyRealm | None = None
    realm_redis: RedisServer | None = None
    try:
        mit = MitRealm(workdir / "mit").create()
        mit.start_kdc(workers=2)
        mit.kinit()
        if items & {1, 4, 5}:
            rig = VerifyRig(workdir, mit, redis_cpus={1})
        if 1 in items:
            _phase("1. verification, one core")
            assert rig is not None
            verify_bench.run_one_core(report, rig, seconds=plan.verify_seconds, rounds=plan.verify_rounds)
        if items & {2, 3, 5}:
            realm_redis = RedisServer(workdir / "redis-kdc", "redis-kdc").start()
            realm = TallyRealm(workdir / "realm", realm_redis).create(clients=400)
            realm.start_kdc(workers=2)
        if 2 in items:
            _phase("2. KDC exchanges")
            assert realm is not None
            kdc_bench.run(report, realm, mit, build(workdir), workdir, concurrencies=plan.kdc_concurrencies,
                          seconds=plan.kdc_seconds, bodies_per_run=plan.kdc_bodies)
        if 3 in items:
            _phase("3. end to end")
            assert realm is not None and realm_redis is not None
            e2e_bench.run(report, workdir, realm.keytab, realm_redis, concurrencies=plan.e2e_concurrencies,
                          seconds=plan.e2e_seconds, rounds=1, headers_per_run=int(4000 * plan.e2e_seconds) + 1000)
        if 4 in items:
            _phase("4. scale")
            assert rig is not None
            scale_bench.replay_memory(report, workdir, plan.replay_entries)
            os.sched_setaffinity(rig.redis.server.pid, {0, 1})  # replicas: nothing pinned
            verify_bench.run_replicas(report, rig, seconds=plan.replica_seconds, counts=plan.replica_counts)
            if realm is not None:
                realm.stop()  # the scale realm runs its own KDC
            scale_bench.principals(report, workdir, plan.principal_sizes, seconds=plan.principal_seconds)
            if realm is not None:
                realm.start_kdc(workers=2)
        if 5 in items:
            _phase("5. profiles")
            assert rig is not None and realm is not None
            os.sched_setaffinity(rig.redis.server.pid, {1})
            profile_bench.profile_verify(report, rig, workdir, plan.profile_seconds)
            profile_bench.profile_kdc(report, realm, workdir, plan.profile_seconds, plan.kdc_concurrencies[-1])
            assert realm_redis is not None
            profile_bench.profile_e2e(report, workdir, realm.keytab, realm_redis, plan.profile_seconds,
                                      plan.e2e_concurrencies[-1])
    except BaseException:
        print(report.render() + "\n(the run stopped early; these are the results so far)", file=sys.stderr)
        raise
    finally:
        for stop in (realm.stop if realm else None, realm_redis.stop if realm_redis else None,
                     rig.stop if rig else None, mit.stop if mit else None):
            if stop is not None:
                stop()
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report.notes.append(f"run took {time.monotonic() - started:.0f} s ({'--quick' if args.quick else 'full'})")
    print(report.render())
    if args.json:
        report.save(args.json)
    return 0


def _phase(name: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {name}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
