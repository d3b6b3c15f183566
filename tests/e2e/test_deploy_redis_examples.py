"""The example Sentinel and Cluster configurations of deploy/redis work as deploy/README.md installs them.

Each file runs with redis-server on loopback; only what names a machine changes (addresses, ports,
directories, include paths), and the password lines are added the way the README says.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.deploy.compose_local import DEPLOY
from tests.support.redis_proc import free_port
from tests.support.redis_topologies import wait_until

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-battery-staple"


def redis_server() -> str:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    return exe


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is a valid, free port too."""
    while True:
        port = free_port()
        if port + 10000 <= 65535:
            try:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                continue


def run_instruction(conf_text: str, starts: str, paths: dict[str, Path]) -> None:
    """Run the shell line a configuration file's comment gives for adding its password, paths made local."""
    [line] = [line.lstrip("# ") for line in conf_text.splitlines() if line.lstrip("# ").startswith(starts)]
    for path, local in paths.items():
        line = line.replace(path, str(local))
    subprocess.run(["sh", "-c", line], env={**os.environ, "pw": PASSWORD}, check=True, timeout=10)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        proc.terminate()
    for proc in started:
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start(processes: list[subprocess.Popen[bytes]], conf: Path, *extra: str) -> None:
    processes.append(subprocess.Popen([redis_server(), str(conf), *extra], cwd=conf.parent,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def data_node(processes: list[subprocess.Popen[bytes]], directory: Path) -> int:
    """A standalone node on deploy/redis/redis.conf with the password, as the systemd path installs one."""
    directory.mkdir()
    port = free_port()
    conf = directory / "redis.conf"
    conf.write_text(f"include {DEPLOY / 'redis' / 'redis.conf'}\nport {port}\nbind 127.0.0.1\ndir {directory}\n"
                    f"requirepass {PASSWORD}\n")
    start(processes, conf)
    wait_until(lambda: redis.Redis(port=port, password=PASSWORD).ping(), 20, "the data node did not answer")
    return port


def test_the_sentinel_example_monitors_a_password_protected_master(tmp_path: Path,
                                                                   processes: list[subprocess.Popen[bytes]]) -> None:
    master = data_node(processes, tmp_path / "master")
    port = free_port()
    text = (DEPLOY / "redis" / "sentinel.conf").read_text()
    text = re.sub(r"(?m)^port 26379$", f"port {port}", text)
    text = re.sub(r"(?m)^bind 0\.0\.0\.0$", "bind 127.0.0.1", text)
    text = re.sub(r"(?m)^dir .*$", f"dir {tmp_path}", text)
    text = re.sub(r"(?m)^sentinel monitor tally 10\.0\.0\.11 6379 2$", f"sentinel monitor tally 127.0.0.1 {master} 2",
                  text)
    conf = tmp_path / "sentinel.conf"
    conf.write_text(text)
    (tmp_path / "redis_password").write_text(PASSWORD + "\n")
    run_instruction(text, "printf 'sentinel auth-pass", {"/etc/tally/redis_password": tmp_path / "redis_password",
                                                         "/etc/redis/sentinel.conf": conf})
    start(processes, conf, "--sentinel")
    sentinel = redis.Redis(port=port, decode_responses=True)

    run_id = redis.Redis(port=master, password=PASSWORD).info("server")["run_id"]

    def knows_the_master() -> bool:
        # The sentinel learns the master's run id from its INFO, which answers only when authenticated.
        return bool(sentinel.sentinel_master("tally").get("runid") == run_id)

    wait_until(knows_the_master, 20, "the sentinel did not reach the master")
    assert sentinel.sentinel_get_master_addr_by_name("tally") == ("127.0.0.1", master)


def test_the_cluster_example_makes_three_masters_and_three_replicas(tmp_path: Path,
                                                                    processes: list[subprocess.Popen[bytes]]) -> None:
    node_conf = (DEPLOY / "redis" / "cluster" / "node.conf").read_text()
    run_instruction(node_conf, "printf 'requirepass", {"/etc/redis/auth.conf": tmp_path / "auth.conf"})
    ports = [cluster_port() for _ in range(6)]
    for port in ports:
        node = tmp_path / str(port)
        node.mkdir()
        text = node_conf.replace("include /etc/redis/redis.conf", f"include {DEPLOY / 'redis' / 'redis.conf'}")
        text = text.replace("include /etc/redis/auth.conf", f"include {tmp_path / 'auth.conf'}")
        text = re.sub(r"(?m)^port 7000$", f"port {port}", text)
        text = re.sub(r"(?m)^bind 0\.0\.0\.0$", "bind 127.0.0.1", text)
        text = text.replace("nodes-7000.conf", f"nodes-{port}.conf")
        (node / "node.conf").write_text(text)
        start(processes, node / "node.conf")
    for port in ports:
        wait_until(lambda port=port: redis.Redis(port=port, password=PASSWORD).ping(), 20, f"node {port} did not answer")
    (tmp_path / "redis_password").write_text(PASSWORD + "\n")
    subprocess.run([str(DEPLOY / "redis" / "cluster" / "create-cluster.sh"), *(f"127.0.0.1:{p}" for p in ports)],
                   env={**os.environ, "REDIS_PASSWORD_FILE": str(tmp_path / "redis_password")},
                   capture_output=True, check=True, timeout=60)
    node = redis.Redis(port=ports[0], password=PASSWORD, decode_responses=True)
    wait_until(lambda: node.cluster("info")["cluster_state"] == "ok", 20, "the cluster did not settle")
    roles = [redis.Redis(port=p, password=PASSWORD, decode_responses=True).info("replication")["role"] for p in ports]
    assert sorted(roles) == ["master"] * 3 + ["slave"] * 3
    assert node.config_get("appendonly") == {"appendonly": "yes"}
