"""Fixtures for the key tests: SIGHUP handlers restored after each test."""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator

import pytest

from tally_runtime.hangup import remove_hangup_listeners


@pytest.fixture
def hangup() -> Iterator[None]:
    """Lets a test install the SIGHUP reload and signal itself; leaves the process's handler as it was."""
    before = signal.getsignal(signal.SIGHUP)
    yield
    remove_hangup_listeners()
    signal.signal(signal.SIGHUP, before)


class LogCapture(logging.Handler):
    """Records of the ``tally`` loggers, whatever ``configure()`` did to propagation."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


@pytest.fixture
def tally_logs() -> Iterator[LogCapture]:
    capture = LogCapture()
    logger = logging.getLogger("tally")
    level = logger.level
    logger.addHandler(capture)
    logger.setLevel(logging.DEBUG)
    yield capture
    logger.removeHandler(capture)
    logger.setLevel(level)
