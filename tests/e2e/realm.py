"""A real deployment on loopback: redis-server, `tally kdc serve` and `tally service serve` processes.

``deploy`` starts its own redis-server, one KDC and one service; ``provision`` sets up a realm in a
store someone else runs (any ``TALLY_REDIS_URL``: Sentinel, Cluster) and starts no server, so a test
can start as many KDC and service replicas as it needs (``start_replicas``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.process_group import stop_groups
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
    #: The redis-server this deployment started and stops; None when the store is someone else's.
    redis: RedisProcess | None
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

    def stop(self, *names: str) -> None:
        """SIGTERM to every named server at once (each shuts down gracefully, in parallel), then reap them."""
        stop_groups(p for p in (self.procs.pop(name, None) for name in names) if p is not None)

    def start_kdc(self) -> None:
        self.kdc_url = self.start_kdc_replica("kdc")

    def start_kdc_replica(self, name: str, workers: int = 2, *, wait: bool = True) -> str:
        """A `tally kdc serve` process named ``name``; returns its URL (once it answers, with ``wait``)."""
        port = free_port()
        self.start(name, "kdc", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers))
        url = f"http://127.0.0.1:{port}"
        if wait:
            wait_http(url + "/healthz")
        return url

    def start_service(self, keytab: str = "api.keytab") -> None:
        self.api_url = self.start_replica("api", keytab)

    def start_replica(self, name: str, keytab: str = "api.keytab", workers: int = 2, *, wait: bool = True) -> str:
        """Another `tally service serve` process (a replica) on ``keytab``; returns its URL."""
        port = free_port()
        self.start(name, "service", "serve", "--keytab", keytab, "--host", "127.0.0.1", "--port", str(port),
                   "--workers", str(workers))
        url = f"http://127.0.0.1:{port}"
        if wait:
            wait_http(url + "/healthz")
        return url

    def start_replicas(self, kdcs: int, services: int, workers: int = 1) -> tuple[list[str], list[str]]:
        """``kdcs`` KDC and ``services`` "api" service processes started together (one start-up delay,
        not one per process); returns their URLs.  The first of each is also ``kdc_url``/``api_url``."""
        kdc_urls = [self.start_kdc_replica(f"kdc{i}", workers, wait=False) for i in range(kdcs)]
        api_urls = [self.start_replica(f"api{i}", workers=workers, wait=False) for i in range(services)]
        for url in kdc_urls + api_urls:
            wait_http(url + "/healthz")
        self.kdc_url, self.api_url = kdc_urls[0], api_urls[0]
        return kdc_urls, api_urls

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def shutdown(self) -> None:
        self.stop(*self.procs)
        if self.redis is not None:
            self.redis.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in self.workdir.glob("*.log"))


def provision(workdir: Path, redis_url: str, *, env: dict[str, str] | None = None,
              redis: RedisProcess | None = None) -> Deployment:
    """Create the realm in the store at ``redis_url`` with the CLI, as the README tells an operator:
    client "alice" (key in alice.key) and service "api" (api.keytab).  No server is started.

    ``env`` adds settings (e.g. a short ``TALLY_MAX_SKEW``, ``TALLY_REDIS_*``) for every process.
    """
    full = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    full.update(env or {})
    full.update(
        TALLY_REDIS_URL=redis_url,
        TALLY_REALM=REALM,
        TALLY_MASTER_KEY_FILE=str(workdir / "master.key"),
        TALLY_CCACHE=str(workdir / "ccache.json"),
        HOME=str(workdir),
    )
    d = Deployment(workdir, redis, full)
    try:
        d.tally("kdc", "init", "--realm", REALM)
        d.tally("admin", "add-client", "alice", "--key-out", "alice.key")
        d.tally("admin", "add-service", "api", "--keytab", "api.keytab")
    except BaseException:
        d.shutdown()
        raise
    return d


def deploy(workdir: Path, *, persistent: bool = True, env: dict[str, str] | None = None) -> Deployment:
    """Start a redis-server, provision a realm in it, and start one KDC and one service.

    ``env`` adds settings (e.g. a short ``TALLY_MAX_SKEW``) for every process.
    """
    redis = RedisProcess(workdir, persistent=persistent)
    redis.start()
    d = provision(workdir, redis.url, env=env, redis=redis)
    try:
        d.start_kdc()
        d.start_service()
    except BaseException:
        d.shutdown()
        raise
    return d
