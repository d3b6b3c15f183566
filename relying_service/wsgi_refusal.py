"""A refusal as a bare WSGI response, for the framework-free middleware.

Same shape as ``tally_runtime.http_errors.error_response`` (which needs a
Flask application for ``jsonify``): status ``err.status_hint``, JSON
``err.to_dict()`` with the ``request_id``, ``Retry-After`` on 429/503 and, for 401, the challenge
``WWW-Authenticate: Tally realm="R", error="CODE"[, server_time="N"]``.
A test holds the two to the same output.
"""

from __future__ import annotations

import http
import json

from tally_protocol.errors import TallyError
from tally_runtime.http_errors import DEFAULT_RETRY_AFTER, error_document

Headers = list[tuple[str, str]]


def status_line(code: int) -> str:
    try:
        return f"{code} {http.HTTPStatus(code).phrase}"
    except ValueError:
        return f"{code} Unknown"


def challenge(err: TallyError, realm: str | None) -> str:
    params = [f'error="{err.code}"']
    if realm:
        params.insert(0, f'realm="{realm}"')
    if "server_time" in err.data:
        params.append(f'server_time="{int(err.data["server_time"])}"')
    return "Tally " + ", ".join(params)


def refusal(err: TallyError, *, realm: str | None) -> tuple[str, Headers, bytes]:
    """``(status line, headers, body)`` for ``err``."""
    body = (json.dumps(error_document(err.to_dict()), default=str, separators=(",", ":")) + "\n").encode()
    headers: Headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    retry = err.data.get("retry_after", DEFAULT_RETRY_AFTER.get(err.status_hint))
    if retry is not None:
        headers.append(("Retry-After", str(max(1, int(retry)))))
    if err.status_hint == 401:
        headers.append(("WWW-Authenticate", challenge(err, realm)))
    return status_line(err.status_hint), headers, body
