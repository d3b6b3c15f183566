"""Item 2: AS and TGS exchanges per second over HTTP on `tally kdc serve`, against MIT krb5kdc.

Both KDCs get 2 workers on the machine's 2 cores, and are driven closed-loop
at several concurrencies; the best rate counts, with its p50/p99.  tallystick
is driven by wrk (C, event loop) posting pre-generated request bodies, each
used once (the KDC claims every pre-authentication and authenticator in its
replay cache); MIT krb5kdc by ``kdc_load.c`` (libkrb5, one context per
thread).  The CPU split (server, redis-server, generator, everything else)
comes from /proc and says which side saturated.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from client_sdk.flow import Credential

from .kdc_load import run_kdc_load
from .mit_realm import MitRealm
from .procs import CpuMeter, run_measured
from .report import Report, Row, cpu_note
from .tally_realm import SERVICE, TallyRealm
from .wrk_load import LoadResult, run_wrk, write_items

SECTION = "2. KDC exchanges per second over HTTP/UDP, 2 workers on 2 cores"


def warm_up(realm: TallyRealm, workdir: Path, tgts: list[Credential], seconds: float = 1.0) -> None:
    """A short unmeasured run of each exchange: every worker thread has its Redis connection and warm caches."""
    for exchange in ("as", "tgs"):
        bodies = (realm.as_bodies(3000, realm.clients) if exchange == "as"
                  else realm.tgs_bodies(3000, tgts, [SERVICE]))
        run_wrk(realm.kdc_url, f"/v1/{exchange}", mode="post", items=write_items(workdir / "warm-up.txt", bodies),
                connections=8, seconds=seconds)


def _best(results: list[tuple[LoadResult, dict[str, float]]]) -> tuple[LoadResult, dict[str, float]]:
    return max(results, key=lambda r: r[0].rate)


def _row(report: Report, name: str, best: tuple[LoadResult, dict[str, float]], tried: list[int]) -> float:
    res, cores = best
    # The server's CPU per exchange, comparable with the in-process rows' CPU per exchange.
    per = f"; {1e6 * cores['kdc'] / res.rate:.0f} us of kdc CPU per exchange" if res.rate and "kdc" in cores else ""
    report.add(Row(SECTION, name, res.rate, "exch/s", res.p50_ms, res.p99_ms,
                   f"c={res.concurrency} (tried {','.join(map(str, tried))}); {cpu_note(cores)}{per}"))
    return res.rate


def tally_exchange_runs(realm: TallyRealm, workdir: Path, exchange: str, *, concurrencies: list[int],
                        seconds: float, bodies_per_run: int) -> list[tuple[LoadResult, dict[str, float]]]:
    """Closed-loop runs of one exchange ("as" or "tgs"), fresh bodies for each run."""
    assert realm.kdc is not None
    tgts = [realm.login(c) for c in realm.clients[:64]] if exchange == "tgs" else []
    warm_up(realm, workdir, tgts or [realm.login(realm.clients[0])])
    results = []
    for c in concurrencies:
        bodies = (realm.as_bodies(bodies_per_run, realm.clients) if exchange == "as"
                  else realm.tgs_bodies(bodies_per_run, tgts, [SERVICE]))
        items = write_items(workdir / f"{exchange}-bodies.txt", bodies)
        meter = CpuMeter({"kdc": realm.kdc, "redis": realm.redis.server})
        meter.start()
        res = run_wrk(realm.kdc_url, f"/v1/{exchange}", mode="post", items=items, connections=c, seconds=seconds)
        cores = meter.stop(res.generator_cpu_s)
        if not res.valid:
            raise RuntimeError(f"tallystick {exchange.upper()} at c={c}: {res.bad} refused, {res.reused} bodies "
                               f"reused, {res.errors} socket errors (see {realm.dir / 'kdc.log'})")
        results.append((res, cores))
    return results


def in_process(report: Report, realm: TallyRealm, workdir: Path, n: int) -> None:
    """The exchanges without the HTTP server: ``bench.kdc_inproc`` pinned to core 0, one exchange at a time."""
    tgts = [realm.login(c) for c in realm.clients[:32]]
    as_items = write_items(workdir / "inproc-as.txt", realm.as_bodies(n, realm.clients))
    tgs_items = write_items(workdir / "inproc-tgs.txt", realm.tgs_bodies(n, tgts, [SERVICE]))
    out, _cpu = run_measured([sys.executable, "-m", "bench.kdc_inproc", str(as_items), str(tgs_items)],
                             env=realm.env() | {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
                             cpus={0}, timeout=600)
    doc = json.loads(next(ln for ln in out.splitlines() if ln.startswith("{")))
    for exchange in ("as", "tgs"):
        d = doc[exchange]
        report.add(Row(SECTION, f"part of {exchange.upper()}: the exchange in-process (WSGI call, no server)",
                       d["rate"], "exch/s", None, None,
                       f"1 thread pinned to core 0: {d['cpu_us']:.0f} us of CPU per exchange, busy {d['busy']:.2f}; "
                       f"n={d['n']}"))


def run(report: Report, realm: TallyRealm, mit: MitRealm, kdc_load: Path, workdir: Path, *,
        concurrencies: list[int], seconds: float, bodies_per_run: int) -> None:
    rates: dict[str, float] = {}
    for exchange in ("as", "tgs"):
        results = tally_exchange_runs(realm, workdir, exchange, concurrencies=concurrencies, seconds=seconds,
                                      bodies_per_run=bodies_per_run)
        rates[f"tally-{exchange}"] = _row(report, f"tallystick {exchange.upper()} (tally kdc serve, wrk)",
                                          _best(results), concurrencies)
    assert mit.kdc is not None
    for exchange in ("as", "tgs"):
        before = mit.kdc_log_counts()
        mit_results = []
        for c in concurrencies:
            meter = CpuMeter({"kdc": mit.kdc})
            meter.start()
            res = run_kdc_load(kdc_load, mit, exchange, threads=c, seconds=seconds)
            mit_results.append((res, meter.stop(res.generator_cpu_s)))
            if res.bad:
                raise RuntimeError(f"MIT {exchange.upper()} at c={c}: {res.bad} failed")
        after = mit.kdc_log_counts()
        done = sum(r.ok for r, _ in mit_results)
        kind = "AS_REQ" if exchange == "as" else "TGS_REQ"
        per = (after[kind] - before[kind]) / done if done else 0.0
        rates[f"mit-{exchange}"] = _row(report, f"MIT krb5kdc {exchange.upper()} (kdc_load.c, {per:.2f} req/exch)",
                                        _best(mit_results), concurrencies)
    in_process(report, realm, workdir, n=max(500, bodies_per_run // 10))
    report.ratio("2. tallystick TGS / MIT krb5kdc TGS", rates["tally-tgs"], rates["mit-tgs"], ">=", 1.0)
    report.ratio("2. tallystick AS / MIT krb5kdc AS (no target; for reference)", rates["tally-as"], rates["mit-as"],
                 ">=", 0.0)
