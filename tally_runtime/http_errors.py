"""Mapping ``TallyError`` to HTTP responses for the Flask apps.

Every error is a JSON body ``{"error": CODE, "message": ..., **data}`` with the
error's ``status_hint``; 429 and 503 carry ``Retry-After``.  Relying services
add ``WWW-Authenticate`` (RFC 9110 §11.6.1) naming scheme, realm and code.
Unexpected exceptions become a JSON 500 without detail (never a traceback).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from tally_protocol.codes import ErrorCode
from tally_protocol.errors import TallyError

DEFAULT_RETRY_AFTER = {429: 1, 503: 1}


def error_response(err: TallyError, *, realm: str | None = None, challenge: bool = False) -> Response:
    response = jsonify(err.to_dict())
    response.status_code = err.status_hint
    retry = err.data.get("retry_after", DEFAULT_RETRY_AFTER.get(err.status_hint))
    if retry is not None:
        response.headers["Retry-After"] = str(max(1, int(retry)))
    if challenge and err.status_hint == 401:
        params = [f'error="{err.code}"']
        if realm:
            params.insert(0, f'realm="{realm}"')
        if "server_time" in err.data:
            params.append(f'server_time="{int(err.data["server_time"])}"')
        response.headers["WWW-Authenticate"] = "Tally " + ", ".join(params)
    return response


def install_error_handlers(app: Flask, *, realm: str | None = None, challenge: bool = False) -> None:
    """JSON errors for TallyError, HTTP errors (404, 405, 413...) and anything unexpected."""

    @app.errorhandler(TallyError)
    def _tally(err: TallyError) -> Response:
        return error_response(err, realm=realm, challenge=challenge)

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException) -> Response:
        code = ErrorCode.NOT_FOUND if err.code == 404 else ErrorCode.INVALID_REQUEST
        response = jsonify({"error": str(code), "message": err.description or err.name})
        response.status_code = err.code or 500
        return response

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        logging.getLogger("tally.http").error("unhandled error", exc_info=err)
        response = jsonify({"error": "INTERNAL_ERROR", "message": "internal error"})
        response.status_code = 500
        return response
