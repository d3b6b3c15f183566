"""Files holding secrets: master keys, key files, keytabs, credential caches.

Written with mode 0600 from the first byte (never chmod after the fact),
optionally refusing to overwrite; read only when no group or other access
is granted, since a world-readable key is already compromised.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tally_protocol.errors import AlreadyExists, ConfigurationError

SECRET_MODE = 0o600


def write_secret(path: Path | str, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` with mode 0600; parent directories are made 0700."""
    path = Path(path).expanduser()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, SECRET_MODE)
    except FileExistsError:
        raise AlreadyExists(f"{path} already exists; refusing to overwrite it") from None
    except OSError as e:
        raise ConfigurationError(f"cannot write {path}: {e.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), SECRET_MODE)
        f.write(data)
    return path


def read_secret(path: Path | str, *, what: str = "secret file") -> bytes:
    """Read a secret file, refusing one that others may read."""
    path = Path(path).expanduser()
    try:
        st = path.stat()
        if st.st_mode & 0o077:
            raise ConfigurationError(
                f"{what} {path} is accessible by group or others (mode {stat.filemode(st.st_mode)}); run chmod 600 {path}"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{what} {path} is a directory") from None
    except PermissionError:
        raise ConfigurationError(f"{what} {path} is not readable by this user") from None
