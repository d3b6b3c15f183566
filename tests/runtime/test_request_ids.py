"""Request ids: well-formed ones are kept, anything else replaced; bound per context; on every log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable
from typing import Any

import pytest

from tally_runtime.logs import JsonFormatter, audit_entry
from tally_runtime.request_ids import (
    ENVIRON_KEY,
    REQUEST_ID_HEADER,
    RequestIdMiddleware,
    accept_request_id,
    current_request_id,
    is_well_formed,
    new_request_id,
    request_id_scope,
    with_request_ids,
)


@pytest.mark.parametrize("value", ["a", "req-1.2_3", "A" * 64, "0af3c9e1-2b4d-4c1e-9f00-1234567890ab"])
def test_well_formed_ids_are_kept(value: str) -> None:
    assert accept_request_id(value) == value


@pytest.mark.parametrize("value", [None, "", "a" * 65, "two words", "line\nbreak", 'quote"', "{json}", "é", "a/b"])
def test_anything_else_is_replaced_by_a_fresh_id(value: str | None) -> None:
    accepted = accept_request_id(value)
    assert accepted != value and is_well_formed(accepted) and len(accepted) == 32


def test_fresh_ids_are_random() -> None:
    assert len({new_request_id() for _ in range(100)}) == 100


def test_scope_binds_an_id_and_restores_the_previous_one() -> None:
    assert current_request_id() is None
    with request_id_scope("outer") as outer:
        assert (outer, current_request_id()) == ("outer", "outer")
        with request_id_scope() as inner:  # nothing given: the bound id goes on
            assert inner == "outer"
        with request_id_scope("other"):
            assert current_request_id() == "other"
        assert current_request_id() == "outer"
    assert current_request_id() is None


def test_scope_without_a_bound_id_mints_one() -> None:
    with request_id_scope() as minted:
        assert is_well_formed(minted) and current_request_id() == minted


def test_scope_refuses_an_id_the_servers_would_replace() -> None:
    with pytest.raises(ValueError, match="1-64 characters"), request_id_scope("two words"):
        pass


def _log_line(logger: str = "tally.test") -> dict[str, Any]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger(logger)
    log.addHandler(handler)
    try:
        log.warning("something happened", extra={"fields": {"code": "X"}})
    finally:
        log.removeHandler(handler)
    parsed: dict[str, Any] = json.loads(stream.getvalue())
    return parsed


def test_every_log_line_names_the_bound_request_id() -> None:
    with request_id_scope("req-42"):
        assert _log_line()["request_id"] == "req-42"
    assert "request_id" not in _log_line()


def test_audit_events_name_the_bound_request_id() -> None:
    with request_id_scope("req-43"):
        assert audit_entry("as.issue", "success", {"principal": "alice@R"}, now=1)["request_id"] == "req-43"
    assert "request_id" not in audit_entry("as.issue", "success", {}, now=1)


StartResponseCall = tuple[str, list[tuple[str, str]]]


def _call(app: Any, environ: dict[str, Any]) -> tuple[StartResponseCall, bytes]:
    started: list[StartResponseCall] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.append((status, headers))
        return lambda data: None

    body = b"".join(app(environ, start_response))
    return started[0], body


def _app_seeing_the_id(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Request-Id", "the app's own")])
    return [str(current_request_id()).encode()]


def test_middleware_keeps_a_well_formed_id_binds_it_and_echoes_it() -> None:
    (_, headers), body = _call(RequestIdMiddleware(_app_seeing_the_id), {"HTTP_X_REQUEST_ID": "abc-1"})
    assert body == b"abc-1"
    assert [v for k, v in headers if k == REQUEST_ID_HEADER] == ["abc-1"]  # one header: ours
    assert current_request_id() is None  # unbound once the app returned


def test_middleware_replaces_a_malformed_id() -> None:
    (_, headers), body = _call(RequestIdMiddleware(_app_seeing_the_id), {"HTTP_X_REQUEST_ID": "x" * 100})
    assert is_well_formed(body.decode()) and body != b"x" * 100
    assert dict(headers)[REQUEST_ID_HEADER] == body.decode()


def test_stacked_middlewares_agree_on_one_id() -> None:
    inner = RequestIdMiddleware(_app_seeing_the_id)
    environ: dict[str, Any] = {}
    (_, headers), body = _call(RequestIdMiddleware(inner), environ)
    assert environ[ENVIRON_KEY] == body.decode() == dict(headers)[REQUEST_ID_HEADER]


def test_wrapping_twice_changes_nothing() -> None:
    once = with_request_ids(_app_seeing_the_id)
    assert with_request_ids(once) is once
