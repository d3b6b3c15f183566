"""Item 5: where the time goes, sampled with py-spy on the real processes while they run.

* ``Verifier.verify``: a ``verify_worker`` process verifying pre-generated
  requests against redis-server, sampled with ``--idle`` so the time spent
  waiting for Redis shows as well as the CPU;
* the KDC's AS and TGS: both gunicorn workers of ``tally kdc serve`` sampled
  while wrk saturates them, with ``--gil``: only the thread holding the GIL
  is sampled, i.e. where the worker's one core of Python goes (threads
  waiting for Redis or a request are left out).

Stacks are folded by function (``--nolineno``) and summarised as the
functions with the most *own* samples and the project's functions with the
most *inclusive* samples (the share of all samples in which they appear).
Each profile also counts the Redis commands one request costs (``INFO
commandstats`` before and after, divided by the requests served).
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

import redis

from .e2e_bench import headers, start_app
from .redis_server import RedisServer
from .report import Report
from .tally_realm import SERVICE, TallyRealm
from .verify_bench import VerifyRig
from .wrk_load import LoadResult, run_wrk, write_items

PROJECT = ("tally_protocol/", "kdc/", "relying_service/", "tally_runtime/", "client_sdk/")
#: Process plumbing that is on every stack (gunicorn started from the CLI), left out of the inclusive list.
PLUMBING = ("kdc/serve.py", "kdc/cli/", "tally_runtime/cli_errors.py", "tally_cli/")
TOP = 12
#: Libraries whose share of the samples is worth a line of its own (inclusive: a sample counts once per library).
LIBRARIES = {"redis-py": "(redis/", "tally_protocol/crypto.py": "(tally_protocol/crypto.py",
             "flask+werkzeug": ("(flask/", "(werkzeug/"), "logging+json": ("(logging/", "(json/"),
             "prometheus_client": "(prometheus_client/"}


#: Frames that wrap every request of an app, whatever answers it (gunicorn calls ``Flask.__call__``, which calls the
#: middleware stack, in which the KDC's exchange front answers before Flask dispatches): not counted as their
#: library's time, or "flask+werkzeug" would be every sample.
WRAPPERS = ("Flask.__call__ (flask/app.py)", "ProxyFix.__call__ (werkzeug/middleware/proxy_fix.py)")
#: Requests per second to pre-generate for, well above what each profiled server reaches on 2 cores.
PROFILE_KDC_RATE = 4000
PROFILE_E2E_RATE = 8000


def _require_valid(res: LoadResult, what: str) -> None:
    """A profile must show the path of accepted requests only: any refusal or reused item voids it."""
    if not res.valid:
        raise RuntimeError(f"{what}: {res.bad} refused, {res.reused} reused, {res.errors} socket errors")


def command_counts(client: redis.Redis) -> Counter[str]:
    stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


def per_request(before: Counter[str], after: Counter[str], requests: int) -> str:
    delta = {k: (after[k] - before[k]) / requests for k in after if after[k] - before[k] > 0 and k != "info"}
    total = sum(delta.values())
    return f"Redis commands per request: {total:.1f} = " + ", ".join(
        f"{k} {v:.2f}".rstrip("0").rstrip(".") for k, v in sorted(delta.items(), key=lambda kv: -kv[1]))


def require_py_spy() -> str:
    exe = shutil.which("py-spy")
    if exe is None:
        raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
    return exe


def start_sampling(pid: int, out: Path, seconds: float, *, mode: str) -> subprocess.Popen[bytes]:
    """``mode``: "--idle" (wall time, waits included) or "--gil" (the thread running Python)."""
    args = [require_py_spy(), "record", "--pid", str(pid), "--duration", f"{max(1, int(seconds))}", "--rate", "250",
            "--format", "raw", "--nolineno", "--output", str(out), mode]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _frame_name(frame: str) -> str:
    """``verify (/work/main/relying_service/verifier.py)`` -> ``verify (relying_service/verifier.py)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in PROJECT:
        if f"/{marker}" in where or where.startswith(marker):
            return f"{name} ({marker}{where.split(marker, 1)[1]})"
    for marker, label in (("site-packages/", ""), ("/lib/python3", "stdlib:")):
        if marker in where:
            rest = where.split(marker, 1)[1]
            return f"{name} ({label}{rest.split('/', 1)[1] if label else rest})"
    return f"{name} ({where})"


def summarise(paths: list[Path]) -> list[str]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    total = 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_frame_name(f) for f in stack.split(";")]
            total += count
            own[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
            for library, markers in LIBRARIES.items():
                if any(m in f for f in frames if f not in WRAPPERS
                       for m in ((markers,) if isinstance(markers, str) else markers)):
                    libraries[library] += count
    if not total:
        return ["(no samples)"]
    lines = [f"{total} samples; by library (inclusive): " + ", ".join(
        f"{name} {100 * libraries[name] / total:.0f}%" for name in LIBRARIES), "most own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(TOP)]
    lines.append("project functions, inclusive:")
    project = [(f, n) for f, n in inclusive.most_common()
               if any(f"({p}" in f for p in PROJECT) and not any(f"({p}" in f for p in PLUMBING)]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in project[:TOP]]
    return lines


def profile_verify(report: Report, rig: VerifyRig, workdir: Path, seconds: float) -> None:
    proc = rig.start("tally", int(9000 * (seconds + 1)), seconds + 1, cpus={0})
    rig.ready(proc)
    out = workdir / "profile-verify.txt"
    client = rig.redis.client()
    before = command_counts(client)
    sampler = start_sampling(proc.pid, out, seconds, mode="--idle")
    rig.go(proc)
    sampler.wait()
    doc = rig.result(proc)
    commands = per_request(before, command_counts(client), doc["count"])
    report.profiles["Verifier.verify (one process, --idle: Redis waits included)"] = [commands, *summarise([out])]


def profile_kdc(report: Report, realm: TallyRealm, workdir: Path, seconds: float, concurrency: int) -> None:
    assert realm.kdc is not None
    tgts = [realm.login(c) for c in realm.clients[:64]]
    for exchange in ("as", "tgs"):
        n = int(PROFILE_KDC_RATE * (seconds + 1))  # wrk runs seconds + 1: never out of fresh bodies
        bodies = (realm.as_bodies(n, realm.clients) if exchange == "as"
                  else realm.tgs_bodies(n, tgts, [SERVICE]))
        items = write_items(workdir / f"profile-{exchange}.txt", bodies)
        workers = [p for p in realm.kdc.pids() if p != realm.kdc.pid]
        outs = [workdir / f"profile-{exchange}-{pid}.txt" for pid in workers]
        client = realm.redis.client()
        before = command_counts(client)
        samplers = [start_sampling(pid, out, seconds, mode="--gil") for pid, out in zip(workers, outs, strict=True)]
        res = run_wrk(realm.kdc_url, f"/v1/{exchange}", mode="post", items=items, connections=concurrency,
                      seconds=seconds + 1)
        for sampler in samplers:
            sampler.wait()
        _require_valid(res, f"profile of {exchange.upper()}")
        commands = per_request(before, command_counts(client), res.ok + res.bad)
        report.profiles[f"KDC {exchange.upper()} (both gunicorn workers, --gil: where the Python time goes)"] = \
            [commands, *summarise([o for o in outs if o.exists()])]


def profile_e2e(report: Report, workdir: Path, keytab: Path, redis_server: RedisServer, seconds: float,
                concurrency: int) -> None:
    """Item 3's Flask app under gunicorn, both workers sampled with ``--gil`` while wrk drives ``/data``."""
    server, port = start_app(workdir, keytab, redis_server)
    try:
        items = write_items(workdir / "profile-e2e.txt", headers(keytab, port,
                                                                        int(PROFILE_E2E_RATE * (seconds + 1))))
        workers = [p for p in server.pids() if p != server.pid]
        outs = [workdir / f"profile-e2e-{pid}.txt" for pid in workers]
        client = redis_server.client()
        before = command_counts(client)
        samplers = [start_sampling(pid, out, seconds, mode="--gil") for pid, out in zip(workers, outs, strict=True)]
        res = run_wrk(f"http://127.0.0.1:{port}", "/data", mode="auth", items=items, connections=concurrency,
                      seconds=seconds + 1)
        for sampler in samplers:
            sampler.wait()
        _require_valid(res, "profile of GET /data")
        commands = per_request(before, command_counts(client), res.ok + res.bad)
    finally:
        server.stop()
    report.profiles["GET /data with TicketAuth (both gunicorn workers, --gil)"] = \
        [commands, *summarise([o for o in outs if o.exists()])]
