"""Item 3: a Flask endpoint under gunicorn, with ticket authentication and without.

``bench.e2e_app`` serves ``GET /data`` (``TicketAuth.required``) and ``GET
/open`` (the same view, unauthenticated) from 2 gunicorn workers; wrk
drives each at the same concurrencies, ``/data`` with pre-generated
Authorization headers each used once (bound to the method, host and path,
claimed in Redis).  Runs alternate open/authenticated and the best of each
counts.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from client_sdk.flow import make_ap_request
from tally_protocol.binding import RequestBinding, canonical_host
from tally_protocol.principal import Principal
from tally_runtime.keytab_file import read_keytab

from .procs import CpuMeter, Server, free_port, http_ok, wait_until
from .redis_server import RedisServer
from .report import Report, Row, cpu_note
from .tickets import service_ticket
from .wrk_load import LoadResult, run_wrk, write_items

SECTION = "3. End to end: Flask endpoint under gunicorn (2 workers), wrk"


def start_app(workdir: Path, keytab: Path, redis: RedisServer, workers: int = 2) -> tuple[Server, int]:
    port = free_port()
    server = Server("e2e-app", [sys.executable, "-m", "bench.e2e_app", "--port", str(port), "--keytab", str(keytab),
                                "--redis-url", redis.url, "--workers", str(workers)],
                    workdir / "e2e-app.log", cwd=Path(__file__).resolve().parent.parent).start()
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/open"), "the e2e Flask app")
    wait_until(lambda: len(server.pids()) >= workers + 1, "gunicorn workers")
    return server, port


def headers(keytab: Path, port: int, n: int, path: str = "/data") -> list[str]:
    service, keyset = read_keytab(keytab)
    cred = service_ticket(Principal("alice", service.realm), service, keyset.current)
    binding = RequestBinding.for_http("GET", canonical_host("http", "127.0.0.1", port), path, b"")
    now = time.time()
    return [make_ap_request(cred, binding, now=now, rng=os.urandom).authorization for _ in range(n)]


#: (kind, path, label): the bare pair carries the target; the page pair is context (an endpoint with work to do).
KINDS = (("open", "/open", "GET /open, no authentication"),
         ("auth", "/data", "GET /data, TicketAuth.required"),
         ("open-page", "/open-page", "GET /open-page (100-row JSON page), no authentication"),
         ("auth-page", "/data-page", "GET /data-page (same page), TicketAuth.required"))


def run(report: Report, workdir: Path, keytab: Path, redis: RedisServer, *, concurrencies: list[int],
        seconds: float, rounds: int, headers_per_run: int) -> None:
    server, port = start_app(workdir, keytab, redis)
    url = f"http://127.0.0.1:{port}"
    best: dict[str, tuple[LoadResult, dict[str, float]]] = {}
    try:
        for _ in range(rounds):
            for c in concurrencies:
                for kind, path, _label in KINDS:
                    authenticated = kind.startswith("auth")
                    items = write_items(workdir / "e2e-headers.txt", headers(keytab, port, headers_per_run, path)) \
                        if authenticated else None
                    meter = CpuMeter({"app": server, "redis": redis.server})
                    meter.start()
                    res = run_wrk(url, path, mode="auth" if authenticated else "plain", items=items, connections=c,
                                  seconds=seconds)
                    cores = meter.stop(res.generator_cpu_s)
                    if not res.valid:
                        raise RuntimeError(f"e2e {kind} at c={c}: {res.bad} refused, {res.reused} reused, "
                                           f"{res.errors} socket errors (see {workdir / 'e2e-app.log'})")
                    if kind not in best or res.rate > best[kind][0].rate:
                        best[kind] = (res, cores)
    finally:
        server.stop()
    for kind, _path, label in KINDS:
        res, cores = best[kind]
        report.add(Row(SECTION, label, res.rate, "req/s", res.p50_ms, res.p99_ms,
                       f"c={res.concurrency}; {cpu_note(cores)}"))
    report.ratio("3. authenticated / unauthenticated throughput", best["auth"][0].rate, best["open"][0].rate,
                 ">=", 0.85)
    page = best["auth-page"][0].rate / best["open-page"][0].rate
    report.notes.append(f"3. context, no target: with a 100-row JSON page in the view, authenticated / "
                        f"unauthenticated = {page:.2f}")
