"""The KDC's request ids: a well-formed X-Request-Id is kept, else minted; echoed, in error bodies, in the logs."""

from __future__ import annotations

import json

from tests.kdc.conftest import T0, AuditCapture, Realm
from tests.kdc.wire import login, send_as

WRONG = bytes(32)


def test_a_well_formed_request_id_is_echoed_and_named_by_the_audit_event(realm: Realm,
                                                                          audit_events: AuditCapture) -> None:
    realm.http.environ_base["HTTP_X_REQUEST_ID"] = "login-7"
    login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    issued = [json.loads(line) for line in audit_events.lines]
    assert [(e["event"], e["request_id"]) for e in issued] == [("as.issue", "login-7")]


def test_a_refusal_names_the_request_id_in_its_body_and_header(realm: Realm, audit_events: AuditCapture) -> None:
    realm.http.environ_base["HTTP_X_REQUEST_ID"] = "quote-me"
    _, refused = send_as(realm.http, realm.alice, WRONG, now=T0)
    assert refused.headers["X-Request-Id"] == refused.get_json()["request_id"] == "quote-me"
    assert json.loads(audit_events.lines[-1])["request_id"] == "quote-me"


def test_without_an_id_the_kdc_mints_one_and_logs_under_it(realm: Realm, audit_events: AuditCapture) -> None:
    _, refused = send_as(realm.http, realm.alice, WRONG, now=T0)
    minted = refused.headers["X-Request-Id"]
    assert len(minted) == 32 and refused.get_json()["request_id"] == minted
    assert json.loads(audit_events.lines[-1])["request_id"] == minted


def test_a_malformed_id_is_replaced_and_never_logged(realm: Realm, audit_events: AuditCapture) -> None:
    junk = '","admin":true,"x":"' + "A" * 100
    realm.http.environ_base["HTTP_X_REQUEST_ID"] = junk
    _, refused = send_as(realm.http, realm.alice, WRONG, now=T0)
    assert refused.headers["X-Request-Id"] != junk and len(refused.headers["X-Request-Id"]) == 32
    assert "admin" not in "".join(audit_events.lines) and "AAAA" not in "".join(audit_events.lines)


def test_errors_outside_the_protocol_name_the_request_id_too(realm: Realm) -> None:
    missing = realm.http.get("/v1/nowhere", headers={"X-Request-Id": "r404"})
    assert (missing.status_code, missing.get_json()["request_id"], missing.headers["X-Request-Id"]) == (
        404, "r404", "r404")


def test_every_response_echoes_the_request_id(realm: Realm) -> None:
    assert realm.http.get("/healthz", headers={"X-Request-Id": "probe-1"}).headers["X-Request-Id"] == "probe-1"
