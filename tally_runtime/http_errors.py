"""Mapping ``TallyError`` to HTTP responses, for the Flask apps and for plain WSGI layers alike.

Every error is a JSON body ``{"error": CODE, "message": ..., **data}`` with the
error's ``status_hint``, plus the ``request_id`` the request is logged under
(``tally_runtime.request_ids``) so a user can quote it; 429 and 503 carry
``Retry-After``.  A body beyond ``MAX_CONTENT_LENGTH`` is ``REQUEST_TOO_LARGE``.  Relying services
add ``WWW-Authenticate`` (RFC 9110 §11.6.1) naming scheme, realm and code.
Unexpected exceptions become a JSON 500 without detail (never a traceback).

``ErrorReply`` is the one description of such an answer: the Flask error
handlers turn it into a ``Response``, a WSGI layer that bypasses Flask (the
KDC's exchange front) sends it as it is, byte for byte the same.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES

from tally_protocol.codes import ErrorCode
from tally_protocol.errors import RequestTooLarge, TallyError

from .request_ids import current_request_id

DEFAULT_RETRY_AFTER = {429: 1, 503: 1}
JSON_TYPE = "application/json"
Headers = list[tuple[str, str]]


def error_document(body: dict[str, Any]) -> dict[str, Any]:
    """An error body with the request's id added (when one is bound), for the user to quote."""
    request_id = current_request_id()
    return body if request_id is None else {**body, "request_id": request_id}


def json_body(document: Mapping[str, Any]) -> bytes:
    """``document`` as Flask's ``jsonify`` writes it outside debug mode: compact, keys sorted, ASCII, a newline."""
    return (json.dumps(document, ensure_ascii=True, sort_keys=True, separators=(",", ":")) + "\n").encode()


def status_line(code: int) -> str:
    """The status line werkzeug sends for ``code`` (``400 BAD REQUEST``)."""
    return f"{code} {HTTP_STATUS_CODES.get(code, 'unknown').upper()}"


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An error answer: status, JSON document and the headers beyond Content-Type and Content-Length."""

    status: int
    document: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()

    def wsgi(self) -> tuple[str, Headers, bytes]:
        """``(status line, headers, body)``, in the order a Flask ``Response`` of it sends them."""
        body = json_body(self.document)
        return status_line(self.status), [("Content-Type", JSON_TYPE), ("Content-Length", str(len(body))),
                                          *self.headers], body

    def response(self) -> Response:
        """The same as a Flask ``Response``."""
        response = Response(json_body(self.document), status=self.status, mimetype=JSON_TYPE)
        for name, value in self.headers:
            response.headers[name] = value
        return response


def tally_error_reply(err: TallyError, *, realm: str | None = None, challenge: bool = False) -> ErrorReply:
    headers: list[tuple[str, str]] = []
    retry = err.data.get("retry_after", DEFAULT_RETRY_AFTER.get(err.status_hint))
    if retry is not None:
        headers.append(("Retry-After", str(max(1, int(retry)))))
    if challenge and err.status_hint == 401:
        params = [f'error="{err.code}"']
        if realm:
            params.insert(0, f'realm="{realm}"')
        if "server_time" in err.data:
            params.append(f'server_time="{int(err.data["server_time"])}"')
        headers.append(("WWW-Authenticate", "Tally " + ", ".join(params)))
    return ErrorReply(err.status_hint, error_document(err.to_dict()), tuple(headers))


def unexpected_error_reply(err: Exception) -> ErrorReply:
    """A 500 that says nothing of ``err``; ``err`` itself goes to the log, with its traceback."""
    logging.getLogger("tally.http").error("unhandled error", exc_info=err)
    return ErrorReply(500, error_document({"error": "INTERNAL_ERROR", "message": "internal error"}))


def error_response(err: TallyError, *, realm: str | None = None, challenge: bool = False) -> Response:
    return tally_error_reply(err, realm=realm, challenge=challenge).response()


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
        document = error_document({"error": str(code), "message": err.description or err.name})
        return ErrorReply(err.code or 500, document).response()

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        return unexpected_error_reply(err).response()
