"""The KDC's onboarding endpoints: enrollment (``/v1/enroll``) and PIN pairing (``/v1/pair/...``).

Thin wrappers: parse the JSON envelope, hand the protocol message to
``EnrollmentTokens`` or ``Pairings`` (which check, spend, audit and seal),
return the reply.  The same per-address rate limit as the AS and TGS
endpoints runs first, so a flood costs one counter increment per request.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from tally_protocol.encoding import b64encode
from tally_protocol.messages.enrollment import EnrollRequest
from tally_protocol.messages.pairing import PairFinish, PairStart

from .enrollment import EnrollmentTokens
from .exchange_handlers import json_field, limit_address
from .pairing import Pairings
from .state import KdcState, kdc_state

onboarding_api = Blueprint("onboarding_api", __name__)


def _address() -> str:
    return request.remote_addr or "unknown"


def _field(name: str) -> bytes:
    # The body is JSON whatever the Content-Type says, parsed as the AS and TGS exchanges parse theirs.
    return json_field(request.get_data(cache=True), name)


def _tokens(state: KdcState) -> EnrollmentTokens:
    return EnrollmentTokens(state.redis, state.realm, state.db, state.clock, state.rng)


def _pairings(state: KdcState) -> Pairings:
    return Pairings(state.redis, state.realm, state.db, state.clock, state.rng)


@onboarding_api.before_request
def _rate_limit() -> None:
    limit_address(kdc_state(), _address(), endpoint=request.path)


@onboarding_api.post("/v1/enroll")
def enroll() -> dict[str, Any]:
    enroll_req = EnrollRequest.from_bytes(_field("enroll_req"))
    reply = _tokens(kdc_state()).redeem(enroll_req, address=_address())
    return {"enroll_rep": b64encode(reply.to_bytes())}


@onboarding_api.post("/v1/pair/start")
def pair_start() -> dict[str, Any]:
    start = PairStart.from_bytes(_field("pair_start"))
    challenge = _pairings(kdc_state()).start(start, address=_address())
    return {"pair_challenge": b64encode(challenge.to_bytes())}


@onboarding_api.post("/v1/pair/finish")
def pair_finish() -> dict[str, Any]:
    finish = PairFinish.from_bytes(_field("pair_finish"))
    reply = _pairings(kdc_state()).finish(finish, address=_address())
    return {"pair_rep": b64encode(reply.to_bytes())}
