"""Drive the KDC's HTTP API with the pure client flow (``client_sdk.flow``) and the Flask test client."""

from __future__ import annotations

import os
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from client_sdk.flow import (
    AsExchange,
    Credential,
    TgsExchange,
    finish_as_exchange,
    finish_tgs_exchange,
    start_as_exchange,
    start_tgs_exchange,
)
from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.keys import Key
from tally_protocol.principal import Principal

ADDRESS = "127.0.0.1"


def answer(response: TestResponse) -> Any:
    """The JSON body without its ``request_id``: every request gets its own, whoever asked what."""
    body = response.get_json()
    if isinstance(body, dict):
        body.pop("request_id", None)
    return body


def post(http: FlaskClient, path: str, body: Any, *, address: str = ADDRESS) -> TestResponse:
    return http.post(path, json=body, environ_base={"REMOTE_ADDR": address})


def send_as(http: FlaskClient, client: Principal, material: bytes, *, now: float, renewable: bool = True,
            till: int = 0, address: str = ADDRESS) -> tuple[AsExchange, TestResponse]:
    """An AS request sealed, as every client does, with ``Key(material, kvno=0)``."""
    pending = start_as_exchange(client, Key(material, 0), now=now, rng=os.urandom, renewable=renewable, till=till)
    return pending, post(http, "/v1/as", {"as_req": b64encode(pending.request_bytes)}, address=address)


def login(http: FlaskClient, client: Principal, material: bytes, *, now: float, renewable: bool = True,
          till: int = 0) -> Credential:
    pending, response = send_as(http, client, material, now=now, renewable=renewable, till=till)
    assert response.status_code == 200, response.get_json()
    return finish_as_exchange(pending, b64decode(response.get_json()["as_rep"]))


def send_tgs(http: FlaskClient, tgt: Credential, service: Principal, *, now: float, renew: bool = False,
             till: int = 0) -> tuple[TgsExchange, TestResponse]:
    pending = start_tgs_exchange(tgt, service, now=now, rng=os.urandom, renew=renew, till=till)
    return pending, post(http, "/v1/tgs", {"tgs_req": b64encode(pending.request_bytes)})


def get_ticket(http: FlaskClient, tgt: Credential, service: Principal, *, now: float, renew: bool = False,
               till: int = 0) -> Credential:
    pending, response = send_tgs(http, tgt, service, now=now, renew=renew, till=till)
    assert response.status_code == 200, response.get_json()
    return finish_tgs_exchange(pending, b64decode(response.get_json()["tgs_rep"]))
