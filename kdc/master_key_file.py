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
import time
from collections.abc import Callable
from pathlib import Path

from tally_runtime.reloadable_file import ReloadableFile

from .master_key import MasterKeyring, load_master_key_file

#: File reads triggered by an unknown master key version, at most one per interval.
DEFAULT_MIN_INTERVAL_S = 1.0

_log = logging.getLogger("tally.kdc")


class MasterKeyFile:
    """The keyring read from ``path`` (read once now: a missing or corrupt file fails at start)."""

    def __init__(self, path: Path | str, *, min_interval_s: float = DEFAULT_MIN_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._file: ReloadableFile[MasterKeyring] = ReloadableFile(
            path, load_master_key_file, what="master key file", logger=_log, min_interval_s=min_interval_s,
            clock=clock, describe=lambda ring: {"master_kvnos": ring.kvnos},
        )
        self.path = self._file.path

    def __repr__(self) -> str:
        return f"MasterKeyFile({str(self.path)!r}, versions={self._file.value.kvnos})"

    @property
    def keyring(self) -> MasterKeyring:
        """The keyring to use now; reloaded first when SIGHUP asked for it."""
        return self._file.value

    def request_reload(self) -> None:
        """Signal-safe: only sets a flag; the next use of ``keyring`` reads the file."""
        self._file.request_reload()

    def reload_on_sighup(self) -> bool:
        return self._file.reload_on_sighup()

    def reload(self, reason: str) -> bool:
        """Read the file again; on any failure keep the loaded keyring and log (never a secret)."""
        return self._file.reload(reason)

    def reload_for(self, master_kvno: int) -> bool:
        """Reload because a record names ``master_kvno``; rate-limited.  True when it is now held."""
        if master_kvno in self._file.value:
            return True
        self._file.reload_if_due(f"unknown master key version {master_kvno}")
        return master_kvno in self._file.value
