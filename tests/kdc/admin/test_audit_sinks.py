"""Audit sinks in ``tally_runtime.logs``: every event reaches them, a failing one never breaks the caller."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tally_runtime.logs import (
    SINK_LOGGER,
    add_audit_sink,
    audit,
    audit_entry,
    log_audit_entry,
    remove_audit_sink,
)


class Collect:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)


@pytest.fixture
def sink() -> Iterator[Collect]:
    collect = Collect()
    add_audit_sink(collect)
    yield collect
    remove_audit_sink(collect)


def test_a_sink_receives_every_audit_event_with_its_fields(sink: Collect) -> None:
    audit("as.issue", "success", principal="alice@EXAMPLE.TEST", kvno=1)
    assert len(sink.events) == 1
    event = sink.events[0]
    assert (event["event"], event["outcome"], event["principal"], event["kvno"]) == (
        "as.issue", "success", "alice@EXAMPLE.TEST", 1)
    assert isinstance(event["time"], int)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_failing_sink_is_logged_and_never_raises_into_the_caller(sink: Collect) -> None:
    def broken(event: dict[str, Any]) -> None:
        raise ConnectionError("store down")

    errors = Records()
    logging.getLogger(SINK_LOGGER).addHandler(errors)
    add_audit_sink(broken)
    try:
        audit("tgs.issue", "success", principal="alice@EXAMPLE.TEST")
    finally:
        remove_audit_sink(broken)
        logging.getLogger(SINK_LOGGER).removeHandler(errors)
    assert [e["event"] for e in sink.events] == ["tgs.issue"]  # the other sinks still ran
    assert len(errors.records) == 1 and errors.records[0].levelno == logging.ERROR
    assert errors.records[0].fields["error"] == "ConnectionError"


def test_adding_a_sink_twice_delivers_each_event_once(sink: Collect) -> None:
    add_audit_sink(sink)
    audit("as.refuse", "refused", error="PREAUTH_FAILED")
    assert len(sink.events) == 1


def test_log_audit_entry_bypasses_the_sinks(sink: Collect) -> None:
    log_audit_entry(audit_entry("admin.principal.show", "success", {"actor": "root"}, now=5))
    assert sink.events == []


def test_audit_entry_refuses_field_names_that_suggest_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        audit_entry("admin.principal.add", "success", {"password": "hunter2"})


def test_audit_entry_takes_the_time_it_is_given() -> None:
    assert audit_entry("admin.status", "success", {}, now=1234.9)["time"] == 1234
