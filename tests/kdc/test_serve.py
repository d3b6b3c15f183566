"""gunicorn really runs: the factory is called in each worker after fork, and the KDC answers over HTTP."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import requests
from click.testing import CliRunner
from gunicorn.app.base import Application

from client_sdk.flow import finish_as_exchange, start_as_exchange
from kdc.cli import admin_group, kdc_group
from kdc.serve import WORKER_CLASS, gunicorn_options, server_settings
from kdc.server_log import access_fields
from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.errors import ConfigurationError
from tally_protocol.keys import Key
from tally_runtime.keytab_file import read_keytab
from tests.kdc.conftest import REALM
from tests.support.process_group import stop_groups
from tests.support.redis_proc import RedisProcess, free_port

ROOT = Path(__file__).resolve().parents[2]


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not come up")


@contextmanager
def running(code: str, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", proc)
        yield proc
    finally:
        stop_groups([proc])


def test_factory_runs_in_each_worker_after_fork(tmp_path: Path) -> None:
    port = free_port()
    code = ("from kdc.serve import serve_wsgi; from tests.kdc.wsgi_probe import factory; "
            f"serve_wsgi(factory, host='127.0.0.1', port={port}, workers=2, threads=2)")
    with running(code, port, tmp_path / "probe.log") as proc:
        answer = requests.get(f"http://127.0.0.1:{port}/", timeout=5).json()
    assert answer["built_in"] == answer["serving"] != proc.pid


def test_a_worker_with_every_thread_busy_leaves_new_connections_to_another(tmp_path: Path) -> None:
    # Keep-alive connections opened in a burst once all went to whichever worker woke first, which then
    # queued their requests on its own threads while the other worker idled (issue 5).
    port = free_port()
    code = ("from kdc.serve import serve_wsgi; from tests.kdc.wsgi_probe import factory; "
            f"serve_wsgi(factory, host='127.0.0.1', port={port}, workers=2, threads=2)")
    with running(code, port, tmp_path / "probe.log"), ThreadPoolExecutor(4) as pool:
        def slow(_: int) -> int:
            with requests.Session() as session:  # a connection of its own
                return int(session.get(f"http://127.0.0.1:{port}/slow", timeout=10).json()["serving"])

        served = list(pool.map(slow, range(4)))
    assert sorted(served.count(pid) for pid in set(served)) == [2, 2]


def test_kdc_serve_answers_an_as_exchange_under_gunicorn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         redis_server: RedisProcess, real_redis: redis.Redis) -> None:
    for name, value in (("TALLY_REDIS_URL", redis_server.url), ("TALLY_REALM", REALM),
                        ("TALLY_MASTER_KEY_FILE", str(tmp_path / "master.key"))):
        monkeypatch.setenv(name, value)
    assert CliRunner().invoke(kdc_group, ["init"]).exit_code == 0
    assert CliRunner().invoke(admin_group, ["add-client", "alice", "--key-out", str(tmp_path / "alice.key")]).exit_code == 0
    alice, keys = read_keytab(tmp_path / "alice.key")

    port = free_port()
    code = f"from kdc.cli import kdc_group; kdc_group(['serve', '--port', '{port}', '--workers', '2'])"
    with running(code, port, tmp_path / "kdc.log"):
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/readyz", timeout=5).json() == {"status": "ready"}
        pending = start_as_exchange(alice, Key(keys.current.material, 0), now=time.time(), rng=os.urandom)
        response = requests.post(f"{base}/v1/as", json={"as_req": b64encode(pending.request_bytes)}, timeout=5)
        assert response.status_code == 200, response.text
        tgt = finish_as_exchange(pending, b64decode(response.json()["as_rep"]))
        assert tgt.client == alice
        bad = requests.post(f"{base}/v1/as", data=b"nonsense", timeout=5)
        assert bad.status_code == 400 and bad.json()["error"] == "INVALID_REQUEST"
    assert "Booting worker" in (tmp_path / "kdc.log").read_text()


def test_kdc_serve_refuses_to_run_on_the_embedded_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_REALM", REALM)
    result = CliRunner().invoke(kdc_group, ["serve"])
    assert result.exit_code == 1 and "TALLY_REDIS_URL" in result.output


def test_gunicorn_options_load_the_app_in_workers_and_bracket_ipv6() -> None:
    options = gunicorn_options(host="::1", port=8750, workers=3, threads=1)
    assert options["preload_app"] is False and options["bind"] == ["[::1]:8750"]
    assert options["worker_class"] == WORKER_CLASS and options["workers"] == 3
    assert options["control_socket_disable"] is True  # a KDC and a service on one host must not share it
    with pytest.raises(ConfigurationError):
        gunicorn_options(host="127.0.0.1", port=0)


class _ConfigFileApp(Application):  # type: ignore[misc]
    """gunicorn reading deploy/gunicorn.conf.py exactly as `gunicorn -c` does."""

    def load_config(self) -> None:
        self.load_config_from_file(str(ROOT / "deploy" / "gunicorn.conf.py"))

    def load(self) -> None:
        return None


def test_deploy_gunicorn_conf_sets_what_tally_serve_sets() -> None:
    from kdc.serve import _FactoryApplication

    from_file = _ConfigFileApp().cfg
    from_tally = _FactoryApplication(lambda: None, gunicorn_options(host="127.0.0.1", port=8750)).cfg
    for name in server_settings():
        if name in from_tally.settings:
            assert from_file.settings[name].get() == from_tally.settings[name].get(), name


def test_an_access_line_carries_the_request_but_never_its_query_string() -> None:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/v1/enroll", "QUERY_STRING": "token=s3cret",
               "REMOTE_ADDR": "127.0.0.1", "HTTP_USER_AGENT": "tally-sdk"}
    fields = access_fields("201 CREATED", environ, datetime.timedelta(milliseconds=12.5), 42,
                           [("Content-Type", "application/json"), ("X-Request-Id", "abc123")])
    assert fields == {"method": "GET", "path": "/v1/enroll", "status": 201, "bytes": 42, "duration_ms": 12.5,
                      "remote": "127.0.0.1", "user_agent": "tally-sdk", "request_id": "abc123"}
    assert "s3cret" not in json.dumps(fields)


def test_the_private_metrics_directory_outlives_workers_and_goes_with_the_server(tmp_path: Path) -> None:
    # on_starting in a fresh process (it switches prometheus-client, so never in this one); a forked
    # "worker" exits first: the directory must survive it, then go when the "server" exits, even on a
    # failed start (exit 1 without gunicorn's on_exit hook).
    code = ("import os, sys\n"
            "from kdc.serve import on_starting\n"
            "on_starting(None)\n"
            "directory = os.environ['PROMETHEUS_MULTIPROC_DIR']\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    sys.exit(0)\n"
            "os.waitpid(pid, 0)\n"
            "print(directory, os.path.isdir(directory))\n"
            "sys.exit(1)\n")
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    result = subprocess.run([sys.executable, "-c", code], env={**env, "TMPDIR": str(tmp_path)}, capture_output=True,
                            text=True, check=False, timeout=60)
    directory, alive_after_worker = result.stdout.split()
    assert result.returncode == 1 and alive_after_worker == "True"
    assert Path(directory).parent == tmp_path and not Path(directory).exists()
