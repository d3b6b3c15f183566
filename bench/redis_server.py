"""The benchmark's own redis-server: a free loopback port, no persistence, optionally pinned to a core."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from tally_runtime.redis_settings import RedisSettings
from tally_runtime.redis_store import connect

from .procs import Server, free_port, wait_until


def store_client(url: str) -> redis.Redis:
    """A client made the way the services make theirs (``TALLY_REDIS_URL`` through ``RedisSettings``)."""
    return connect(RedisSettings.from_env({"TALLY_REDIS_URL": url}))


class RedisServer:
    def __init__(self, workdir: Path, name: str = "redis", cpus: set[int] | None = None) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        # No RDB or AOF: persistence would add fork and fsync noise that is not the store's per-request cost.
        self.server = Server(name, [exe, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(workdir),
                                    "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
                             workdir / f"{name}.log", cpus=cpus)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port)

    def start(self) -> RedisServer:
        self.server.start()
        client = self.client()
        wait_until(client.ping, f"redis-server on port {self.port}", timeout=10)
        client.close()
        return self

    def used_memory(self) -> int:
        client = self.client()
        try:
            return int(client.info("memory")["used_memory"])
        finally:
            client.close()

    def stop(self) -> None:
        self.server.stop()
