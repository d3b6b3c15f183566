"""Long-term and session keys, and sets of key versions.

A ``Keyset`` maps key version numbers (kvno) to keys, like a keytab: the
newest version encrypts, every version still listed decrypts, so tickets
issued before a rotation keep verifying until they expire.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .encoding import b64decode, b64encode
from .errors import InvalidRequest, MalformedMessage, UnknownKeyVersion

KEY_SIZE = 32
MAX_KVNO = 2**32 - 1


@dataclass(frozen=True, eq=False)
class Key:
    """A 256-bit symmetric key and its version number."""

    material: bytes = field(repr=False)
    kvno: int = 1
    #: Per-usage AEAD objects derived on first use (crypto.py fills it).
    _derived: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.material) != KEY_SIZE:
            raise InvalidRequest(f"a key is {KEY_SIZE} bytes, not {len(self.material)}")
        if not 0 <= self.kvno <= MAX_KVNO:
            raise InvalidRequest("key version out of range")


@dataclass(frozen=True)
class PasswordParams:
    """Argon2id parameters (RFC 9106 §4, second recommended option by default)."""

    salt: bytes
    iterations: int = 3
    memory_kib: int = 65536
    lanes: int = 4

    def to_dict(self) -> dict[str, Any]:
        return {
            "kdf": "argon2id",
            "salt": b64encode(self.salt),
            "iterations": self.iterations,
            "memory_kib": self.memory_kib,
            "lanes": self.lanes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PasswordParams:
        if not isinstance(data, Mapping):  # JSON from the KDC may be any value
            raise MalformedMessage("invalid password parameters")
        try:
            if data.get("kdf") != "argon2id":
                raise MalformedMessage("unsupported password KDF")
            params = cls(
                salt=b64decode(str(data["salt"])),
                iterations=int(data["iterations"]),
                memory_kib=int(data["memory_kib"]),
                lanes=int(data["lanes"]),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as e:  # OverflowError: int(inf)
            raise MalformedMessage("invalid password parameters") from e
        # Bounds stop a hostile KDC from making a client burn unbounded memory.
        if not (8 <= len(params.salt) <= 64 and 1 <= params.iterations <= 16
                and 8 * params.lanes <= params.memory_kib <= 2**21 and 1 <= params.lanes <= 16):
            raise MalformedMessage("password parameters out of bounds")
        return params


class Keyset:
    """Key versions of one principal: ``kvno -> Key``; the newest encrypts."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[Key]) -> None:
        self._keys: dict[int, Key] = {}
        for key in keys:
            if key.kvno in self._keys:
                raise InvalidRequest(f"duplicate key version {key.kvno}")
            self._keys[key.kvno] = key
        if not self._keys:
            raise InvalidRequest("a keyset needs at least one key")

    @property
    def current(self) -> Key:
        return self._keys[max(self._keys)]

    def get(self, kvno: int) -> Key:
        try:
            return self._keys[kvno]
        except KeyError:
            raise UnknownKeyVersion(kvno=kvno) from None

    def __contains__(self, kvno: object) -> bool:
        return kvno in self._keys

    def __iter__(self) -> Iterator[Key]:
        return iter(sorted(self._keys.values(), key=lambda k: k.kvno))

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def versions(self) -> list[int]:
        return sorted(self._keys)
