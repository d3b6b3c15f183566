"""The exchange front answers POST /v1/as and /v1/tgs without Flask, as Flask did; the rest falls through."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import redis

from kdc import exchange_front
from kdc.master_key import MasterKey
from tally_protocol.errors import MalformedMessage
from tests.kdc.conftest import T0, FixedClock, Realm, make_realm
from tests.kdc.keys.conftest import LogCapture
from tests.kdc.wire import get_ticket, login, post, send_as


@pytest.fixture
def no_flask_dispatch(realm: Realm, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every request that reaches Flask's dispatch."""
    reached: list[str] = []
    dispatch = realm.app.full_dispatch_request

    def recording() -> Any:
        from flask import request

        reached.append(request.path)
        return dispatch()

    monkeypatch.setattr(realm.app, "full_dispatch_request", recording)
    return reached


def test_the_exchanges_are_answered_without_flask_dispatch(realm: Realm, no_flask_dispatch: list[str]) -> None:
    tgt = login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    get_ticket(realm.http, tgt, realm.api, now=T0)
    assert no_flask_dispatch == []


def test_other_paths_and_methods_fall_through_to_flask(realm: Realm, no_flask_dispatch: list[str]) -> None:
    assert realm.http.post("/v1/as/params", json={"principal": "alice"}).status_code == 200
    assert realm.http.get("/healthz").status_code == 200
    assert realm.http.post("/v1/as/", json={}).status_code == 404
    assert no_flask_dispatch == ["/v1/as/params", "/healthz", "/v1/as/"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD"])
@pytest.mark.parametrize("path", ["/v1/as", "/v1/tgs"])
def test_other_methods_on_the_exchange_paths_are_flasks_405(realm: Realm, path: str, method: str) -> None:
    response = realm.http.open(path, method=method)
    assert (response.status_code, response.headers["Content-Type"]) == (405, "application/json")
    if method != "HEAD":
        assert response.get_json()["error"] == "INVALID_REQUEST"
        assert response.get_json()["request_id"] == response.headers["X-Request-Id"]


@pytest.mark.parametrize("path", ["/v1/as", "/v1/tgs"])
def test_options_on_the_exchange_paths_names_post(realm: Realm, path: str) -> None:
    response = realm.http.open(path, method="OPTIONS")
    assert response.status_code == 200
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}


def test_a_refusal_is_byte_for_byte_what_the_flask_error_handler_sends(realm: Realm) -> None:
    def refuse() -> None:
        raise MalformedMessage(front.get_json()["message"])

    realm.app.add_url_rule("/probe", "probe", refuse, methods=["POST"])
    headers = {"X-Request-Id": "same-id"}
    front = realm.http.post("/v1/tgs", json={"tgs_req": "!!!"}, headers=headers)
    flask_made = realm.http.post("/probe", json={"tgs_req": "!!!"}, headers=headers)
    assert (front.status, front.headers.to_wsgi_list(), front.data) == (
        flask_made.status, flask_made.headers.to_wsgi_list(), flask_made.data)
    assert front.status == "400 BAD REQUEST" and front.get_json()["error"] == "MALFORMED_MESSAGE"


def test_a_rate_limit_answers_429_with_retry_after(fake_redis: redis.Redis, master_key: MasterKey,
                                                    clock: FixedClock, tmp_path: Any) -> None:
    limited = make_realm(fake_redis, master_key, clock, tmp_path, TALLY_RATE_LIMIT_REQUESTS=1)
    post(limited.http, "/v1/tgs", {})
    response = post(limited.http, "/v1/tgs", {})
    assert (response.status_code, response.get_json()["error"]) == (429, "RATE_LIMITED")
    assert response.headers["Retry-After"] == "1"


def test_an_unexpected_error_is_a_500_without_detail_and_logged(realm: Realm,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> dict[str, str]:
        raise RuntimeError("secret detail")

    monkeypatch.setitem(exchange_front.ROUTES, "/v1/as", broken)
    errors = LogCapture()
    logging.getLogger("tally.http").addHandler(errors)
    try:
        response = post(realm.http, "/v1/as", {})
    finally:
        logging.getLogger("tally.http").removeHandler(errors)
    assert response.status_code == 500
    assert response.get_json() == {"error": "INTERNAL_ERROR", "message": "internal error",
                                    "request_id": response.headers["X-Request-Id"]}
    assert b"secret detail" not in response.data
    assert [str(r.exc_info[1]) for r in errors.records if r.exc_info] == ["secret detail"]


def test_audit_events_of_the_exchanges_reach_the_realms_stream(realm: Realm) -> None:
    log = realm.app.extensions["tally_admin"].operations.audit_log
    before = len(log)
    response = send_as(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)[1]
    assert len(log) == before + 1
    stored = json.loads(realm.db._redis.xrevrange(log.key, count=1)[0][1][b"e"])
    assert (stored["event"], stored["request_id"]) == ("as.issue", response.headers["X-Request-Id"])


def test_a_trusted_forwarded_address_is_the_client_address(fake_redis: redis.Redis, master_key: MasterKey,
                                                           clock: FixedClock, tmp_path: Any) -> None:
    proxied = make_realm(fake_redis, master_key, clock, tmp_path, TALLY_TRUST_FORWARDED=True,
                         TALLY_RATE_LIMIT_REQUESTS=1)
    for client in ("192.0.2.1", "192.0.2.2"):  # one request each: neither is limited, the proxy is not counted
        response = proxied.http.post("/v1/as", json={}, headers={"X-Forwarded-For": client},
                                     environ_base={"REMOTE_ADDR": "10.0.0.1"})
        assert response.get_json()["error"] == "INVALID_REQUEST"
    response = proxied.http.post("/v1/as", json={}, headers={"X-Forwarded-For": "192.0.2.1"},
                                 environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert response.get_json()["error"] == "RATE_LIMITED"


def test_a_forwarded_address_is_ignored_unless_trusted(realm: Realm, audit_events: Any) -> None:
    realm.http.post("/v1/as", json={}, headers={"X-Forwarded-For": "192.0.2.1"},
                    environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert audit_events.events[-1]["address"] == "10.0.0.1"
