"""Which requests declare no body: those are answered b"" without reading (RFC 9112 §6.3, PEP 3333)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask, request

from tally_protocol.errors import RequestTooLarge
from tally_runtime.flask_body import declares_no_body, read_bounded_body

GUNICORN_GET = {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input_terminated": True}


@pytest.mark.parametrize("environ", [
    {"REQUEST_METHOD": "GET", "SERVER_PROTOCOL": "HTTP/1.1"},  # a server that does not mark streams
    GUNICORN_GET,  # gunicorn marks every stream terminated; HTTP/1.1 framing says there is no body
    {**GUNICORN_GET, "CONTENT_LENGTH": "0"},
    {**GUNICORN_GET, "CONTENT_LENGTH": ""},
], ids=["unterminated", "http1-no-length", "length-0", "length-empty"])
def test_a_request_without_length_or_chunking_declares_no_body(environ: dict[str, Any]) -> None:
    assert declares_no_body(environ)


@pytest.mark.parametrize("environ", [
    {**GUNICORN_GET, "CONTENT_LENGTH": "5"},
    {**GUNICORN_GET, "HTTP_TRANSFER_ENCODING": "chunked"},
    {"REQUEST_METHOD": "POST", "SERVER_PROTOCOL": "HTTP/2", "wsgi.input_terminated": True},  # framed by DATA frames
], ids=["content-length", "chunked", "http2-stream"])
def test_a_request_with_a_length_chunking_or_another_framing_has_its_body_read(environ: dict[str, Any]) -> None:
    assert not declares_no_body(environ)


def _read(environ: dict[str, Any], data: bytes, limit: int = 10) -> bytes:
    app = Flask(__name__)
    base = {"PATH_INFO": "/", "SERVER_NAME": "localhost", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(data)}
    with app.request_context({**base, **environ}):
        return read_bounded_body(limit)


def test_a_chunked_body_is_still_read_and_bounded() -> None:
    chunked = {"REQUEST_METHOD": "POST", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input_terminated": True,
               "HTTP_TRANSFER_ENCODING": "chunked"}
    assert _read(chunked, b"hello") == b"hello"
    with pytest.raises(RequestTooLarge):
        _read(chunked, b"x" * 11)


def test_a_bodiless_get_reads_nothing_from_the_stream() -> None:
    assert _read(GUNICORN_GET, b"GET /next HTTP/1.1\r\n") == b""  # the bytes belong to the next request


def test_what_the_view_reads_of_a_bodiless_request_is_what_was_bound() -> None:
    # A server that leaves bytes in wsgi.input of a request declaring no body (not marked terminated, no length).
    app = Flask(__name__)
    environ = {"REQUEST_METHOD": "POST", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input_terminated": False,
               "PATH_INFO": "/", "SERVER_NAME": "localhost", "SERVER_PORT": "80", "wsgi.url_scheme": "http",
               "wsgi.input": io.BytesIO(b'{"amount": 1000000}')}
    with app.request_context(environ):
        assert read_bounded_body(100) == b""
        assert request.get_data() == b""
