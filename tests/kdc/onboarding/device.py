"""A device talking to the KDC app through Flask's test client, with the pure onboarding flows."""

from __future__ import annotations

import os
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.enrollment import EnrollmentExchange, parse_token, start_enrollment
from tally_protocol.keys import Keyset
from tally_protocol.pairing import PairingConfirmed, confirm_pairing, finish_pairing, start_pairing
from tally_protocol.principal import Principal
from tests.kdc.wire import post


def error_of(response: TestResponse) -> tuple[int, str]:
    assert response.is_json, response.data[:200]
    return response.status_code, response.get_json()["error"]


def send_enroll(http: FlaskClient, token: str) -> tuple[EnrollmentExchange, TestResponse]:
    pending = start_enrollment(parse_token(token), os.urandom(32))
    return pending, post(http, "/v1/enroll", {"enroll_req": b64encode(pending.request_bytes)})


def resend_enroll(http: FlaskClient, request_bytes: bytes) -> TestResponse:
    return post(http, "/v1/enroll", {"enroll_req": b64encode(request_bytes)})


def reply_bytes(response: TestResponse, field: str) -> bytes:
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return b64decode(body[field])


def pair_start(http: FlaskClient, principal: Principal, code: str) -> tuple[PairingConfirmed, TestResponse]:
    """Round 1 and the device's confirmation (not yet sent); the start response for inspection."""
    pending = start_pairing(principal, code, os.urandom)
    response = post(http, "/v1/pair/start", {"pair_start": b64encode(pending.start_bytes)})
    return confirm_pairing(pending, reply_bytes(response, "pair_challenge")), response


def pair_finish(http: FlaskClient, confirmed: PairingConfirmed, finish_bytes: bytes | None = None) -> TestResponse:
    body = finish_bytes if finish_bytes is not None else confirmed.finish_bytes
    return post(http, "/v1/pair/finish", {"pair_finish": b64encode(body)})


def pair(http: FlaskClient, principal: Principal, code: str) -> tuple[PairingConfirmed, TestResponse]:
    confirmed, _ = pair_start(http, principal, code)
    return confirmed, pair_finish(http, confirmed)


def paired_keys(http: FlaskClient, principal: Principal, code: str) -> Keyset:
    confirmed, response = pair(http, principal, code)
    got, keyset = finish_pairing(confirmed, reply_bytes(response, "pair_rep"))
    assert got == principal
    return keyset
