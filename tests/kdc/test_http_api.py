"""The KDC's HTTP surface: input validation, health, OpenAPI, store outages and audit events."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

from kdc.app import create_app
from kdc.master_key import MasterKey
from tally_protocol.encoding import b64encode
from tally_protocol.errors import ConfigurationError
from tally_protocol.principal import Principal
from tests.kdc.conftest import REALM, T0, AuditCapture, FixedClock, Realm, settings_for
from tests.kdc.wire import get_ticket, login, send_as, send_tgs

WRONG = bytes(32)


def json_error(response: Any) -> tuple[int, str]:
    assert response.is_json, response.data[:200]
    return response.status_code, response.get_json()["error"]


@pytest.mark.parametrize("path", ["/v1/as", "/v1/tgs", "/v1/as/params"])
@pytest.mark.parametrize(("body", "status", "code"), [
    (b"not json", 400, "INVALID_REQUEST"),
    (b"[1, 2]", 400, "INVALID_REQUEST"),
    (b"{}", 400, "INVALID_REQUEST"),
    (b'{"as_req": 5, "tgs_req": 5, "principal": 5}', 400, "INVALID_REQUEST"),
])
def test_bad_json_bodies_are_400_json(realm: Realm, path: str, body: bytes, status: int, code: str) -> None:
    response = realm.http.post(path, data=body, content_type="application/json")
    assert json_error(response) == (status, code)


@pytest.mark.parametrize(("field", "path"), [("as_req", "/v1/as"), ("tgs_req", "/v1/tgs")])
@pytest.mark.parametrize("value", ["!!!", "AAAA=", "not base64 at all", ""])
def test_bad_base64_is_400_malformed(realm: Realm, field: str, path: str, value: str) -> None:
    assert json_error(realm.http.post(path, json={field: value})) == (400, "MALFORMED_MESSAGE")


def test_oversized_body_is_413_json(realm: Realm) -> None:
    response = realm.http.post("/v1/as", json={"as_req": "A" * 70_000})
    assert json_error(response)[0] == 413


def test_wrong_method_is_405_json(realm: Realm) -> None:
    assert json_error(realm.http.get("/v1/as"))[0] == 405


def test_bad_principal_name_for_params_is_400(realm: Realm) -> None:
    response = realm.http.post("/v1/as/params", json={"principal": "a b@lower"})
    assert json_error(response) == (400, "INVALID_PRINCIPAL")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), field=st.sampled_from(["as_req", "tgs_req"]))
def test_arbitrary_message_bytes_never_cause_a_server_error(realm: Realm, data: bytes, field: str) -> None:
    path = "/v1/as" if field == "as_req" else "/v1/tgs"
    status, _ = json_error(realm.http.post(path, json={field: b64encode(data)}))
    assert 400 <= status < 500


def test_healthz_and_readyz(realm: Realm) -> None:
    assert realm.http.get("/healthz").get_json() == {"status": "ok"}
    assert realm.http.get("/readyz").get_json() == {"status": "ready"}


def down_app(down_redis: redis.Redis, master_key: MasterKey, tmp_path: Any) -> Any:
    return create_app({"TESTING": True}, settings=settings_for(tmp_path), redis_client=down_redis,
                      master_key=master_key).test_client()


def test_readyz_is_503_when_the_store_is_down(down_redis: redis.Redis, master_key: MasterKey, tmp_path: Any) -> None:
    response = down_app(down_redis, master_key, tmp_path).get("/readyz")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.get_json() == {"status": "unavailable", "error": "STORE_UNAVAILABLE"}


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/as", {"as_req": "AAAA"}), ("/v1/tgs", {"tgs_req": "AAAA"}), ("/v1/as/params", {"principal": "bob"}),
])
def test_kdc_endpoints_fail_closed_with_503_when_the_store_is_down(
        down_redis: redis.Redis, master_key: MasterKey, tmp_path: Any, path: str, body: dict[str, str]) -> None:
    response = down_app(down_redis, master_key, tmp_path).post(path, json=body)
    assert json_error(response) == (503, "STORE_UNAVAILABLE")
    assert response.headers["Retry-After"] == "1"


def test_as_fails_closed_when_real_redis_stops(real_redis: redis.Redis, master_key: MasterKey, clock: FixedClock,
                                               tmp_path: Any) -> None:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from tests.kdc.conftest import make_realm
    from tests.support.redis_proc import RedisProcess

    own = RedisProcess(tmp_path)
    own.start()
    store = redis.Redis.from_url(own.url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=0.5)
    try:
        r = make_realm(store, master_key, clock, tmp_path)
        login(r.http, r.alice, r.alice_keys.current.material, now=T0)
        own.stop()
        _, response = send_as(r.http, r.alice, r.alice_keys.current.material, now=T0)
        assert json_error(response) == (503, "STORE_UNAVAILABLE")
        assert r.http.get("/readyz").status_code == 503
    finally:
        own.stop()
        store.close()


def test_openapi_document_lists_every_endpoint(realm: Realm) -> None:
    response = realm.http.get("/openapi.json")
    doc = json.loads(response.data)
    assert doc["openapi"].startswith("3.1")
    # The admin API's paths are checked route by route in tests/kdc/admin/test_api.py.
    assert {p for p in doc["paths"] if not p.startswith("/admin/")} == {
        "/v1/as", "/v1/tgs", "/v1/as/params", "/v1/enroll", "/v1/pair/start", "/v1/pair/finish", "/healthz", "/readyz",
        "/openapi.json"}
    assert doc["components"]["schemas"]["Error"]["required"] == ["error", "message"]
    assert doc["paths"]["/v1/as"]["post"]["responses"]["401"]


def test_openapi_document_is_a_valid_openapi_3_1_document(realm: Realm) -> None:
    validate(json.loads(realm.http.get("/openapi.json").data))


def test_issuance_and_refusals_are_audited_without_secrets(realm: Realm, audit_events: AuditCapture) -> None:
    material = realm.alice_keys.current.material
    pending, _ = send_as(realm.http, realm.alice, material, now=T0)
    tgt = login(realm.http, realm.alice, material, now=T0)
    send_as(realm.http, Principal("ghost", REALM), WRONG, now=T0, address="127.0.0.9")
    ticket = get_ticket(realm.http, tgt, realm.api, now=T0)
    send_tgs(realm.http, tgt, Principal("nope", REALM), now=T0)

    events = [(e["event"], e["outcome"], e.get("principal"), e.get("service"), e.get("error"))
              for e in audit_events.events]
    assert events == [
        ("as.issue", "success", str(realm.alice), f"krbtgt/{REALM}@{REALM}", None),
        ("as.issue", "success", str(realm.alice), f"krbtgt/{REALM}@{REALM}", None),
        ("as.refuse", "refused", f"ghost@{REALM}", f"krbtgt/{REALM}@{REALM}", "PREAUTH_FAILED"),
        ("tgs.issue", "success", str(realm.alice), str(realm.api), None),
        ("tgs.refuse", "refused", str(realm.alice), f"nope@{REALM}", "UNKNOWN_SERVICE"),
    ]
    assert audit_events.events[2]["address"] == "127.0.0.9"
    logged = "\n".join(audit_events.lines)
    secrets = [material, tgt.session_key, ticket.session_key, tgt.ticket.to_bytes(), pending.request_bytes]
    for secret in secrets:
        assert secret.hex() not in logged and b64encode(secret) not in logged and b64encode(secret[:12]) not in logged


def test_rate_limited_requests_are_audited(fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock,
                                           tmp_path: Any, audit_events: AuditCapture) -> None:
    from tests.kdc.conftest import make_realm

    r = make_realm(fake_redis, master_key, clock, tmp_path, TALLY_RATE_LIMIT_REQUESTS=1)
    r.http.get("/healthz")
    r.http.post("/v1/as/params", json={"principal": "bob"})
    r.http.post("/v1/as/params", json={"principal": "bob"})
    assert [(e["event"], e["error"]) for e in audit_events.events] == [("kdc.refuse", "RATE_LIMITED")]


def test_app_without_a_realm_is_a_configuration_error(fake_redis: redis.Redis, master_key: MasterKey,
                                                       tmp_path: Any) -> None:
    settings = settings_for(tmp_path)
    from dataclasses import replace

    with pytest.raises(ConfigurationError, match="realm"):
        create_app(settings=replace(settings, realm=None), redis_client=fake_redis, master_key=master_key)


def test_app_refuses_non_positive_policy_values(fake_redis: redis.Redis, master_key: MasterKey, tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError, match="TALLY_TGT_LIFETIME_S"):
        create_app({"TALLY_TGT_LIFETIME_S": 0}, settings=settings_for(tmp_path), redis_client=fake_redis,
                   master_key=master_key)


def test_app_loads_the_master_key_file_from_settings(fake_redis: redis.Redis, tmp_path: Any) -> None:
    from kdc.master_key import create_master_key_file

    create_master_key_file(tmp_path / "master.key")
    app = create_app({"TESTING": True}, settings=settings_for(tmp_path), redis_client=fake_redis)
    assert app.test_client().get("/healthz").status_code == 200
