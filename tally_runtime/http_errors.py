"""Mapping ``TallyError`` to HTTP responses for the Flask apps.

Every error is a JSON body ``{"error": CODE, "message": ..., **data}`` with the
error's ``status_hint``, plus the ``request_id`` the request is logged under
(``tally_runtime.request_ids``) so a user can quote it; 429 and 503 carry
``Retry-After``.  A body beyond ``MAX_CONTENT_LENGTH`` is ``REQUEST_TOO_LARGE``.  Relying services
add ``WWW-Authenticate`` (RFC 9110 §11.6.1) naming scheme, realm and code.
Unexpected exceptions become a JSON 500 without detail (never a traceback).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from tally_protocol.codes import ErrorCode
from tally_protocol.errors import RequestTooLarge, TallyError

from .request_ids import current_request_id

DEFAULT_RETRY_AFTER = {429: 1, 503: 1}


def error_document(body: dict[str, Any]) -> dict[str, Any]:
    """An error body with the request's id added (when one is bound), for the user to quote."""
    request_id = current_request_id()
    return body if request_id is None else {**body, "request_id": request_id}


def error_response(err: TallyError, *, realm: str | None = None, challenge: bool = False) -> Response:
    response = jsonify(error_document(err.to_dict()))
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
        if isinstance(err, RequestEntityTooLarge):  # werkzeug, from MAX_CONTENT_LENGTH, before reading on
            limit = request.max_content_length
            return error_response(RequestTooLarge(limit=limit) if limit is not None else RequestTooLarge(),
                                  realm=realm)
        code = ErrorCode.NOT_FOUND if err.code == 404 else ErrorCode.INVALID_REQUEST
        response = jsonify(error_document({"error": str(code), "message": err.description or err.name}))
        response.status_code = err.code or 500
        return response

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        logging.getLogger("tally.http").error("unhandled error", exc_info=err)
        response = jsonify(error_document({"error": "INTERNAL_ERROR", "message": "internal error"}))
        response.status_code = 500
        return response
