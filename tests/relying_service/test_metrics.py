"""Relying-service metrics: every verification is counted by outcome and timed, refusals by code, replays apart."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from client_sdk.flow import Credential
from relying_service.demo_app import create_demo_app
from tally_protocol.binding import RequestBinding
from tally_protocol.errors import TallyError
from tests.relying_service.memory_realm import HOST, NOW, MakeVerifier, MemoryRealm

SERVICE = "api@EXAMPLE.TEST"


def sample(name: str, **labels: str) -> float:
    """A metric's current value (0 before its first use): tests read deltas, the registry is process-wide."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def whoami() -> RequestBinding:
    return RequestBinding.for_http("GET", HOST, "/whoami", b"")


def test_accepted_verification_is_counted_and_timed(realm: MemoryRealm, cred: Credential,
                                                    make_verifier: MakeVerifier) -> None:
    accepted = sample("tally_service_verifications_total", service=SERVICE, outcome="accepted")
    timed = sample("tally_service_verify_seconds_count", service=SERVICE)
    make_verifier().verify(realm.authorize(cred).authorization, whoami())
    assert sample("tally_service_verifications_total", service=SERVICE, outcome="accepted") == accepted + 1
    assert sample("tally_service_verify_seconds_count", service=SERVICE) == timed + 1


def test_replay_is_counted_as_a_replay_and_a_refusal(realm: MemoryRealm, cred: Credential,
                                                     make_verifier: MakeVerifier) -> None:
    verifier, header = make_verifier(), realm.authorize(cred).authorization
    verifier.verify(header, whoami())
    replays = sample("tally_service_replays_total", service=SERVICE)
    refused = sample("tally_service_refusals_total", service=SERVICE, code="REPLAY_DETECTED")
    with pytest.raises(TallyError):
        verifier.verify(header, whoami())
    assert sample("tally_service_replays_total", service=SERVICE) == replays + 1
    assert sample("tally_service_refusals_total", service=SERVICE, code="REPLAY_DETECTED") == refused + 1


@pytest.mark.parametrize(("case", "code"), [
    ("missing", "AUTHENTICATION_REQUIRED"), ("garbage", "MALFORMED_MESSAGE"), ("skewed", "CLOCK_SKEW"),
    ("rebound", "BINDING_MISMATCH"),
])
def test_each_refusal_is_counted_under_its_code(realm: MemoryRealm, cred: Credential, make_verifier: MakeVerifier,
                                                case: str, code: str) -> None:
    headers = {"missing": None, "garbage": "Tally !!!", "skewed": realm.authorize(cred, now=NOW - 3600).authorization,
               "rebound": realm.authorize(cred, path="/other").authorization}
    before = sample("tally_service_refusals_total", service=SERVICE, code=code)
    refused = sample("tally_service_verifications_total", service=SERVICE, outcome="refused")
    replays = sample("tally_service_replays_total", service=SERVICE)
    with pytest.raises(TallyError) as caught:
        make_verifier().verify(headers[case], whoami())
    assert str(caught.value.code) == code
    assert sample("tally_service_refusals_total", service=SERVICE, code=code) == before + 1
    assert sample("tally_service_verifications_total", service=SERVICE, outcome="refused") == refused + 1
    assert sample("tally_service_replays_total", service=SERVICE) == replays


def test_demo_app_serves_metrics_in_text_format_without_client_names(realm: MemoryRealm, cred: Credential,
                                                                      make_verifier: MakeVerifier) -> None:
    client = create_demo_app(verifier=make_verifier()).test_client()
    ctx = realm.authorize(cred)
    assert client.get("/whoami", base_url=f"http://{HOST}", headers={"Authorization": ctx.authorization}).status_code == 200
    response = client.get("/metrics")
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    assert "# TYPE tally_service_verifications_total counter" in text
    assert "alice" not in text and str(realm.client) not in text


def test_demo_app_metrics_endpoint_can_be_turned_off(make_verifier: MakeVerifier) -> None:
    client = create_demo_app(verifier=make_verifier(), test_config={"TALLY_METRICS_ENDPOINT": False}).test_client()
    assert client.get("/metrics").status_code == 404
