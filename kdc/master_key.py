"""The realm master key: the one secret that encrypts every long-term key at rest.

Rules this module keeps:

* The key lives in a file written 0600 from the first byte and never
  overwritten (losing it loses every principal's key, so a second ``init``
  must not clobber it).  A group- or world-readable file is refused on read.
* File format: ``magic "TMK" | version u8 | kvno u32 | key[32] | check[8]``.
  The check value is an HMAC of a constant under the key, so a truncated or
  bit-flipped file is reported as corrupt instead of silently producing a
  key that unwraps nothing.
* A wrapped key is sealed (usage MASTER_KEY_WRAP) with the realm, principal
  name and key version as associated data: a wrapped key copied onto another
  principal, realm or version no longer unwraps (cut-and-paste in the store).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from tally_protocol import Random
from tally_protocol.codes import KeyUsage
from tally_protocol.crypto import NONCE_SIZE, equal, mac, seal, unseal
from tally_protocol.encoding import Writer
from tally_protocol.errors import ConfigurationError, TallyError
from tally_protocol.keys import KEY_SIZE, MAX_KVNO, Key
from tally_runtime.secret_files import read_secret, write_secret

MAGIC = b"TMK"
FILE_VERSION = 1
CHECK_SIZE = 8
_HEADER = struct.Struct(">3sBI")
FILE_SIZE = _HEADER.size + KEY_SIZE + CHECK_SIZE
_CHECK_LABEL = b"tallystick-v1 master key check"


def _check_value(material: bytes, label: bytes = b"") -> bytes:
    return mac(material, _CHECK_LABEL + label)[:CHECK_SIZE]


def _wrap_context(realm: str, name: str, kvno: int) -> bytes:
    return Writer().text(realm).text(name).u32(kvno).getvalue()


@dataclass(frozen=True)
class MasterKey:
    """The realm master key and its version (the kvno travels in every wrapped blob)."""

    key: Key = field(repr=False)

    @property
    def kvno(self) -> int:
        return self.key.kvno

    def check_value(self, realm: str) -> bytes:
        """A realm-specific fingerprint the store keeps, to detect a wrong master key file early."""
        return _check_value(self.key.material, realm.encode())

    def wrap(self, realm: str, name: str, key: Key, rng: Random) -> bytes:
        """Encrypt a long-term key for storage under ``realm``/``name`` at version ``key.kvno``."""
        return seal(self.key, KeyUsage.MASTER_KEY_WRAP, key.material, nonce=rng(NONCE_SIZE),
                    context=_wrap_context(realm, name, key.kvno))

    def unwrap(self, realm: str, name: str, kvno: int, blob: bytes) -> Key:
        """The stored key of ``name`` at version ``kvno``.

        Any failure is a ``ConfigurationError``: the store holds a record this
        master key did not write (wrong key file, or a tampered record).  It
        is the operator's problem, never the peer's, so it is not a 401.
        """
        try:
            material = unseal(self.key, KeyUsage.MASTER_KEY_WRAP, blob, context=_wrap_context(realm, name, kvno))
            return Key(material, kvno)
        except TallyError as e:  # IntegrityError, or a truncated / wrong-size blob
            raise ConfigurationError(
                f"stored key {kvno} of {name}@{realm} does not unwrap under master key version {self.kvno} "
                "(wrong master key file or a tampered record)"
            ) from e

    def to_bytes(self) -> bytes:
        header = _HEADER.pack(MAGIC, FILE_VERSION, self.kvno)
        return header + self.key.material + _check_value(self.key.material)

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "master key file") -> MasterKey:
        if len(data) != FILE_SIZE or not data.startswith(MAGIC):
            raise ConfigurationError(f"{source} is not a tallystick master key file (wrong size or magic)")
        _magic, version, kvno = _HEADER.unpack_from(data)
        if version != FILE_VERSION:
            raise ConfigurationError(f"{source} has unsupported format version {version}")
        material = data[_HEADER.size:_HEADER.size + KEY_SIZE]
        if not equal(data[-CHECK_SIZE:], _check_value(material)):
            raise ConfigurationError(f"{source} is corrupt (check value mismatch)")
        return cls(Key(material, kvno))

    @classmethod
    def generate(cls, rng: Random = os.urandom, kvno: int = 1) -> MasterKey:
        if not 1 <= kvno <= MAX_KVNO:
            raise ConfigurationError("master key version out of range")
        return cls(Key(rng(KEY_SIZE), kvno))


def create_master_key_file(path: Path | str, rng: Random = os.urandom) -> MasterKey:
    """Generate a master key and write it 0600; ``AlreadyExists`` if ``path`` exists."""
    master = MasterKey.generate(rng)
    write_secret(path, master.to_bytes(), overwrite=False)
    return master


def load_master_key_file(path: Path | str) -> MasterKey:
    """Read a master key file; a missing, exposed or corrupt file is a ``ConfigurationError``."""
    data = read_secret(path, what="master key file")
    return MasterKey.from_bytes(data, source=f"master key file {Path(path).expanduser()}")
