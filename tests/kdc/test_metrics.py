"""KDC metrics: requests by route and status class, refusals by code, issuance latency, GET /metrics."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tally_protocol.encoding import b64encode
from tally_protocol.principal import Principal
from tests.kdc.conftest import REALM, T0, Realm
from tests.kdc.wire import get_ticket, login, post, send_as

WRONG = b"\x00" * 32


def sample(name: str, **labels: str) -> float:
    """A metric's current value (0 before its first use): tests read deltas, the registry is process-wide."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_successful_login_is_counted_and_its_issuance_timed(realm: Realm) -> None:
    ok = sample("tally_kdc_requests_total", endpoint="/v1/as", outcome="2xx")
    timed = sample("tally_kdc_issue_seconds_count", exchange="as")
    login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    assert sample("tally_kdc_requests_total", endpoint="/v1/as", outcome="2xx") == ok + 1
    assert sample("tally_kdc_issue_seconds_count", exchange="as") == timed + 1


def test_service_ticket_issuance_is_timed_apart_from_logins(realm: Realm) -> None:
    tgt = login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    as_timed, tgs_timed = (sample("tally_kdc_issue_seconds_count", exchange=e) for e in ("as", "tgs"))
    get_ticket(realm.http, tgt, realm.api, now=T0)
    assert sample("tally_kdc_issue_seconds_count", exchange="tgs") == tgs_timed + 1
    assert sample("tally_kdc_issue_seconds_count", exchange="as") == as_timed


def test_wrong_key_is_counted_as_a_preauth_refusal_and_not_timed(realm: Realm) -> None:
    refused = sample("tally_kdc_refusals_total", endpoint="/v1/as", code="PREAUTH_FAILED")
    client_errors = sample("tally_kdc_requests_total", endpoint="/v1/as", outcome="4xx")
    timed = sample("tally_kdc_issue_seconds_count", exchange="as")
    send_as(realm.http, realm.alice, WRONG, now=T0)
    assert sample("tally_kdc_refusals_total", endpoint="/v1/as", code="PREAUTH_FAILED") == refused + 1
    assert sample("tally_kdc_requests_total", endpoint="/v1/as", outcome="4xx") == client_errors + 1
    assert sample("tally_kdc_issue_seconds_count", exchange="as") == timed


def test_replay_skew_and_malformed_refusals_are_counted_under_their_codes(realm: Realm) -> None:
    codes = ("REPLAY_DETECTED", "CLOCK_SKEW", "INVALID_REQUEST")
    before = {code: sample("tally_kdc_refusals_total", endpoint="/v1/as", code=code) for code in codes}
    pending, _ = send_as(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    post(realm.http, "/v1/as", {"as_req": b64encode(pending.request_bytes)})
    send_as(realm.http, realm.alice, realm.alice_keys.current.material, now=T0 - 3600)
    post(realm.http, "/v1/as", {"nothing": 1})
    assert {code: sample("tally_kdc_refusals_total", endpoint="/v1/as", code=code) for code in codes} == {
        code: value + 1 for code, value in before.items()}


def test_lockout_is_counted_under_its_code(realm: Realm) -> None:
    ghost = Principal("ghost", REALM)
    before = sample("tally_kdc_refusals_total", endpoint="/v1/as", code="LOCKED_OUT")
    for _ in range(4):
        send_as(realm.http, ghost, WRONG, now=T0)
    assert sample("tally_kdc_refusals_total", endpoint="/v1/as", code="LOCKED_OUT") == before + 1


def test_unknown_paths_share_one_series_whatever_the_path(realm: Realm) -> None:
    before = sample("tally_kdc_requests_total", endpoint="unmatched", outcome="4xx")
    realm.http.get("/scan/one")
    realm.http.get("/scan/two")
    assert sample("tally_kdc_requests_total", endpoint="unmatched", outcome="4xx") == before + 2
    assert REGISTRY.get_sample_value("tally_kdc_requests_total", {"endpoint": "/scan/one", "outcome": "4xx"}) is None


def test_metrics_endpoint_answers_text_format_without_names_or_addresses(realm: Realm) -> None:
    login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    send_as(realm.http, Principal("ghost", REALM), WRONG, now=T0)
    response = realm.http.get("/metrics")
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    assert "# TYPE tally_kdc_requests_total counter" in text and "tally_kdc_issue_seconds_bucket" in text
    assert "alice" not in text and "ghost" not in text and "127.0.0.1" not in text
