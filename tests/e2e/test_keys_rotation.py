"""End to end: key rotation with a pending key and two service replicas, master key rotation under a running
KDC, and revocation reaching a running service within seconds (real processes, real redis-server, the CLI)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest
import redis
import requests

from client_sdk import Client
from client_sdk.flow import Credential, make_ap_request
from kdc.master_key import load_master_key_file
from kdc.principal_db import PrincipalDB
from tally_protocol.binding import RequestBinding, canonical_host
from tests.e2e.realm import REALM, Deployment, deploy

pytestmark = pytest.mark.e2e

#: Long enough for the CLI, two SIGHUPs and a few requests; the test then waits it out once.
DELAY_S = 6


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = deploy(tmp_path_factory.mktemp("e2e-keys"))
    yield d
    d.shutdown()


def _client(d: Deployment) -> Client:
    return Client(d.kdc_url, f"alice@{REALM}", key_file=d.workdir / "alice.key")


def _get(url: str, cred: Credential) -> requests.Response:
    """GET /whoami with ``cred``, a fresh authenticator each time (the raw protocol, no SDK retry)."""
    port = int(url.rsplit(":", 1)[1])
    binding = RequestBinding.for_http("GET", canonical_host("http", "127.0.0.1", port), "/whoami", b"")
    ctx = make_ap_request(cred, binding, now=time.time(), rng=os.urandom)
    return requests.get(f"{url}/whoami", headers={"Authorization": ctx.authorization}, timeout=10)


def _db(d: Deployment) -> PrincipalDB:
    return PrincipalDB(redis.Redis.from_url(d.redis.url), REALM, load_master_key_file(d.workdir / "master.key"))


def _reload_lines(log: str) -> list[dict[str, object]]:
    lines = (json.loads(line) for line in log.splitlines() if line.startswith("{"))
    return [entry for entry in lines if entry.get("msg") == "keytab reloaded"]


def test_pending_key_reaches_both_replicas_before_the_kdc_issues_under_it(deployment: Deployment) -> None:
    d = deployment
    replica_urls = [d.api_url, d.start_replica("api2")]
    old = _client(d).service_ticket("api")
    assert old.ticket.kvno == 1

    d.tally("admin", "rotate", "api", "--keytab", "api.keytab", "--delay", str(DELAY_S))
    activate_at = _db(d).get("api").current.activate_at
    for name in ("api", "api2"):
        os.kill(d.procs[name].pid, signal.SIGHUP)  # each server forwards it to its workers
    fresh = Client(d.kdc_url, f"alice@{REALM}", key_file=d.workdir / "alice.key").service_ticket("api")
    for url in replica_urls:
        assert _get(url, old).status_code == 200  # old tickets still verify, and the workers reload now
    assert time.time() < activate_at, "the machine was too slow for this test's delay"
    assert fresh.ticket.kvno == 1  # still pending: the KDC issues under version 1
    for name in ("api", "api2"):
        reloads = _reload_lines(d.log(name))
        assert reloads and all(r["reason"] == "signal" and r["kvnos"] == [1, 2] for r in reloads), d.logs()

    time.sleep(max(0.0, activate_at - time.time()) + 1)
    new = Client(d.kdc_url, f"alice@{REALM}", key_file=d.workdir / "alice.key").service_ticket("api")
    assert new.ticket.kvno == 2
    for url in replica_urls:
        assert _get(url, new).status_code == 200
        assert _get(url, old).status_code == 200
    for name in ("api", "api2"):  # no replica needed the unknown-version fallback
        assert all(r["reason"] == "signal" for r in _reload_lines(d.log(name)))


def test_master_key_rotation_under_a_running_kdc(deployment: Deployment) -> None:
    d = deployment
    d.tally("kdc", "rotate-master-key")
    assert _client(d).get(f"{d.api_url}/whoami", service="api").json() == {"principal": f"alice@{REALM}"}
    d.tally("kdc", "rotate-master-key", "--finish")
    assert load_master_key_file(d.workdir / "master.key").kvnos == [2]
    cred = _client(d).service_ticket("api")  # a new login: the KDC unwraps alice's key under version 2
    assert _get(d.api_url, cred).status_code == 200


def test_revocation_reaches_a_running_service_within_seconds(deployment: Deployment) -> None:
    d = deployment
    client = _client(d)
    cred = client.service_ticket("api")
    assert _get(d.api_url, cred).status_code == 200
    d.tally("admin", "revoke", "alice")
    revoked_at = time.monotonic()
    while True:
        r = _get(d.api_url, cred)
        if r.status_code != 200 or time.monotonic() - revoked_at > 5:
            break
        time.sleep(0.1)
    assert (r.status_code, r.json()["error"]) == (401, "TICKET_REVOKED")
    assert time.monotonic() - revoked_at < 3  # the services' copy is at most one second old
    assert 'error="TICKET_REVOKED"' in r.headers["WWW-Authenticate"]
    # The SDK holds alice's key: its one retry drops the revoked TGT and logs in again.
    time.sleep(1)  # a login in the revocation's own second is revoked too
    assert client.get(f"{d.api_url}/whoami", service="api").json() == {"principal": f"alice@{REALM}"}
