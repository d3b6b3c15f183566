"""TicketAuth (Flask extension) and the demo app built on it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask, Response, abort, stream_with_context
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from client_sdk.flow import ApContext, Credential
from relying_service.demo_app import create_demo_app
from relying_service.flask_ext import EXTENSION_KEY, TicketAuth
from relying_service.verifier import Verifier
from tally_protocol.errors import ConfigurationError
from tally_runtime.keytab_file import write_keytab
from tally_runtime.replay_cache import MARKER, RedisReplayCache
from tests.relying_service.memory_realm import HOST, NOW, MakeVerifier, MemoryRealm
from tests.support.redis_proc import RedisProcess, free_port

BASE = f"http://{HOST}"


def call(client: FlaskClient, ctx: ApContext | None, method: str = "GET", path: str = "/whoami",
         body: bytes = b"", headers: dict[str, str] | None = None) -> TestResponse:
    headers = dict(headers or {})
    if ctx is not None:
        headers["Authorization"] = ctx.authorization
    return client.open(path, method=method, data=body, base_url=BASE, headers=headers)


@pytest.fixture
def demo(make_verifier: MakeVerifier) -> FlaskClient:
    return create_demo_app(verifier=make_verifier()).test_client()


@pytest.fixture
def keytab(realm: MemoryRealm, tmp_path: Path) -> Path:
    return write_keytab(tmp_path / "api.keytab", realm.service, realm.service_keys)


def test_whoami_answers_the_authenticated_principal(demo: FlaskClient, realm: MemoryRealm, cred: Credential) -> None:
    r = call(demo, realm.authorize(cred))
    assert (r.status_code, r.get_json()) == (200, {"principal": "alice@EXAMPLE.TEST"})


def test_response_carries_a_proof_the_client_accepts(demo: FlaskClient, realm: MemoryRealm,
                                                     cred: Credential) -> None:
    ctx = realm.authorize(cred)
    r = call(demo, ctx)
    ctx.check_reply(r.headers.get("Authentication-Info"), status=r.status_code, body=r.get_data())


def test_echo_returns_the_body_with_its_content_type(demo: FlaskClient, realm: MemoryRealm,
                                                     cred: Credential) -> None:
    ctx = realm.authorize(cred, "POST", "/echo", b'{"a": 1}')
    r = call(demo, ctx, "POST", "/echo", b'{"a": 1}', headers={"Content-Type": "application/json"})
    assert (r.status_code, r.get_data(), r.content_type) == (200, b'{"a": 1}', "application/json")
    ctx.check_reply(r.headers.get("Authentication-Info"), status=200, body=b'{"a": 1}')


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "garbage"])
def test_missing_or_garbage_header_is_a_401_json_challenge(demo: FlaskClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    r = demo.get("/whoami", base_url=BASE, headers=headers)
    assert (r.status_code, r.get_json()["error"]) == (401, "AUTHENTICATION_REQUIRED")
    assert r.headers["WWW-Authenticate"] == 'Tally realm="EXAMPLE.TEST", error="AUTHENTICATION_REQUIRED"'
    assert "Authentication-Info" not in r.headers


@pytest.mark.parametrize("token", ["", "!!!", "AQ", "A" * 20000])
def test_malformed_token_is_a_json_client_error_never_a_500(demo: FlaskClient, token: str) -> None:
    r = demo.get("/whoami", base_url=BASE, headers={"Authorization": f"Tally {token}"})
    assert r.status_code == 400 and r.get_json()["error"] in ("MALFORMED_MESSAGE", "UNSUPPORTED_VERSION")


def test_replay_is_refused_with_replay_code_in_the_challenge(demo: FlaskClient, realm: MemoryRealm,
                                                             cred: Credential) -> None:
    ctx = realm.authorize(cred)
    call(demo, ctx)
    r = call(demo, ctx)
    assert (r.status_code, r.get_json()["error"]) == (401, "REPLAY_DETECTED")
    assert 'error="REPLAY_DETECTED"' in r.headers["WWW-Authenticate"]


def test_skew_refusal_tells_the_server_time(demo: FlaskClient, realm: MemoryRealm, cred: Credential) -> None:
    r = call(demo, realm.authorize(cred, now=NOW - 900))
    assert (r.status_code, r.get_json()["server_time"]) == (401, int(NOW))
    assert f'server_time="{int(NOW)}"' in r.headers["WWW-Authenticate"]


def test_tampered_body_is_refused_naming_the_body(demo: FlaskClient, realm: MemoryRealm, cred: Credential) -> None:
    r = call(demo, realm.authorize(cred, "POST", "/echo", b"pay 10"), "POST", "/echo", b"pay 10000")
    assert (r.status_code, r.get_json()["component"]) == (401, "body")


def test_redis_down_is_a_503_store_unavailable(realm: MemoryRealm, cred: Credential, make_verifier: MakeVerifier,
                                               dead_redis: redis.Redis) -> None:
    client = create_demo_app(verifier=make_verifier(RedisReplayCache(dead_redis))).test_client()
    r = call(client, realm.authorize(cred))
    assert (r.status_code, r.get_json()["error"], r.headers["Retry-After"]) == (503, "STORE_UNAVAILABLE", "1")


def test_spoofed_forwarded_host_is_ignored_unless_trusted(realm: MemoryRealm, cred: Credential,
                                                          make_verifier: MakeVerifier) -> None:
    client = create_demo_app(verifier=make_verifier()).test_client()
    r = call(client, realm.authorize(cred, host="public.example.test"), headers={"X-Forwarded-Host": "public.example.test"})
    assert (r.status_code, r.get_json()["component"]) == (401, "host")


def test_trusted_forwarded_host_is_bound(realm: MemoryRealm, cred: Credential, make_verifier: MakeVerifier) -> None:
    app = create_demo_app(verifier=make_verifier(), test_config={"TALLY_TRUST_FORWARDED": True})
    r = call(app.test_client(), realm.authorize(cred, host="public.example.test"),
             headers={"X-Forwarded-Host": "public.example.test"})
    assert r.status_code == 200


def test_public_url_is_bound_instead_of_the_backend_address(realm: MemoryRealm, cred: Credential,
                                                            make_verifier: MakeVerifier) -> None:
    app = create_demo_app(verifier=make_verifier(), test_config={"TALLY_PUBLIC_URL": "https://api.example.com/v1"})
    ctx = realm.authorize(cred, host="api.example.com", path="/v1/whoami")
    r = app.test_client().get("/whoami", base_url="http://127.0.0.1:8751", headers={"Authorization": ctx.authorization})
    assert r.status_code == 200


def test_healthz_needs_no_ticket(demo: FlaskClient) -> None:
    assert demo.get("/healthz").get_json() == {"status": "ok"}


# --- configuration: keytab, Redis URL, environment fallback


def test_keytab_and_redis_url_from_config_build_a_working_service(realm: MemoryRealm, cred: Credential, keytab: Path,
                                                                  real_redis: redis.Redis,
                                                                  redis_server: RedisProcess) -> None:
    RedisReplayCache(real_redis).seed(birth=0)  # as `tally kdc init` does for a store created with its realm
    app = create_demo_app(keytab_path=keytab, test_config={"TALLY_REDIS_URL": redis_server.url},
                          clock=lambda: NOW)
    client = app.test_client()
    assert call(client, realm.authorize(cred)).status_code == 200
    assert client.get("/readyz").get_json() == {"status": "ready"}
    entries = [k for k in real_redis.scan_iter() if not k.endswith(MARKER)]
    assert len(entries) == 1  # the replay entry lives in the shared Redis


def test_store_that_lost_its_replay_cache_answers_503_with_retry_after(realm: MemoryRealm, cred: Credential,
                                                                     keytab: Path, real_redis: redis.Redis,
                                                                     redis_server: RedisProcess) -> None:
    app = create_demo_app(keytab_path=keytab, test_config={"TALLY_REDIS_URL": redis_server.url,
                                                           "TALLY_MAX_SKEW": 300}, clock=lambda: NOW)
    r = call(app.test_client(), realm.authorize(cred))  # no marker: a flushed or restarted store
    assert (r.status_code, r.get_json()["error"], r.headers["Retry-After"]) == (503, "REPLAY_CACHE_RECOVERING", "300")


def test_two_replicas_sharing_redis_refuse_a_replay(realm: MemoryRealm, cred: Credential, keytab: Path,
                                                    real_redis: redis.Redis, redis_server: RedisProcess) -> None:
    RedisReplayCache(real_redis).seed(birth=0)
    config = {"TALLY_REDIS_URL": redis_server.url}
    a = create_demo_app(keytab_path=keytab, test_config=config, clock=lambda: NOW).test_client()
    b = create_demo_app(keytab_path=keytab, test_config=config, clock=lambda: NOW).test_client()
    ctx = realm.authorize(cred)
    assert call(a, ctx).status_code == 200
    assert call(b, ctx).get_json()["error"] == "REPLAY_DETECTED"


def test_unreachable_redis_url_gives_503_and_not_ready(realm: MemoryRealm, cred: Credential, keytab: Path) -> None:
    app = create_demo_app(keytab_path=keytab, clock=lambda: NOW,
                          test_config={"TALLY_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    client = app.test_client()
    assert call(client, realm.authorize(cred)).status_code == 503
    ready = client.get("/readyz")
    assert (ready.status_code, ready.get_json()) == (503, {"status": "unavailable", "error": "STORE_UNAVAILABLE"})


def test_without_redis_url_the_embedded_store_is_used_and_announced(keytab: Path) -> None:
    # A handler on the logger itself: other tests may have made "tally" stop propagating to caplog's root handler.
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("tally.service")
    logger.addHandler(handler)
    try:
        app = create_demo_app(keytab_path=keytab, test_config={"TALLY_REDIS_URL": None})
    finally:
        logger.removeHandler(handler)
    assert app.extensions[EXTENSION_KEY].store is not None
    assert any("nothing is persisted" in r.getMessage() for r in records)


def test_unset_config_falls_back_to_the_environment(keytab: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_MAX_SKEW", "42")
    monkeypatch.setenv("TALLY_TRUST_FORWARDED", "true")
    app = create_demo_app(keytab_path=keytab)
    assert (app.config["TALLY_MAX_SKEW"], app.config["TALLY_TRUST_FORWARDED"]) == (42, True)
    assert app.extensions[EXTENSION_KEY].verifier.policy.max_skew_s == 42


def test_the_keytab_may_come_from_the_environment(keytab: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_KEYTAB", str(keytab))
    app = Flask(__name__)
    TicketAuth(app)
    assert str(app.extensions[EXTENSION_KEY].verifier.service) == "api@EXAMPLE.TEST"


def test_app_config_wins_over_the_environment(keytab: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_MAX_SKEW", "42")
    app = Flask(__name__)
    app.config.update(TALLY_KEYTAB=str(keytab), TALLY_MAX_SKEW=7)
    TicketAuth(app)
    assert app.extensions[EXTENSION_KEY].verifier.policy.max_skew_s == 7


def test_missing_keytab_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        TicketAuth(Flask(__name__))


# --- the extension on an app of one's own


@pytest.fixture
def custom_app(make_verifier: MakeVerifier) -> tuple[Flask, TicketAuth]:
    app = Flask(__name__)
    auth = TicketAuth(verifier=make_verifier())
    app.config["TALLY_MAX_BODY_BYTES"] = 16
    auth.init_app(app)

    @app.post("/created")
    @auth.required
    def created() -> tuple[str, int]:
        return "made it", 201

    @app.get("/missing")
    @auth.required
    def missing() -> str:
        abort(404)

    @app.get("/stream")
    @auth.required
    def stream() -> Response:
        def chunks() -> Iterator[str]:
            yield "one,"
            yield "two"
        return Response(stream_with_context(chunks()))

    @app.get("/open")
    def unprotected() -> str:
        return auth.principal

    return app, auth


def test_proof_is_bound_to_the_final_status_set_by_the_view(custom_app: tuple[Flask, TicketAuth],
                                                            realm: MemoryRealm, cred: Credential) -> None:
    ctx = realm.authorize(cred, "POST", "/created", b"x")
    r = call(custom_app[0].test_client(), ctx, "POST", "/created", b"x")
    assert r.status_code == 201
    ctx.check_reply(r.headers.get("Authentication-Info"), status=201, body=b"made it")


def test_error_responses_of_authenticated_requests_are_proven_too(custom_app: tuple[Flask, TicketAuth],
                                                                  realm: MemoryRealm, cred: Credential) -> None:
    ctx = realm.authorize(cred, path="/missing")
    r = call(custom_app[0].test_client(), ctx, path="/missing")
    assert r.status_code == 404
    ctx.check_reply(r.headers.get("Authentication-Info"), status=404, body=r.get_data())


def test_streamed_response_is_buffered_and_proven(custom_app: tuple[Flask, TicketAuth], realm: MemoryRealm,
                                                  cred: Credential) -> None:
    ctx = realm.authorize(cred, path="/stream")
    r = call(custom_app[0].test_client(), ctx, path="/stream")
    assert r.get_data() == b"one,two"
    ctx.check_reply(r.headers.get("Authentication-Info"), status=200, body=b"one,two")


def test_principal_outside_an_authenticated_request_is_a_401(custom_app: tuple[Flask, TicketAuth]) -> None:
    r = custom_app[0].test_client().get("/open", base_url=BASE)
    assert (r.status_code, r.get_json()["error"]) == (401, "AUTHENTICATION_REQUIRED")
    assert "Authentication-Info" not in r.headers


def test_principal_outside_any_request_is_a_programming_error(custom_app: tuple[Flask, TicketAuth]) -> None:
    with pytest.raises(RuntimeError):
        custom_app[1].principal  # noqa: B018


def test_body_over_the_limit_is_413(custom_app: tuple[Flask, TicketAuth], realm: MemoryRealm,
                                    cred: Credential) -> None:
    body = b"x" * 17
    r = call(custom_app[0].test_client(), realm.authorize(cred, "POST", "/created", body), "POST", "/created", body)
    assert (r.status_code, r.get_json()["error"]) == (413, "REQUEST_TOO_LARGE")


def test_state_lives_in_app_extensions(custom_app: tuple[Flask, TicketAuth]) -> None:
    app, auth = custom_app
    assert isinstance(app.extensions[EXTENSION_KEY].verifier, Verifier)
    assert not hasattr(auth, "app")


def test_request_whose_method_was_swapped_is_refused_naming_the_method(demo: FlaskClient, realm: MemoryRealm,
                                                                       cred: Credential) -> None:
    r = call(demo, realm.authorize(cred, "POST", "/echo", b"pay 10"), "PUT", "/echo", b"pay 10")
    assert (r.status_code, r.get_json()["component"]) == (401, "method")
