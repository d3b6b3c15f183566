"""Reading a request body in full, within a bound, before it is verified.

The binding covers a digest of the whole body, so the body must be read
before the request can be accepted; the bound stops a client from making the
service buffer an unbounded amount of data for a request that may well be
refused.
"""

from __future__ import annotations

import io
from collections.abc import MutableMapping
from typing import Any

from tally_protocol.errors import InvalidRequest, RequestTooLarge

#: Default cap on a request body that will be buffered for verification (``TALLY_MAX_BODY_BYTES``).
MAX_BODY_BYTES = 10 * 1024 * 1024
_CHUNK = 64 * 1024


def read_body(environ: MutableMapping[str, Any], limit: int = MAX_BODY_BYTES) -> bytes:
    """Read the whole body and put a fresh ``wsgi.input`` back for the application.

    ``CONTENT_LENGTH`` is respected (reading past it may block on a keep-alive
    connection); without it the body is read to its end only when the server
    says the stream is terminated (chunked uploads), as PEP 3333 allows.
    """
    raw_length = str(environ.get("CONTENT_LENGTH") or "").strip()
    stream = environ.get("wsgi.input")
    if raw_length:
        if not raw_length.isdigit():
            raise InvalidRequest("invalid Content-Length")
        length = int(raw_length)
        if length > limit:
            raise RequestTooLarge(limit=limit)
        body = _read(stream, length)
        if len(body) < length:
            raise InvalidRequest("request body shorter than its Content-Length")
    elif environ.get("wsgi.input_terminated") and stream is not None:
        body = _read(stream, limit + 1)
        if len(body) > limit:
            raise RequestTooLarge(limit=limit)
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _read(stream: Any, length: int) -> bytes:
    if stream is None or length <= 0:
        return b""
    chunks: list[bytes] = []
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(_CHUNK, remaining))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
