"""TicketAuthMiddleware: any WSGI app behind ticket authentication, with mutual authentication."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pytest
import redis
from flask import Flask
from werkzeug.test import Client

from client_sdk.flow import Credential
from relying_service.middleware import PRINCIPAL_KEY, VERIFIED_KEY, TicketAuthMiddleware
from relying_service.verifier import Verifier
from relying_service.wsgi_refusal import refusal
from tally_protocol.errors import BindingMismatch, ClockSkew, ReplayDetected, StoreUnavailable, TallyError
from tally_runtime.http_errors import error_response
from tally_runtime.replay_cache import RedisReplayCache
from tests.relying_service.memory_realm import HOST, NOW, MakeVerifier, MemoryRealm

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

BASE = f"http://{HOST}"


def echo_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Echoes what it was given: the principal, and the body it can still read."""
    body = environ["wsgi.input"].read()
    payload = json.dumps({"principal": environ.get(PRINCIPAL_KEY), "body": body.decode(),
                          "verified": VERIFIED_KEY in environ}).encode()
    start_response("201 Created", [("Content-Type", "application/json")])
    return (chunk for chunk in (payload[:5], payload[5:]))  # a streamed (generator) response


def client_for(verifier: Verifier, **options: Any) -> Client:
    return Client(TicketAuthMiddleware(echo_app, verifier, **options))


def test_verified_request_reaches_the_app_with_principal_and_body(realm: MemoryRealm, cred: Credential,
                                                                  make_verifier: MakeVerifier) -> None:
    ctx = realm.authorize(cred, "POST", "/echo", b"pay 10")
    r = client_for(make_verifier()).post("/echo", data=b"pay 10", base_url=BASE,
                                         headers={"Authorization": ctx.authorization})
    assert r.status_code == 201
    assert r.get_json() == {"principal": "alice@EXAMPLE.TEST", "body": "pay 10", "verified": True}


def test_response_proof_is_accepted_by_the_client(realm: MemoryRealm, cred: Credential,
                                                  make_verifier: MakeVerifier) -> None:
    ctx = realm.authorize(cred, "POST", "/echo", b"pay 10")
    r = client_for(make_verifier()).post("/echo", data=b"pay 10", base_url=BASE,
                                         headers={"Authorization": ctx.authorization})
    ctx.check_reply(r.headers.get("Authentication-Info"), status=r.status_code, body=r.get_data())


def test_head_response_proof_covers_the_empty_body_the_client_receives(realm: MemoryRealm, cred: Credential,
                                                                       make_verifier: MakeVerifier) -> None:
    ctx = realm.authorize(cred, "HEAD", "/echo")
    r = client_for(make_verifier()).head("/echo", base_url=BASE, headers={"Authorization": ctx.authorization})
    ctx.check_reply(r.headers.get("Authentication-Info"), status=r.status_code, body=b"")


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "garbage", "   "])
def test_garbage_authorization_is_a_401_json_challenge(make_verifier: MakeVerifier, header: str) -> None:
    r = client_for(make_verifier()).get("/whoami", base_url=BASE, headers={"Authorization": header})
    assert (r.status_code, r.get_json()["error"]) == (401, "AUTHENTICATION_REQUIRED")
    assert r.headers["WWW-Authenticate"].startswith('Tally realm="EXAMPLE.TEST", error=')


@pytest.mark.parametrize("token", ["", "!!!", "AQ", "A" * 20000, "dGVzdA=="])
def test_malformed_tally_token_is_a_400_json_error(make_verifier: MakeVerifier, token: str) -> None:
    # The wire contract's status is err.status_hint: a Tally token that does not decode is MALFORMED_MESSAGE.
    r = client_for(make_verifier()).get("/whoami", base_url=BASE, headers={"Authorization": f"Tally {token}"})
    assert (r.status_code, r.get_json()["error"]) == (400, "MALFORMED_MESSAGE")


def test_missing_authorization_is_401_authentication_required(make_verifier: MakeVerifier) -> None:
    r = client_for(make_verifier()).get("/whoami", base_url=BASE)
    assert (r.status_code, r.get_json()["error"]) == (401, "AUTHENTICATION_REQUIRED")
    assert r.headers["WWW-Authenticate"] == 'Tally realm="EXAMPLE.TEST", error="AUTHENTICATION_REQUIRED"'


def test_replayed_request_is_refused(realm: MemoryRealm, cred: Credential, make_verifier: MakeVerifier) -> None:
    client, headers = client_for(make_verifier()), {"Authorization": realm.authorize(cred).authorization}
    assert client.get("/whoami", base_url=BASE, headers=headers).status_code == 201
    again = client.get("/whoami", base_url=BASE, headers=headers)
    assert (again.status_code, again.get_json()["error"]) == (401, "REPLAY_DETECTED")


def test_refused_request_does_not_reach_the_app(make_verifier: MakeVerifier) -> None:
    called = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        called.append(True)
        start_response("200 OK", [])
        return [b""]

    Client(TicketAuthMiddleware(app, make_verifier())).get("/whoami", base_url=BASE)
    assert called == []


def test_redis_down_is_a_503_with_retry_after(realm: MemoryRealm, cred: Credential, make_verifier: MakeVerifier,
                                              dead_redis: redis.Redis) -> None:
    r = client_for(make_verifier(RedisReplayCache(dead_redis))).get(
        "/whoami", base_url=BASE, headers={"Authorization": realm.authorize(cred).authorization})
    assert (r.status_code, r.get_json()["error"], r.headers["Retry-After"]) == (503, "STORE_UNAVAILABLE", "1")


def test_exempt_path_is_served_without_a_ticket(make_verifier: MakeVerifier) -> None:
    r = client_for(make_verifier()).get("/healthz", base_url=BASE)
    assert r.status_code == 201 and "Authentication-Info" not in r.headers


def test_body_over_the_limit_is_413_before_verification(realm: MemoryRealm, cred: Credential,
                                                        make_verifier: MakeVerifier) -> None:
    ctx = realm.authorize(cred, "POST", "/echo", b"x" * 11)
    r = client_for(make_verifier(), max_body_bytes=10).post("/echo", data=b"x" * 11, base_url=BASE,
                                                            headers={"Authorization": ctx.authorization})
    assert (r.status_code, r.get_json()["error"]) == (413, "REQUEST_TOO_LARGE")


def test_spoofed_forwarded_host_is_ignored_by_default(realm: MemoryRealm, cred: Credential,
                                                      make_verifier: MakeVerifier) -> None:
    ctx = realm.authorize(cred, host="public.example.test")
    r = client_for(make_verifier()).get("/whoami", base_url=BASE, headers={
        "Authorization": ctx.authorization, "X-Forwarded-Host": "public.example.test"})
    assert (r.status_code, r.get_json()["component"]) == (401, "host")


def test_forwarded_host_is_used_when_trusted(realm: MemoryRealm, cred: Credential,
                                             make_verifier: MakeVerifier) -> None:
    ctx = realm.authorize(cred, host="public.example.test", path="/api/whoami")
    r = client_for(make_verifier(), trust_forwarded=True).get("/whoami", base_url=BASE, headers={
        "Authorization": ctx.authorization, "X-Forwarded-Host": "public.example.test",
        "X-Forwarded-Proto": "https", "X-Forwarded-Prefix": "/api"})
    assert r.status_code == 201


def test_public_url_binding_accepts_what_the_client_signed_for_the_public_address(
        realm: MemoryRealm, cred: Credential, make_verifier: MakeVerifier) -> None:
    ctx = realm.authorize(cred, host="api.example.com", path="/prefix/whoami")
    r = client_for(make_verifier(), public_url="https://api.example.com/prefix").get(
        "/whoami", base_url="http://10.0.0.5:8751", headers={"Authorization": ctx.authorization})
    assert r.status_code == 201


@pytest.mark.parametrize("err", [ClockSkew(server_time=int(NOW), client_time=1, max_skew=300), ReplayDetected(),
                                 BindingMismatch(component="path"), StoreUnavailable()])
def test_refusal_matches_the_flask_error_response(err: TallyError) -> None:
    with Flask(__name__).app_context():
        expected = error_response(err, realm="EXAMPLE.TEST", challenge=True)
    status, headers, body = refusal(err, realm="EXAMPLE.TEST")
    got = dict(headers)
    assert int(status[:3]) == expected.status_code
    assert json.loads(body) == expected.get_json()
    for name in ("WWW-Authenticate", "Retry-After", "Content-Type"):
        assert got.get(name) == expected.headers.get(name)
