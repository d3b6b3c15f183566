"""The production server under `tally kdc serve` / `tally service serve`: graceful stop, Ctrl-C, metrics.

(Its JSON access log is checked in test_deploy_stack.py, on the servers already running there.)

SIGTERM: requests in flight finish, new connections are refused, exit 0.  A request is held in flight without any test-only endpoint: Redis is paused for
writes (``CLIENT PAUSE ... WRITE``), so a login (the KDC counts it against its
rate limits) or a signed request (the service claims its authenticator in the
replay cache) waits on Redis until the test unpauses it.  The command timeout is
raised for these servers so that the wait is the pause, not a 503.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis
import requests

from client_sdk import Client
from client_sdk.flow import start_as_exchange
from tally_protocol.encoding import b64encode
from tally_protocol.keys import Key
from tally_runtime.keytab_file import read_keytab
from tests.e2e.realm import REALM, Deployment, provision
from tests.support.redis_proc import RedisProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("graceful")
    server = RedisProcess(workdir)
    server.start()
    d = provision(workdir, server.url, env={"TALLY_REDIS_COMMAND_TIMEOUT_MS": "30000"}, redis=server)
    yield d
    d.shutdown()


def refuses_connections(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout}s")
        time.sleep(0.05)


def held_by_the_pause(store: redis.Redis) -> bool:
    """A client's write waits on the pause (Redis flags it blocked): the request is in flight."""
    return any("b" in c.get("flags", "") for c in store.client_list())


def in_flight(request: Callable[[], requests.Response]) -> tuple[threading.Thread, list[requests.Response]]:
    answers: list[requests.Response] = []
    thread = threading.Thread(target=lambda: answers.append(request()), daemon=True)
    thread.start()
    return thread, answers


def assert_drains_then_exits(d: Deployment, name: str, url: str, request: Callable[[], requests.Response]) -> None:
    assert d.redis is not None
    store = redis.Redis(host="127.0.0.1", port=d.redis.port)
    proc = d.procs[name]
    store.execute_command("CLIENT", "PAUSE", 60_000, "WRITE")
    try:
        thread, answers = in_flight(request)
        wait_for(lambda: held_by_the_pause(store), 10, "the request did not reach Redis")
        os.killpg(proc.pid, signal.SIGTERM)
        wait_for(lambda: refuses_connections(url), 10, "new connections were not refused after SIGTERM")
        assert thread.is_alive() and proc.poll() is None  # still serving the request in flight
    finally:
        store.execute_command("CLIENT", "UNPAUSE")
    thread.join(20)
    assert [a.status_code for a in answers] == [200], [a.text for a in answers]
    assert proc.wait(20) == 0
    d.procs.pop(name)
    assert "Traceback" not in d.log(name)


def test_sigterm_lets_a_login_in_flight_finish_on_the_kdc(realm: Deployment) -> None:
    url = realm.start_kdc_replica("kdc-graceful", workers=2)
    alice, keys = read_keytab(realm.workdir / "alice.key")

    def login() -> requests.Response:
        pending = start_as_exchange(alice, Key(keys.current.material, 0), now=time.time(), rng=os.urandom)
        return requests.post(url + "/v1/as", json={"as_req": b64encode(pending.request_bytes)}, timeout=30)

    assert_drains_then_exits(realm, "kdc-graceful", url, login)


def test_sigterm_lets_a_signed_request_in_flight_finish_on_a_service(realm: Deployment, tmp_path: Path) -> None:
    kdc = realm.start_kdc_replica("kdc-for-service", workers=1)
    url = realm.start_replica("api-graceful", workers=2)
    client = Client(kdc_url=kdc, principal=f"alice@{REALM}", key_file=realm.workdir / "alice.key",
                    ccache=tmp_path / "ccache.json")
    assert client.get(url + "/whoami", service="api").status_code == 200  # tickets in hand: only the service waits
    assert_drains_then_exits(realm, "api-graceful", url, lambda: client.get(url + "/whoami", service="api"))


def healthz_count(url: str) -> float:
    text = requests.get(url + "/metrics", headers={"Connection": "close"}, timeout=5).text
    match = re.search(r'^tally_kdc_requests_total\{endpoint="/healthz",outcome="2xx"\} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_without_a_metrics_directory_the_server_adds_up_its_workers_in_a_private_one(realm: Deployment,
                                                                                      tmp_path: Path) -> None:
    env = {k: v for k, v in realm.env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    d = Deployment(realm.workdir, None, {**env, "TMPDIR": str(tmp_path)})
    url = d.start_kdc_replica("kdc-metrics", workers=2)
    try:
        [private] = tmp_path.glob("tally-metrics-*")
        before = healthz_count(url)
        with ThreadPoolExecutor(16) as pool:  # new connections, concurrently: both workers get a share
            assert all(pool.map(lambda _: requests.get(url + "/healthz", headers={"Connection": "close"},
                                                       timeout=5).ok, range(200)))
        assert [healthz_count(url) for _ in range(10)] == [before + 200] * 10
    finally:
        d.stop("kdc-metrics")
    assert not private.exists()  # removed at exit


def test_ctrl_c_stops_the_server_at_once_without_a_traceback(realm: Deployment) -> None:
    url = realm.start_kdc_replica("kdc-interrupted", workers=1)
    proc = realm.procs.pop("kdc-interrupted")
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends to the whole foreground group
    assert proc.wait(10) == 0
    assert refuses_connections(url)
    assert "Traceback" not in realm.log("kdc-interrupted")
