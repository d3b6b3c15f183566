"""The KDC's Flask endpoints, except the AS and TGS exchanges' POSTs (``exchange_front`` answers those).

``/v1/as`` and ``/v1/tgs`` stay in the URL map without a view, so Flask
answers their other methods as for any route (405, OPTIONS); a POST to
either never reaches Flask.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from tally_protocol.errors import InvalidRequest
from tally_protocol.principal import Principal
from tally_runtime.redis_store import ping

from .exchange_handlers import json_object, limit_address
from .openapi import openapi_document
from .state import kdc_state

kdc_api = Blueprint("kdc_api", __name__)
health = Blueprint("health", __name__)
kdc_api.add_url_rule("/v1/as", endpoint="as_exchange", methods=["POST"])  # POST: exchange_front.ROUTES
kdc_api.add_url_rule("/v1/tgs", endpoint="tgs_exchange", methods=["POST"])


def _address() -> str:
    return request.remote_addr or "unknown"


@kdc_api.post("/v1/as/params")
def password_params() -> dict[str, Any]:
    state = kdc_state()
    limit_address(state, _address(), endpoint=request.path)
    # The body was read within MAX_CONTENT_LENGTH (413 REQUEST_TOO_LARGE) before any view ran (flask_body).
    name = json_object(request.get_data(cache=True)).get("principal")
    if not isinstance(name, str):
        raise InvalidRequest("missing field 'principal' (a string)")
    return state.db.password_params(Principal.parse(name, default_realm=state.realm)).to_dict()


@health.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get("/readyz")
def readyz() -> Response:
    if ping(kdc_state().redis):
        return jsonify({"status": "ready"})
    response = jsonify({"status": "unavailable", "error": "STORE_UNAVAILABLE"})
    response.status_code = 503
    response.headers["Retry-After"] = "1"
    return response


@health.get("/openapi.json")
def openapi() -> dict[str, Any]:
    return openapi_document(kdc_state().realm)
