"""Structured JSON logs and audit events.

One JSON object per line on stderr.  Audit events (``audit``) record every
issuance and refusal: principal, outcome, reason code, client address.  They
never carry a key, password, ticket or plaintext; callers pass only names and
codes, and ``audit`` refuses fields whose names suggest a secret.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

AUDIT_LOGGER = "tally.audit"
_SECRET_WORDS = ("key", "password", "secret", "ticket", "token", "session")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
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


def audit(event: str, outcome: str, **fields: Any) -> None:
    """Write one audit event, e.g. ``audit("as.issue", "success", principal="alice@R", address="127.0.0.1")``."""
    for name in fields:
        if any(word in name.lower() for word in _SECRET_WORDS) and name not in ("ticket_id", "key_version", "kvno"):
            raise ValueError(f"audit field {name!r} looks like a secret; log names and codes only")
    logging.getLogger(AUDIT_LOGGER).info(
        event, extra={"fields": {"audit": True, "event": event, "outcome": outcome, "time": int(time.time()), **fields}}
    )
