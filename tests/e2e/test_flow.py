"""End to end: real processes (KDC and demo service under gunicorn), real redis-server, the real CLI."""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest
import requests

from client_sdk import Client
from client_sdk.flow import Credential, make_ap_request
from tally_protocol.binding import RequestBinding, canonical_host
from tally_protocol.errors import MutualAuthFailed, PrincipalDisabled, ReplayDetected
from tests.e2e.realm import REALM, Deployment

pytestmark = pytest.mark.e2e


def _client(d: Deployment, name: str = "alice") -> Client:
    return Client(d.kdc_url, f"{name}@{REALM}", key_file=d.workdir / f"{name}.key")


def _signed(d: Deployment, cred: Credential, method: str, path: str, body: bytes) -> dict[str, str]:
    port = int(d.api_url.rsplit(":", 1)[1])
    binding = RequestBinding.for_http(method, canonical_host("http", "127.0.0.1", port), path, body)
    return {"Authorization": make_ap_request(cred, binding, now=time.time(), rng=os.urandom).authorization}


def test_cli_login_tickets_get_and_logout(deployment: Deployment) -> None:
    d = deployment
    d.tally("login", "alice", "--key-file", "alice.key", "--kdc", d.kdc_url)
    assert f"krbtgt/{REALM}@{REALM}" in d.tally("tickets").stdout
    out = d.tally("get", f"{d.api_url}/whoami", "--service", "api").stdout
    assert json.loads(out) == {"principal": f"alice@{REALM}"}
    assert f"api@{REALM}" in d.tally("tickets").stdout
    d.tally("logout")
    assert not (d.workdir / "ccache.json").exists()
    assert d.tally("get", f"{d.api_url}/whoami", "--service", "api", check=False).returncode != 0


def test_sdk_request_and_plugins_are_authenticated(deployment: Deployment) -> None:
    d = deployment
    client = _client(d)
    assert client.get(f"{d.api_url}/whoami", service="api").json()["principal"] == f"alice@{REALM}"
    r = requests.post(f"{d.api_url}/echo", data=b"hello", auth=client.auth(service="api"), timeout=10)
    assert (r.status_code, r.content) == (200, b"hello")
    h = httpx.post(f"{d.api_url}/echo", content=b"over httpx", auth=client.httpx_auth(service="api"))
    assert (h.status_code, h.content) == (200, b"over httpx")


def test_replayed_request_is_rejected_by_a_running_service(deployment: Deployment) -> None:
    d = deployment
    cred = _client(d).service_ticket("api")
    headers = _signed(d, cred, "POST", "/echo", b"pay 10")
    assert requests.post(f"{d.api_url}/echo", data=b"pay 10", headers=headers, timeout=10).status_code == 200
    again = requests.post(f"{d.api_url}/echo", data=b"pay 10", headers=headers, timeout=10)
    assert again.status_code == 401
    assert again.json()["error"] == ReplayDetected.code
    assert 'error="REPLAY_DETECTED"' in again.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("method", "path", "body", "component"),
    [("PUT", "/echo", b"pay 10", "method"), ("POST", "/echo?to=mallory", b"pay 10", "path"),
     ("POST", "/echo", b"pay 10000", "body")],
)
def test_tampered_request_is_rejected_naming_the_component(
    deployment: Deployment, method: str, path: str, body: bytes, component: str
) -> None:
    d = deployment
    headers = _signed(d, _client(d).service_ticket("api"), "POST", "/echo", b"pay 10")
    r = requests.request(method, f"{d.api_url}{path}", data=body, headers=headers, timeout=10)
    assert r.status_code == 401
    assert (r.json()["error"], r.json()["component"]) == ("BINDING_MISMATCH", component)


def test_response_without_the_services_proof_is_refused_by_the_sdk(deployment: Deployment) -> None:
    d = deployment
    # The KDC's health endpoint answers 200 but cannot prove to be service "api".
    with pytest.raises(MutualAuthFailed):
        _client(d).get(f"{d.kdc_url}/healthz", service="api")


def test_key_rotation_keeps_tickets_issued_before_valid(deployment: Deployment) -> None:
    d = deployment
    old = _client(d).service_ticket("api")
    assert old.ticket.kvno == 1
    d.tally("admin", "rotate", "api", "--keytab", "api.keytab")
    d.stop("api")
    d.start_service()
    r = requests.get(f"{d.api_url}/whoami", headers=_signed(d, old, "GET", "/whoami", b""), timeout=10)
    assert r.status_code == 200
    new = _client(d).service_ticket("api")
    assert new.ticket.kvno == 2
    assert requests.get(f"{d.api_url}/whoami", headers=_signed(d, new, "GET", "/whoami", b""), timeout=10).ok


def test_disabled_client_can_neither_log_in_nor_get_service_tickets(deployment: Deployment) -> None:
    d = deployment
    d.tally("admin", "add-client", "carol", "--key-out", "carol.key")
    carol = _client(d, "carol")
    carol.login()
    d.tally("admin", "disable", "carol")
    with pytest.raises(PrincipalDisabled):
        carol.service_ticket("api")
    with pytest.raises(PrincipalDisabled):
        _client(d, "carol").login()
    refused = d.tally("login", "carol", "--key-file", "carol.key", "--kdc", d.kdc_url, check=False)
    assert refused.returncode != 0 and "PRINCIPAL_DISABLED" in refused.stderr


def test_password_principal_logs_in_and_a_wrong_password_is_refused(deployment: Deployment) -> None:
    d = deployment
    d.tally("admin", "add-client", "bob", "--password", input="correct horse battery\n")
    d.tally("login", "bob", "--password", "--kdc", d.kdc_url, input="correct horse battery\n")
    out = d.tally("get", f"{d.api_url}/whoami", "--service", "api").stdout
    assert json.loads(out) == {"principal": f"bob@{REALM}"}
    wrong = d.tally("login", "bob", "--password", "--kdc", d.kdc_url, input="wrong horse\n", check=False)
    assert wrong.returncode != 0 and "PREAUTH_FAILED" in wrong.stderr
    d.tally("logout")


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _logged(d: Deployment, name: str, request_id: str, wanted: int, timeout: float = 5.0) -> list[dict[str, object]]:
    """The JSON lines of ``name``'s log naming ``request_id``, once ``wanted`` of tallystick's own are there."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [e for e in _json_lines(d.log(name)) if e.get("request_id") == request_id]
        if sum(str(e.get("logger")).startswith("tally.") for e in lines) >= wanted or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_one_request_id_runs_from_the_client_through_the_kdc_to_the_service(deployment: Deployment) -> None:
    d = deployment
    request_id = f"e2e-{os.urandom(8).hex()}"
    client = _client(d)  # no TGT yet: the request needs an AS and a TGS exchange first
    response = client.get(f"{d.api_url}/whoami", service="api", headers={"X-Request-Id": request_id})
    assert response.request.headers["X-Request-Id"] == response.headers["X-Request-Id"] == request_id
    kdc = [e for e in _logged(d, "kdc", request_id, 2) if e["logger"] == "tally.audit"]
    assert [e["event"] for e in kdc] == ["as.issue", "tgs.issue"]
    api = [e for e in _logged(d, "api", request_id, 1) if e["logger"] == "tally.service"]
    assert [(e["msg"], e["client"]) for e in api] == [("request authenticated", f"alice@{REALM}")]


def test_an_oversized_chunked_body_is_refused_by_the_running_kdc(deployment: Deployment) -> None:
    chunks = (b"A" * 16384 for _ in range(8))  # 128 KiB, no Content-Length: Transfer-Encoding chunked
    r = requests.post(f"{deployment.kdc_url}/v1/as", data=chunks, timeout=10)
    assert (r.status_code, r.json()["error"], r.json()["request_id"]) == (413, "REQUEST_TOO_LARGE",
                                                                          r.headers["X-Request-Id"])
