"""Processes the benchmark starts, and what they cost in CPU (read from /proc).

Every server runs in its own session so it and its workers are stopped as a
group; the generator's CPU comes from ``wait4``'s resource usage, the
servers' from ``/proc/<pid>/stat`` of the process tree, and the machine's
from ``/proc/stat``, so a run can say which side saturated and how much of
the machine something else (another user) took meanwhile.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    """Poll ``check()`` until it is truthy; RuntimeError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, requests.RequestException):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")


def http_ok(url: str) -> bool:
    return requests.get(url, timeout=1).status_code < 500


def tcp_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True


@dataclass
class Server:
    """A long-running process (redis-server, krb5kdc, gunicorn) in its own session, logging to a file."""

    name: str
    args: Sequence[str]
    log: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    cpus: set[int] | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> Server:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(list(self.args), stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                         cwd=self.cwd, start_new_session=True)
        if self.cpus is not None:
            os.sched_setaffinity(self.proc.pid, self.cpus)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not started"
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{self.name} is not running:\n{tail}")

    def pids(self) -> list[int]:
        """This process and every descendant (gunicorn workers, krb5kdc workers)."""
        return process_tree(self.pid)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def process_tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                children = Path(f"/proc/{p}/task/{task}/children").read_text().split()
                todo.extend(int(c) for c in children)
        except OSError:  # exited meanwhile
            continue
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of ``pids`` (processes still running)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds every core spent busy since boot (all but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLK_TCK


@dataclass
class CpuMeter:
    """CPU used by named groups of servers over an interval, in cores (CPU seconds per wall second)."""

    groups: Mapping[str, Server]
    _start: dict[str, tuple[list[int], float]] = field(default_factory=dict, init=False)
    _t0: float = field(default=0.0, init=False)
    _busy0: float = field(default=0.0, init=False)

    def start(self) -> None:
        self._start = {}
        for name, server in self.groups.items():
            pids = server.pids()
            self._start[name] = (pids, cpu_seconds(pids))
        self._busy0 = machine_busy_seconds()
        self._t0 = time.monotonic()

    def stop(self, generator_cpu_s: float = 0.0) -> dict[str, float]:
        """Cores per group, plus ``generator`` (given), ``machine`` busy and ``other`` (not ours)."""
        wall = time.monotonic() - self._t0
        busy = machine_busy_seconds() - self._busy0
        cores: dict[str, float] = {}
        for name, (pids, before) in self._start.items():
            cores[name] = (cpu_seconds(pids) - before) / wall
        cores["generator"] = generator_cpu_s / wall
        cores["machine"] = busy / wall
        cores["other"] = max(0.0, cores["machine"] - sum(v for k, v in cores.items() if k != "machine"))
        return cores


def run_measured(args: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 600,
                 cpus: set[int] | None = None) -> tuple[str, float]:
    """Run a generator to completion: its stdout and its own CPU seconds (from ``wait4``), or RuntimeError."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(list(args), stdout=out, stderr=err, env=env)
        if cpus is not None:
            os.sched_setaffinity(proc.pid, cpus)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise RuntimeError(f"{args[0]} did not finish within {timeout:.0f}s")
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            tail = err.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(args[:3])} exited {proc.returncode}: {tail}")
        return out.read().decode(), usage.ru_utime + usage.ru_stime
