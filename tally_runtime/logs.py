"""Structured JSON logs and audit events.

One JSON object per line on stderr.  Every line written while a request is
handled carries its ``request_id`` (``tally_runtime.request_ids``), so one
grep finds a request's lines on the KDC and on the services.  Audit events (``audit``) record every
issuance and refusal: principal, outcome, reason code, client address.  They
never carry a key, password, ticket or plaintext; callers pass only names and
codes, and ``audit`` refuses fields whose names suggest a secret.

Audit sinks (``add_audit_sink``) receive a copy of every event after it is
logged, e.g. to persist it in the realm's audit stream.  A sink never raises
into the caller: a failing sink is logged as an error and the event still
stands in the log.  Code that must not proceed without a durable record
(admin actions) writes it itself, synchronously, and then calls
``log_audit_entry`` instead of ``audit`` so sinks do not store it twice.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from .request_ids import current_request_id

AUDIT_LOGGER = "tally.audit"
#: Not under ``tally.audit``: a sink's failure is an error, not an audit event.
SINK_LOGGER = "tally.audit_sink"
_SECRET_WORDS = ("key", "password", "secret", "ticket", "token", "session")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id is not None:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info and record.levelno >= logging.ERROR:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure(level: int = logging.INFO, stream: Any = None) -> None:
    """Route every ``tally.*`` logger to one JSON handler (idempotent)."""
    root = logging.getLogger("tally")
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


AuditSink = Callable[[dict[str, Any]], None]
_SINKS: list[AuditSink] = []
_NOT_SECRET = ("ticket_id", "key_version", "kvno")


def add_audit_sink(sink: AuditSink) -> None:
    """Call ``sink(event)`` for every audit event of this process from now on (once, however often added)."""
    if sink not in _SINKS:
        _SINKS.append(sink)


def remove_audit_sink(sink: AuditSink) -> None:
    if sink in _SINKS:
        _SINKS.remove(sink)


@functools.lru_cache(maxsize=512)
def _looks_secret(name: str) -> bool:
    """Field names come from code, a few dozen of them: each is judged once per process."""
    return any(word in name.lower() for word in _SECRET_WORDS) and name not in _NOT_SECRET


def audit_entry(event: str, outcome: str, fields: Mapping[str, Any], *, now: float | None = None) -> dict[str, Any]:
    """The event as logged and stored; ``ValueError`` for a field whose name suggests a secret.

    Inside a request the event names its ``request_id``, also in the realm's
    stored audit stream, so an administrator can find what a user quotes.
    """
    for name in fields:
        if _looks_secret(name):
            raise ValueError(f"audit field {name!r} looks like a secret; log names and codes only")
    when = int(time.time() if now is None else now)
    request_id = current_request_id()
    context = {} if request_id is None else {"request_id": request_id}
    return {"audit": True, "event": event, "outcome": outcome, "time": when, **context, **fields}


_AUDIT_LOG = logging.getLogger(AUDIT_LOGGER)  # getLogger takes logging's module lock on every call


def log_audit_entry(entry: Mapping[str, Any]) -> None:
    """Write an event built by ``audit_entry`` to the audit log only (no sinks)."""
    _AUDIT_LOG.info(str(entry["event"]), extra={"fields": dict(entry)})


def _to_sinks(entry: Mapping[str, Any]) -> None:
    for sink in _SINKS.copy():  # a sink may remove itself
        try:
            sink(dict(entry))
        except Exception as err:  # noqa: BLE001 - a sink must never break the caller's request
            logging.getLogger(SINK_LOGGER).error("audit sink failed", extra={"fields": {
                "sink": getattr(sink, "__qualname__", type(sink).__name__), "event": entry.get("event"),
                "error": type(err).__name__}})


def audit(event: str, outcome: str, **fields: Any) -> None:
    """Write one audit event, e.g. ``audit("as.issue", "success", principal="alice@R", address="127.0.0.1")``."""
    entry = audit_entry(event, outcome, fields)
    log_audit_entry(entry)
    _to_sinks(entry)
