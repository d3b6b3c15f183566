"""Capturing what a ``tally.*`` logger writes, as the JSON lines an operator would read."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from tally_runtime.logs import JsonFormatter


class JsonLogCapture(logging.Handler):
    """Each record formatted by ``JsonFormatter`` and parsed back: exactly the fields a log line holds."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@contextlib.contextmanager
def json_logs(name: str = "tally", level: int = logging.INFO) -> Iterator[JsonLogCapture]:
    """Capture ``name``'s records at ``level`` and above for the block; the logger is restored after."""
    capture, logger = JsonLogCapture(), logging.getLogger(name)
    previous = logger.level
    logger.addHandler(capture)
    logger.setLevel(level)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
        logger.setLevel(previous)
