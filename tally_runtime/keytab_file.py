"""Keytab and client key files on disk (format: ``tally_protocol.keytab``).

A client's key file (``alice.key``) is a keytab holding the client's current
key, so one format and one reader serve services and clients.
"""

from __future__ import annotations

from pathlib import Path

from tally_protocol.keys import Keyset
from tally_protocol.keytab import dump_keytab, load_keytab
from tally_protocol.principal import Principal

from .secret_files import read_secret, write_secret


def write_keytab(path: Path | str, principal: Principal, keyset: Keyset, *, overwrite: bool = False) -> Path:
    return write_secret(path, dump_keytab(principal, keyset), overwrite=overwrite)


def read_keytab(path: Path | str) -> tuple[Principal, Keyset]:
    return load_keytab(read_secret(path, what="keytab"))
