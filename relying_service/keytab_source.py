"""The keytab a running service verifies with, reloaded without a restart.

A rotation with a delay (``tally admin rotate api --delay 600``) writes the
new, pending version to the keytab before the KDC issues any ticket under
it.  Every replica must load it in time; two ways, both without a restart:

* **SIGHUP** (``reload_on_sighup``): the handler only sets a flag, and the
  next request reads the file (never file I/O or logging inside a signal
  handler).  ``tally service serve`` forwards the signal to every worker.
* **An unknown key version**: a ticket names a kvno the loaded keyset lacks.
  The kvno is read before any decryption, so anyone can send one: the file
  is stat'ed (cheap) and read again only when it changed, and at most once
  per ``min_interval_s`` (5 s), so a flood of made-up versions costs no
  disk reads.

A reload that fails (missing, unreadable, corrupt, or a keytab for another
principal) keeps the keyset already loaded and logs why: a half-written
deployment never takes a working service down.  The swap is one reference
assignment, so concurrent requests see the old keyset or the new one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tally_protocol.errors import ConfigurationError, TallyError
from tally_protocol.keys import Keyset
from tally_protocol.principal import Principal
from tally_runtime.hangup import on_hangup
from tally_runtime.keytab_file import read_keytab

#: Reloads caused by unknown key versions, at most one per interval.
DEFAULT_MIN_INTERVAL_S = 5.0

_log = logging.getLogger("tally.service")

_Signature = tuple[int, int, int, int]


def _signature(path: Path) -> _Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class KeytabSource:
    """The service principal and key versions of the keytab at ``path``, kept current.

    The first read happens here: a missing or corrupt keytab fails at start,
    with one clear ``ConfigurationError``, not on the first request.
    """

    def __init__(self, path: Path | str, *, min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path).expanduser()
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._reload_requested = False
        self._last_reload: float | None = None
        signature = _signature(self.path)
        principal, keyset = read_keytab(self.path)
        self.principal: Principal = principal
        self._keyset: Keyset = keyset
        self._signature = signature

    def __repr__(self) -> str:
        return f"KeytabSource({str(self.path)!r}, principal={self.principal}, versions={self._keyset.versions})"

    def keyset(self) -> Keyset:
        """The key versions to accept now; read again first when SIGHUP asked for it."""
        if self._reload_requested:
            self._reload_requested = False
            self.reload("signal")
        return self._keyset

    def request_reload(self) -> None:
        """Signal-safe: only sets a flag; the next ``keyset()`` reads the file."""
        self._reload_requested = True

    def reload_on_sighup(self) -> bool:
        """Reload on every SIGHUP to this process (False when no handler could be installed)."""
        return on_hangup(self.request_reload)

    def reload(self, reason: str) -> bool:
        """Read the keytab again; on failure keep the loaded keyset, log, and return False."""
        with self._lock:
            self._last_reload = self._clock()
            signature = _signature(self.path)
            try:
                principal, keyset = read_keytab(self.path)
                if principal != self.principal:
                    raise ConfigurationError(f"the keytab now holds {principal}, not {self.principal}")
            except TallyError as err:
                _log.error("keytab reload failed; keeping the loaded key versions", extra={"fields": {
                    "service": str(self.principal), "path": str(self.path), "reason": reason,
                    "error": str(err.code), "detail": err.message, "kvnos": self._keyset.versions}})
                return False
            old = self._keyset.versions
            self._keyset, self._signature = keyset, signature
        _log.info("keytab reloaded", extra={"fields": {
            "service": str(self.principal), "path": str(self.path), "reason": reason,
            "kvnos": keyset.versions, "previous_kvnos": old}})
        return True

    def reload_for_unknown(self, kvno: int) -> bool:
        """A ticket names ``kvno``, which the keyset lacks: reload if the file changed and the rate allows.

        True when ``kvno`` is held afterwards (the caller verifies again).
        """
        if kvno in self._keyset:
            return True
        if _signature(self.path) == self._signature:
            return False  # nothing new on disk: no read, whatever the rate
        now = self._clock()
        last = self._last_reload
        if last is not None and 0 <= now - last < self._min_interval_s:
            return False
        self.reload(f"unknown key version {kvno}")
        return kvno in self._keyset
