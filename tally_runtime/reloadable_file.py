"""A value read from a file and read again while the process runs, never taken down by a bad file.

Used for a service's keytab and a KDC's master key file.  Rules it keeps:

* the first read happens in the constructor, so a missing or corrupt file
  fails at start with one clear error, not on the first request;
* SIGHUP only sets a flag (no file I/O or logging in a signal handler); the
  next use of ``value`` reads the file;
* a reload asked for by the data (an unknown key version, which anyone can
  name before any decryption) happens at most once per ``min_interval_s``,
  so a flood of made-up versions costs no disk reads;
* a reload that fails keeps the value already loaded and logs why; the swap
  is one reference assignment, so concurrent readers see old or new, whole.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

from tally_protocol.errors import TallyError

from .hangup import on_hangup

T = TypeVar("T")


class ReloadableFile(Generic[T]):
    """``load(path)`` now, and again on SIGHUP, on ``reload``, or on a rate-limited ``reload_if_due``."""

    def __init__(self, path: Path | str, load: Callable[[Path], T], *, what: str, logger: logging.Logger,
                 describe: Callable[[T], Mapping[str, Any]], min_interval_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path).expanduser()
        self._load = load
        self._what = what
        self._log = logger
        self._describe = describe
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._reload_requested = False
        self._last_reload: float | None = None
        self._value = load(self.path)

    @property
    def value(self) -> T:
        """The value to use now; read again first when SIGHUP asked for it."""
        if self._reload_requested:
            self._reload_requested = False
            self.reload("signal")
        return self._value

    def request_reload(self) -> None:
        """Signal-safe: only sets a flag; the next use of ``value`` reads the file."""
        self._reload_requested = True

    def reload_on_sighup(self) -> bool:
        """Reload on every SIGHUP to this process (False when no handler could be installed)."""
        return on_hangup(self.request_reload)

    def reload(self, reason: str) -> bool:
        """Read the file again; on failure keep the loaded value, log (never a secret) and return False."""
        with self._lock:
            self._last_reload = self._clock()
            old = self._describe(self._value)
            try:
                value = self._load(self.path)
            except TallyError as err:
                self._log.error(f"{self._what} reload failed; keeping the loaded versions", extra={"fields": {
                    "path": str(self.path), "reason": reason, "error": str(err.code), "detail": err.message, **old}})
                return False
            self._value = value
        self._log.info(f"{self._what} reloaded", extra={"fields": {
            "path": str(self.path), "reason": reason, **self._describe(value),
            **{f"previous_{k}": v for k, v in old.items()}}})
        return True

    def reload_if_due(self, reason: str) -> bool:
        """Reload unless one happened less than ``min_interval_s`` ago; False when skipped or failed."""
        last = self._last_reload
        if last is not None and 0 <= self._clock() - last < self._min_interval_s:
            return False
        return self.reload(reason)
