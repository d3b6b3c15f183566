"""Redis stopped mid-run: everything fails closed with 503, and recovers when Redis is back."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from client_sdk import Client
from client_sdk.flow import make_ap_request
from tally_protocol.binding import RequestBinding, canonical_host
from tally_protocol.errors import StoreUnavailable
from tests.e2e.realm import REALM, Deployment, deploy

pytestmark = pytest.mark.e2e


@pytest.fixture
def outage_deployment(tmp_path: Path) -> Iterator[Deployment]:
    d = deploy(tmp_path)
    yield d
    d.shutdown()


def test_redis_outage_gives_503_and_service_recovers(outage_deployment: Deployment) -> None:
    d = outage_deployment
    client = Client(d.kdc_url, f"alice@{REALM}", key_file=d.workdir / "alice.key")
    cred = client.service_ticket("api")
    host = canonical_host("http", "127.0.0.1", int(d.api_url.rsplit(":", 1)[1]))

    def signed_get() -> requests.Response:
        binding = RequestBinding.for_http("GET", host, "/whoami", b"")
        header = make_ap_request(cred, binding, now=time.time(), rng=os.urandom).authorization
        return requests.get(f"{d.api_url}/whoami", headers={"Authorization": header}, timeout=15)

    assert signed_get().status_code == 200
    d.redis.stop()

    refused = signed_get()
    assert refused.status_code == 503
    assert refused.json()["error"] == "STORE_UNAVAILABLE"
    assert "Retry-After" in refused.headers
    assert requests.get(f"{d.kdc_url}/readyz", timeout=15).status_code == 503
    with pytest.raises(StoreUnavailable):
        Client(d.kdc_url, f"alice@{REALM}", key_file=d.workdir / "alice.key").login()

    d.redis.start()
    deadline = time.monotonic() + 20
    while (r := signed_get()).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert r.status_code == 200
    assert Client(d.kdc_url, f"alice@{REALM}", key_file=d.workdir / "alice.key").login().client.name == "alice"
