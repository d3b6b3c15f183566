"""RFC 4120 §3.2.3 with real processes: a relying service whose Redis lost its replay
cache (FLUSHALL, a restart without persistence) refuses authenticators dated before
the cache's rebirth plus the skew window with 503 + Retry-After, then accepts new ones.

The deployment runs a 2 s skew window (KDC and service) so waiting it out is quick;
the tickets are obtained before any loss (the loss takes the KDC's records too).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import redis
import requests

from client_sdk import Client, Credential
from client_sdk.flow import make_ap_request
from tally_protocol.binding import RequestBinding, canonical_host
from tests.e2e.realm import REALM, Deployment, deploy

pytestmark = pytest.mark.e2e

SKEW = 2


@pytest.fixture(scope="module")
def lossy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    d = deploy(tmp_path_factory.mktemp("replay-loss"), persistent=False, env={"TALLY_MAX_SKEW": str(SKEW)})
    yield d
    d.shutdown()


@pytest.fixture(scope="module")
def alice(lossy: Deployment) -> Client:
    client = Client(lossy.kdc_url, f"alice@{REALM}", key_file=lossy.workdir / "alice.key",
                    services={lossy.api_url: "api"})
    client.service_ticket("api")  # kept in memory: it outlives the store
    return client


def signed_get(d: Deployment, cred: Credential) -> requests.Response:
    host = canonical_host("http", "127.0.0.1", int(d.api_url.rsplit(":", 1)[1]))
    binding = RequestBinding.for_http("GET", host, "/whoami", b"")
    header = make_ap_request(cred, binding, now=time.time(), rng=os.urandom).authorization
    return requests.get(f"{d.api_url}/whoami", headers={"Authorization": header}, timeout=15)


def refused_then_accepted(d: Deployment, cred: Credential) -> None:
    refused = signed_get(d, cred)
    assert (refused.status_code, refused.json()["error"]) == (503, "REPLAY_CACHE_RECOVERING")
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= SKEW + 1
    time.sleep(retry_after)  # the window the server named; a fresh authenticator is then newer than the loss
    deadline = time.monotonic() + 10
    while (answer := signed_get(d, cred)).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answer.json() == {"principal": f"alice@{REALM}"}


def test_flushall_is_refused_with_503_until_the_skew_window_has_passed(lossy: Deployment, alice: Client) -> None:
    cred = alice.service_ticket("api")
    assert signed_get(lossy, cred).status_code == 200
    redis.Redis.from_url(lossy.redis.url).flushall()
    refused_then_accepted(lossy, cred)


def test_restart_without_persistence_is_refused_until_the_skew_window_has_passed(lossy: Deployment,
                                                                                  alice: Client) -> None:
    cred = alice.service_ticket("api")
    assert signed_get(lossy, cred).status_code == 200
    lossy.redis.stop()
    lossy.redis.start()
    refused_then_accepted(lossy, cred)


def test_sdk_waits_out_a_lost_replay_cache_and_succeeds(lossy: Deployment, alice: Client) -> None:
    redis.Redis.from_url(lossy.redis.url).flushall()
    assert alice.get(f"{lossy.api_url}/whoami").json() == {"principal": f"alice@{REALM}"}
