"""A real deployment on loopback: redis-server, `tally kdc serve` and `tally service serve` processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.redis_proc import RedisProcess, free_port

REALM = "EXAMPLE.TEST"


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout}s")


@dataclass
class Deployment:
    workdir: Path
    redis: RedisProcess
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    kdc_url: str = ""
    api_url: str = ""

    def tally(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "tally_cli", *args], env=self.env, cwd=self.workdir,
                                input=input, capture_output=True, text=True, check=False, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"tally {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.workdir / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
            proc = subprocess.Popen([sys.executable, "-m", "tally_cli", *args], env=self.env, cwd=self.workdir,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def start_kdc(self) -> None:
        port = free_port()
        self.kdc_url = f"http://127.0.0.1:{port}"
        self.start("kdc", "kdc", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2")
        wait_http(self.kdc_url + "/healthz")

    def start_service(self, keytab: str = "api.keytab") -> None:
        self.api_url = self.start_replica("api", keytab)

    def start_replica(self, name: str, keytab: str = "api.keytab", workers: int = 2) -> str:
        """Another `tally service serve` process (a replica) on ``keytab``; returns its URL."""
        port = free_port()
        self.start(name, "service", "serve", "--keytab", keytab, "--host", "127.0.0.1", "--port", str(port),
                   "--workers", str(workers))
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/healthz")
        return url

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def shutdown(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        self.redis.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in self.workdir.glob("*.log"))


def deploy(workdir: Path, *, persistent: bool = True, env: dict[str, str] | None = None) -> Deployment:
    """Provision a realm with the CLI exactly as the README tells an operator, and start both servers.

    ``env`` adds settings (e.g. a short ``TALLY_MAX_SKEW``) for every process.
    """
    redis = RedisProcess(workdir, persistent=persistent)
    redis.start()
    extra = env or {}
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    env.update(extra)
    env.update(
        TALLY_REDIS_URL=redis.url,
        TALLY_REALM=REALM,
        TALLY_MASTER_KEY_FILE=str(workdir / "master.key"),
        TALLY_CCACHE=str(workdir / "ccache.json"),
        HOME=str(workdir),
    )
    d = Deployment(workdir, redis, env)
    try:
        d.tally("kdc", "init", "--realm", REALM)
        d.tally("admin", "add-client", "alice", "--key-out", "alice.key")
        d.tally("admin", "add-service", "api", "--keytab", "api.keytab")
        d.start_kdc()
        d.start_service()
    except BaseException:
        d.shutdown()
        raise
    return d
