"""The realm master key: the one secret that encrypts every long-term key at rest.

Rules this module keeps:

* The key lives in a file written 0600 from the first byte and never
  overwritten by ``init`` (losing it loses every principal's key).  A
  rotation replaces it atomically (new file, fsync, rename), so a reader
  sees the old or the new file, whole.  A group- or world-readable file is
  refused on read.
* The file may hold several versions, as ``MultiFernet`` holds several keys:
  the newest wraps, every version unwraps, so records wrapped under the old
  version stay readable while a rotation re-wraps them.
* File formats.  Version 1 (one key):
  ``magic "TMK" | 1 u8 | kvno u32 | key[32] | check[8]``.  Version 2
  (several, ascending kvno): ``magic "TMK" | 2 u8 | count u8 | (kvno u32 |
  key[32] | check[8])*``, where each check also covers its kvno.  A single
  version is written in format 1, so files from before rotation existed and
  files after a finished rotation look the same.  The check values are
  HMACs of a constant under the key, so a truncated or bit-flipped file is
  reported as corrupt instead of silently producing a key that unwraps
  nothing.
* A wrapped key is sealed (usage MASTER_KEY_WRAP) with the realm, principal
  name and key version as associated data: a wrapped key copied onto another
  principal, realm or version no longer unwraps (cut-and-paste in the store).
  The sealed blob's header names the master key version (the seal's kvno),
  authenticated as associated data, so every wrapped key records which
  master version to unwrap it with.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tally_protocol import Random
from tally_protocol.codes import KeyUsage
from tally_protocol.crypto import NONCE_SIZE, equal, mac, peek_unverified_kvno, seal, unseal
from tally_protocol.encoding import Writer
from tally_protocol.errors import ConfigurationError, TallyError
from tally_protocol.keys import KEY_SIZE, MAX_KVNO, Key
from tally_runtime.secret_files import SECRET_MODE, read_secret, write_secret

MAGIC = b"TMK"
FILE_VERSION = 1
MULTI_FILE_VERSION = 2
CHECK_SIZE = 8
#: A rotation adds one version and ``--finish`` removes the old ones, so a handful is the most ever held.
MAX_VERSIONS = 16
_HEADER = struct.Struct(">3sBI")
_MULTI_HEADER = struct.Struct(">3sBB")
_ENTRY = struct.Struct(">I")
FILE_SIZE = _HEADER.size + KEY_SIZE + CHECK_SIZE
_ENTRY_SIZE = _ENTRY.size + KEY_SIZE + CHECK_SIZE
_CHECK_LABEL = b"tallystick-v1 master key check"


class UnknownMasterKeyVersion(ConfigurationError):
    """A wrapped key names a master key version this process does not hold (yet: reload the file)."""


def _check_value(material: bytes, label: bytes = b"") -> bytes:
    return mac(material, _CHECK_LABEL + label)[:CHECK_SIZE]


def _wrap_context(realm: str, name: str, kvno: int) -> bytes:
    return Writer().text(realm).text(name).u32(kvno).getvalue()


@dataclass(frozen=True)
class MasterKey:
    """One master key version (the kvno travels in every wrapped blob)."""

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


class MasterKeyring:
    """Every master key version a KDC holds: the newest wraps, each unwraps what it wrapped."""

    __slots__ = ("_versions",)

    def __init__(self, versions: Iterable[MasterKey]) -> None:
        by_kvno: dict[int, MasterKey] = {}
        for version in versions:
            if version.kvno in by_kvno:
                raise ConfigurationError(f"duplicate master key version {version.kvno}")
            by_kvno[version.kvno] = version
        if not by_kvno:
            raise ConfigurationError("a master keyring needs at least one version")
        if len(by_kvno) > MAX_VERSIONS:
            raise ConfigurationError(f"at most {MAX_VERSIONS} master key versions")
        self._versions = tuple(by_kvno[k] for k in sorted(by_kvno))

    def __repr__(self) -> str:
        return f"MasterKeyring(versions={self.kvnos})"

    @classmethod
    def of(cls, master: MasterKey | MasterKeyring) -> MasterKeyring:
        return master if isinstance(master, MasterKeyring) else cls([master])

    @property
    def current(self) -> MasterKey:
        return self._versions[-1]

    @property
    def key(self) -> Key:
        """The newest version's key (what ``MasterKey.key`` is for a single version)."""
        return self.current.key

    @property
    def kvno(self) -> int:
        return self.current.kvno

    @property
    def kvnos(self) -> list[int]:
        return [v.kvno for v in self._versions]

    def __iter__(self) -> Iterator[MasterKey]:
        return iter(self._versions)

    def __len__(self) -> int:
        return len(self._versions)

    def __contains__(self, kvno: object) -> bool:
        return any(v.kvno == kvno for v in self._versions)

    def get(self, kvno: int) -> MasterKey:
        for version in self._versions:
            if version.kvno == kvno:
                return version
        raise UnknownMasterKeyVersion(f"master key version {kvno} is not in the master key file "
                                      f"(it holds {self.kvnos}); copy the rotated file to this host")

    def unwrap(self, realm: str, name: str, kvno: int, blob: bytes) -> Key:
        """Unwrap with the version the blob names (``UnknownMasterKeyVersion`` when not held)."""
        try:
            master_kvno = peek_unverified_kvno(blob)
        except TallyError as e:
            raise ConfigurationError(f"stored key {kvno} of {name}@{realm} is corrupt") from e
        return self.get(master_kvno).unwrap(realm, name, kvno, blob)

    def with_new_version(self, rng: Random = os.urandom) -> MasterKeyring:
        """This ring plus a fresh version (max + 1), which becomes the one that wraps."""
        return MasterKeyring([*self._versions, MasterKey.generate(rng, self.kvno + 1)])

    def only_current(self) -> MasterKeyring:
        return MasterKeyring([self.current])

    def to_bytes(self) -> bytes:
        if len(self._versions) == 1:
            return self.current.to_bytes()
        out = [_MULTI_HEADER.pack(MAGIC, MULTI_FILE_VERSION, len(self._versions))]
        for version in self._versions:
            kvno = _ENTRY.pack(version.kvno)
            out.append(kvno + version.key.material + _check_value(version.key.material, kvno))
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "master key file") -> MasterKeyring:
        if len(data) < _MULTI_HEADER.size or not data.startswith(MAGIC):
            raise ConfigurationError(f"{source} is not a tallystick master key file (wrong size or magic)")
        if data[len(MAGIC)] != MULTI_FILE_VERSION:
            return cls([MasterKey.from_bytes(data, source=source)])
        _magic, _version, count = _MULTI_HEADER.unpack_from(data)
        if not 1 <= count <= MAX_VERSIONS or len(data) != _MULTI_HEADER.size + count * _ENTRY_SIZE:
            raise ConfigurationError(f"{source} is not a tallystick master key file (wrong size)")
        versions: list[MasterKey] = []
        for i in range(count):
            entry = data[_MULTI_HEADER.size + i * _ENTRY_SIZE:][:_ENTRY_SIZE]
            kvno_bytes, material, check = entry[:4], entry[4:4 + KEY_SIZE], entry[4 + KEY_SIZE:]
            if not equal(check, _check_value(material, kvno_bytes)):
                raise ConfigurationError(f"{source} is corrupt (check value mismatch)")
            kvno = _ENTRY.unpack(kvno_bytes)[0]
            if not 1 <= kvno <= MAX_KVNO:
                raise ConfigurationError(f"{source} is corrupt (master key version out of range)")
            versions.append(MasterKey(Key(material, kvno)))
        if [v.kvno for v in versions] != sorted({v.kvno for v in versions}):
            raise ConfigurationError(f"{source} is corrupt (versions not unique and ascending)")
        return cls(versions)


def create_master_key_file(path: Path | str, rng: Random = os.urandom) -> MasterKey:
    """Generate a master key and write it 0600; ``AlreadyExists`` if ``path`` exists."""
    master = MasterKey.generate(rng)
    write_secret(path, master.to_bytes(), overwrite=False)
    return master


def load_master_key_file(path: Path | str) -> MasterKeyring:
    """Read a master key file (every version in it); a missing, exposed or corrupt file is a ``ConfigurationError``."""
    data = read_secret(path, what="master key file")
    return MasterKeyring.from_bytes(data, source=f"master key file {Path(path).expanduser()}")


def replace_master_key_file(path: Path | str, ring: MasterKeyring, rng: Random = os.urandom) -> Path:
    """Atomically replace the master key file with ``ring``: a new 0600 file, fsynced, renamed over.

    A crash leaves the old file or the new one, never a torn one; the
    directory is fsynced too, so the rename survives a power cut.
    """
    path = Path(path).expanduser()
    tmp = path.with_name(f".{path.name}.{rng(4).hex()}.tmp")
    write_secret(tmp, ring.to_bytes())
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, SECRET_MODE)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot replace {path}: {e.strerror}") from None
    return path
