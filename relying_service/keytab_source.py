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
import time
from collections.abc import Callable
from pathlib import Path

from tally_protocol.errors import ConfigurationError
from tally_protocol.keys import Keyset
from tally_protocol.principal import Principal
from tally_runtime.keytab_file import read_keytab
from tally_runtime.reloadable_file import ReloadableFile

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
        self._principal: Principal | None = None
        self._signature: _Signature | None = None
        self._file: ReloadableFile[Keyset] = ReloadableFile(
            path, self._read, what="keytab", logger=_log, min_interval_s=min_interval_s, clock=clock,
            describe=lambda keyset: {"service": str(self.principal), "kvnos": keyset.versions},
        )
        self.path = self._file.path

    @property
    def principal(self) -> Principal:
        """The service principal, fixed by the first read: a reload may not change it."""
        assert self._principal is not None  # set by the constructor's first read
        return self._principal

    def _read(self, path: Path) -> Keyset:
        signature = _signature(path)
        principal, keyset = read_keytab(path)
        if self._principal is None:
            self._principal = principal
        elif principal != self._principal:
            raise ConfigurationError(f"the keytab now holds {principal}, not {self._principal}")
        self._signature = signature
        return keyset

    def __repr__(self) -> str:
        return f"KeytabSource({str(self.path)!r}, principal={self.principal}, versions={self._file.value.versions})"

    def keyset(self) -> Keyset:
        """The key versions to accept now; read again first when SIGHUP asked for it."""
        return self._file.value

    def request_reload(self) -> None:
        """Signal-safe: only sets a flag; the next ``keyset()`` reads the file."""
        self._file.request_reload()

    def reload_on_sighup(self) -> bool:
        """Reload on every SIGHUP to this process (False when no handler could be installed)."""
        return self._file.reload_on_sighup()

    def reload(self, reason: str) -> bool:
        """Read the keytab again; on failure keep the loaded keyset, log, and return False."""
        return self._file.reload(reason)

    def reload_for_unknown(self, kvno: int) -> bool:
        """A ticket names ``kvno``, which the keyset lacks: reload if the file changed and the rate allows.

        True when ``kvno`` is held afterwards (the caller verifies again).
        """
        if kvno in self._file.value:
            return True
        if _signature(self.path) == self._signature:
            return False  # nothing new on disk: no read, whatever the rate
        self._file.reload_if_due(f"unknown key version {kvno}")
        return kvno in self._file.value
