"""What a relying service does before it verifies: the request's id, and bounds on its body and header.

Both adapters (the Flask extension and the WSGI middleware) keep a well-formed
``X-Request-Id`` or mint one, name it on the verifier's log lines and in JSON
refusals, and echo it; an oversized body is 413 ``REQUEST_TOO_LARGE``
(chunked ones too, never cut short into a binding mismatch); an oversized
``Authorization`` header is a 400 that says so.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.test import Client, TestResponse

from client_sdk.flow import Credential
from relying_service.demo_app import create_demo_app
from relying_service.middleware import TicketAuthMiddleware
from tally_protocol.errors import ConfigurationError
from tally_protocol.messages.ap_req import MAX_HEADER
from tally_runtime.settings import Settings
from tests.relying_service.memory_realm import HOST, MakeVerifier, MemoryRealm
from tests.relying_service.test_middleware import echo_app
from tests.support.log_capture import JsonLogCapture, json_logs

BASE = f"http://{HOST}"


@pytest.fixture
def service_log() -> Iterator[JsonLogCapture]:
    with json_logs("tally.service") as capture:
        yield capture


@pytest.fixture
def flask_client(make_verifier: MakeVerifier) -> FlaskClient:
    return create_demo_app(verifier=make_verifier()).test_client()


@pytest.fixture
def wsgi_client(make_verifier: MakeVerifier) -> Client:
    return Client(TicketAuthMiddleware(echo_app, make_verifier(), max_body_bytes=1024))


@pytest.fixture(params=["flask", "wsgi"])
def service(request: pytest.FixtureRequest) -> Client:
    """The same service behind each adapter: POST /echo echoes (flask) or describes (wsgi) the body."""
    client = request.getfixturevalue("flask_client" if request.param == "flask" else "wsgi_client")
    assert isinstance(client, Client)
    return client


def post_echo(client: Client, realm: MemoryRealm, cred: Credential | None, body: bytes = b"hi",
              **headers: str) -> TestResponse:
    if cred is not None:
        headers["Authorization"] = realm.authorize(cred, "POST", "/echo", body).authorization
    return client.post("/echo", data=body, base_url=BASE, headers=headers)


def test_an_accepted_request_echoes_its_id_and_is_logged_under_it(service: Client, realm: MemoryRealm,
                                                                  cred: Credential,
                                                                  service_log: JsonLogCapture) -> None:
    r = post_echo(service, realm, cred, **{"X-Request-Id": "from-the-sdk"})
    assert r.status_code in (200, 201) and r.headers["X-Request-Id"] == "from-the-sdk"
    accepted = [e for e in service_log.lines if e["msg"] == "request authenticated"]
    assert [(e["request_id"], e["client"]) for e in accepted] == [("from-the-sdk", "alice@EXAMPLE.TEST")]


def test_a_refusal_names_the_id_in_body_header_and_log(service: Client, realm: MemoryRealm,
                                                       service_log: JsonLogCapture) -> None:
    r = post_echo(service, realm, None, **{"X-Request-Id": "quote-me"})
    assert (r.status_code, r.get_json()["request_id"], r.headers["X-Request-Id"]) == (401, "quote-me", "quote-me")
    assert [e["request_id"] for e in service_log.lines if e["msg"] == "request refused"] == ["quote-me"]


def test_a_malformed_id_is_replaced_before_it_reaches_a_log(service: Client, realm: MemoryRealm,
                                                            service_log: JsonLogCapture) -> None:
    r = post_echo(service, realm, None, **{"X-Request-Id": "x" * 65})
    minted = r.headers["X-Request-Id"]
    assert len(minted) == 32 and r.get_json()["request_id"] == minted
    assert all(e["request_id"] == minted for e in service_log.lines)


def test_unauthenticated_paths_echo_an_id_too(service: Client) -> None:
    assert service.get("/healthz", base_url=BASE, headers={"X-Request-Id": "hc"}).headers["X-Request-Id"] == "hc"


def test_an_oversized_authorization_header_is_a_400_saying_so(service: Client) -> None:
    r = service.get("/whoami", base_url=BASE, headers={"Authorization": "Tally " + "A" * (MAX_HEADER + 1)})
    body = r.get_json()
    assert (r.status_code, body["error"]) == (400, "MALFORMED_MESSAGE")
    assert body["message"] == f"Tally token longer than {MAX_HEADER} characters"


def test_an_oversized_chunked_body_is_413_not_a_binding_mismatch(service: Client, realm: MemoryRealm,
                                                                 cred: Credential) -> None:
    limit = 1024 if isinstance(service.application, TicketAuthMiddleware) else 10 * 1024 * 1024
    body = b"x" * (limit + 1)
    ctx = realm.authorize(cred, "POST", "/echo", body)
    r = service.post("/echo", input_stream=io.BytesIO(body), base_url=BASE,
                     headers={"Authorization": ctx.authorization, "Transfer-Encoding": "chunked"},
                     environ_overrides={"wsgi.input_terminated": True})
    assert (r.status_code, r.get_json()["error"], r.get_json()["limit"]) == (413, "REQUEST_TOO_LARGE", limit)


def test_a_chunked_body_of_exactly_the_limit_is_accepted(wsgi_client: Client, realm: MemoryRealm,
                                                         cred: Credential) -> None:
    body = b"x" * 1024
    ctx = realm.authorize(cred, "POST", "/echo", body)
    r = wsgi_client.post("/echo", input_stream=io.BytesIO(body), base_url=BASE,
                         headers={"Authorization": ctx.authorization, "Transfer-Encoding": "chunked"},
                         environ_overrides={"wsgi.input_terminated": True})
    assert r.status_code == 201


def test_the_body_limit_comes_from_settings(make_verifier: MakeVerifier, realm: MemoryRealm, cred: Credential,
                                            tmp_path: Path) -> None:
    settings = replace(Settings.from_env({"TALLY_MAX_BODY_BYTES": "2048"}), ccache=tmp_path / "cc")
    app = create_demo_app(verifier=make_verifier(), settings=settings)
    r = post_echo(app.test_client(), realm, cred, b"x" * 2049)
    assert (r.status_code, r.get_json()["limit"]) == (413, 2048)
    assert post_echo(app.test_client(), realm, cred, b"x" * 2048).status_code == 200


@pytest.mark.parametrize("value", ["lots", 0, -5, True, 1.5])
def test_a_body_limit_that_is_no_positive_whole_number_is_a_configuration_error(make_verifier: MakeVerifier,
                                                                               value: object) -> None:
    with pytest.raises(ConfigurationError, match="TALLY_MAX_BODY_BYTES"):
        create_demo_app(verifier=make_verifier(), test_config={"TALLY_MAX_BODY_BYTES": value})
