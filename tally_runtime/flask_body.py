"""Reading a Flask request's body within a bound: 413 ``REQUEST_TOO_LARGE`` beyond it, never a truncated body.

A ``Content-Length`` beyond the bound is refused before a byte is read.  A
chunked body (no length; the server marks the stream terminated) is read
to one byte past the bound at most, so an oversized one is detected rather
than cut.  Werkzeug's own ``MAX_CONTENT_LENGTH`` stops such a body *at* the
limit and returns what it read, so the KDC would answer a malformed-JSON 400
and a service a binding mismatch instead of the 413 that says what to fix.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from tally_protocol.errors import RequestTooLarge


def read_bounded_body(limit: int) -> bytes:
    """The current request's body (cached for ``get_json``, ``form``...); ``RequestTooLarge`` beyond ``limit``.

    A smaller ``MAX_CONTENT_LENGTH`` of the app wins.  A request that declares
    no body has none (``declares_no_body``): b"" is returned without building
    werkzeug's stream, and the stream the view will read is made empty too,
    so what was checked is what the view reads, whatever the server left in
    ``wsgi.input``.
    """
    environ = request.environ
    if declares_no_body(environ):
        environ["wsgi.input"] = io.BytesIO()
        return b""
    configured = request.max_content_length
    if configured is not None:
        limit = min(limit, configured)
    length = request.content_length
    if length is not None and length > limit:
        raise RequestTooLarge(limit=limit)
    request.max_content_length = limit + 1  # one byte past the bound tells "too large" from "exactly the limit"
    try:
        data = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise RequestTooLarge(limit=limit) from None
    if len(data) > limit:
        raise RequestTooLarge(limit=limit)
    return data


def declares_no_body(environ: Mapping[str, Any]) -> bool:
    """No ``Content-Length`` (or 0), and either a stream the server did not mark terminated (PEP 3333: nothing
    to read) or an HTTP/1.x request without ``Transfer-Encoding`` (RFC 9112 §6.3: its body length is zero).

    gunicorn marks every stream terminated, so the second case is the one that spares a GET the read."""
    if environ.get("CONTENT_LENGTH") not in (None, "", "0"):
        return False
    if not environ.get("wsgi.input_terminated"):
        return True
    return str(environ.get("SERVER_PROTOCOL", "")).startswith("HTTP/1.") and "HTTP_TRANSFER_ENCODING" not in environ


def _bound_body() -> None:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if isinstance(limit, int):
        read_bounded_body(limit)


def bound_request_bodies(app: Flask) -> None:
    """Read every request's body within ``app.config["MAX_CONTENT_LENGTH"]`` before any view or hook sees it."""
    app.before_request_funcs.setdefault(None, []).insert(0, _bound_body)
