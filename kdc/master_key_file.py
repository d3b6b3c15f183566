"""A running KDC's view of its master key file, picked up again without a restart.

A master key rotation writes a new file holding the old and the new version,
then re-wraps every record under the new one.  A KDC that loaded the file
before the rotation meets a record wrapped under a version it does not hold:
it reads the file again (at most once per ``min_interval_s``, so a corrupt or
hostile record cannot make every request hit the disk) and retries.  SIGHUP
asks for a reload too; the handler only sets a flag and the next use
reloads (see ``tally_runtime.hangup``).  A failed reload keeps the keyring
already loaded and logs why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tally_protocol.errors import TallyError
from tally_runtime.hangup import on_hangup

from .master_key import MasterKeyring, load_master_key_file

#: File reads triggered by an unknown master key version, at most one per interval.
DEFAULT_MIN_INTERVAL_S = 1.0

_log = logging.getLogger("tally.kdc")


class MasterKeyFile:
    """The keyring read from ``path`` (read once now: a missing or corrupt file fails at start)."""

    def __init__(self, path: Path | str, *, min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path).expanduser()
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._ring = load_master_key_file(self.path)
        self._lock = threading.Lock()
        self._reload_requested = False
        self._last_reload = clock()

    def __repr__(self) -> str:
        return f"MasterKeyFile({str(self.path)!r}, versions={self._ring.kvnos})"

    @property
    def keyring(self) -> MasterKeyring:
        """The keyring to use now; reloaded first when SIGHUP asked for it."""
        if self._reload_requested:
            self._reload_requested = False
            self.reload("signal")
        return self._ring

    def request_reload(self) -> None:
        """Signal-safe: only sets a flag; the next use of ``keyring`` reads the file."""
        self._reload_requested = True

    def reload_on_sighup(self) -> bool:
        return on_hangup(self.request_reload)

    def reload(self, reason: str) -> bool:
        """Read the file again; on any failure keep the loaded keyring and log (never a secret)."""
        with self._lock:
            self._last_reload = self._clock()
            try:
                ring = load_master_key_file(self.path)
            except TallyError as err:
                _log.error("master key file reload failed; keeping the loaded versions", extra={"fields": {
                    "path": str(self.path), "reason": reason, "error": str(err.code), "detail": err.message,
                    "master_kvnos": self._ring.kvnos}})
                return False
            changed = ring.kvnos != self._ring.kvnos
            self._ring = ring
        _log.info("master key file reloaded", extra={"fields": {
            "path": str(self.path), "reason": reason, "master_kvnos": ring.kvnos, "changed": changed}})
        return True

    def reload_for(self, master_kvno: int) -> bool:
        """Reload because a record names ``master_kvno``; rate-limited.  True when it is now held."""
        if master_kvno in self._ring:
            return True
        now = self._clock()
        if 0 <= now - self._last_reload < self._min_interval_s:
            return False
        self.reload(f"unknown master key version {master_kvno}")
        return master_kvno in self._ring
