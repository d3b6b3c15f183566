"""Files holding secrets: master keys, key files, keytabs, credential caches, passwords.

Written with mode 0600 from the first byte (never chmod after the fact),
optionally refusing to overwrite.  Read only when nobody but the owner can
read it and the owner is this user or root: a world-readable key is already
compromised, and a file someone else owns can be swapped under us.

POSIX ACLs count as access: a group or a named user granted read through an
ACL is refused like mode 0640 would be.  The one ACL grant accepted is read
for this very user, which is how systemd hands a service its
``LoadCredential=`` files (root-owned, mode 0400, ``user:<service>:r``).
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from tally_protocol.errors import AlreadyExists, ConfigurationError

SECRET_MODE = 0o600

#: Linux's extended attribute holding a file's access ACL (acl_ea.h): a version, then (tag, perm, id) entries.
_ACL_XATTR = "system.posix_acl_access"
_ACL_VERSION = 2
_ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP, _ACL_MASK, _ACL_OTHER = 0x02, 0x04, 0x08, 0x10, 0x20


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


@dataclass(frozen=True)
class AclEntry:
    """One entry of a POSIX access ACL: ``tag`` (user, group, mask, ...), ``perm`` bits (rwx = 4|2|1), ``qualifier``."""

    tag: int
    perm: int
    qualifier: int


def parse_acl(raw: bytes) -> list[AclEntry]:
    """The entries of a ``system.posix_acl_access`` value; ConfigurationError if it is not one."""
    if len(raw) < 4 or (len(raw) - 4) % 8 or struct.unpack_from("<I", raw)[0] != _ACL_VERSION:
        raise ConfigurationError("unreadable POSIX ACL on a secret file")
    return [AclEntry(*entry) for entry in struct.iter_unpack("<HHI", raw[4:])]


def access_problem(path: Path, st: os.stat_result, acl: list[AclEntry] | None, euid: int) -> str | None:
    """Why a file with this status and ACL may not hold a secret for user ``euid`` (with the fix), or None."""
    if st.st_uid not in (euid, 0):
        return (f"is owned by uid {st.st_uid}, neither this user (uid {euid}) nor root; "
                f"run chown {euid} {path} (as root)")
    if acl is None:
        if st.st_mode & 0o077:
            return f"is accessible by group or others (mode {stat.filemode(st.st_mode)}); run chmod 600 {path}"
        return None
    # With an ACL the mode's group bits show the mask; the entries say who may really read.
    mask = next((e.perm for e in acl if e.tag == _ACL_MASK), 0o7)
    for e in acl:
        if e.tag == _ACL_OTHER:
            granted = e.perm
        elif e.tag in (_ACL_USER, _ACL_GROUP_OBJ, _ACL_GROUP):
            granted = e.perm & mask
        else:
            continue  # the owner's own entry, the mask
        if not granted or (e.tag == _ACL_USER and e.qualifier == euid):
            continue  # a grant to this very user is systemd's LoadCredential= hand-over
        who = {_ACL_USER: f"user {e.qualifier}", _ACL_GROUP: f"group {e.qualifier}", _ACL_GROUP_OBJ: "its group",
               _ACL_OTHER: "others"}[e.tag]
        return f"grants {who} access through its ACL; run setfacl -b {path} && chmod 600 {path}"
    return None


def _acl_of(fd: int) -> list[AclEntry] | None:
    try:
        return parse_acl(os.getxattr(fd, _ACL_XATTR))
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return None  # no ACL, or a file system without them: the mode says it all
        raise


def read_secret(path: Path | str, *, what: str = "secret file") -> bytes:
    """Read a secret file, refusing one that others may read or that someone else owns.

    The checks run on the opened file, so it cannot be swapped between check and read.
    """
    path = Path(path).expanduser()
    try:
        with open(path, "rb") as f:
            problem = access_problem(path, os.fstat(f.fileno()), _acl_of(f.fileno()), os.geteuid())
            if problem is not None:
                raise ConfigurationError(f"{what} {path} {problem}")
            return f.read()
    except FileNotFoundError:
        raise ConfigurationError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{what} {path} is a directory") from None
    except PermissionError:
        raise ConfigurationError(f"{what} {path} is not readable by this user") from None
    except OSError as e:
        raise ConfigurationError(f"cannot read {what} {path}: {e.strerror}") from None

