"""Reading a Flask request's body within a bound: 413 ``REQUEST_TOO_LARGE`` beyond it, never a truncated body.

A ``Content-Length`` beyond the bound is refused before a byte is read.  A
chunked body (no length; the server marks the stream terminated) is read
to one byte past the bound at most, so an oversized one is detected rather
than cut.  Werkzeug's own ``MAX_CONTENT_LENGTH`` stops such a body *at* the
limit and returns what it read, so the KDC would answer a malformed-JSON 400
and a service a binding mismatch instead of the 413 that says what to fix.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from tally_protocol.errors import RequestTooLarge


def read_bounded_body(limit: int) -> bytes:
    """The current request's body (cached for ``get_json``, ``form``...); ``RequestTooLarge`` beyond ``limit``.

    A smaller ``MAX_CONTENT_LENGTH`` of the app wins.  A request that declares
    no body (no ``Content-Length``, or 0, and a stream the server did not mark
    terminated) has none: werkzeug would read nothing either, so b"" is
    returned without going through it.
    """
    environ = request.environ
    if environ.get("CONTENT_LENGTH") in (None, "", "0") and not environ.get("wsgi.input_terminated"):
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


def _bound_body() -> None:
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if isinstance(limit, int):
        read_bounded_body(limit)


def bound_request_bodies(app: Flask) -> None:
    """Read every request's body within ``app.config["MAX_CONTENT_LENGTH"]`` before any view or hook sees it."""
    app.before_request_funcs.setdefault(None, []).insert(0, _bound_body)
