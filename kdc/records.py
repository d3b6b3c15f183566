"""Principal records as stored in the principal database (one JSON document each).

Long-term keys appear here only wrapped under the master key; the record is
safe to log by name and kind, and its repr never shows the wrapped blobs.
The JSON carries a format version so a future layout can be migrated
instead of misread.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, replace
from typing import Any

from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.errors import ConfigurationError, TallyError
from tally_protocol.keys import PasswordParams
from tally_protocol.principal import Principal

RECORD_VERSION = 1


class PrincipalKind(enum.StrEnum):
    CLIENT = "client"
    SERVICE = "service"
    TGS = "tgs"


@dataclass(frozen=True, slots=True)
class KeyVersion:
    """One long-term key version, wrapped under the master key."""

    kvno: int
    wrapped: bytes = field(repr=False)
    created: int


@dataclass(frozen=True, slots=True)
class PrincipalRecord:
    principal: Principal
    kind: PrincipalKind
    disabled: bool
    created: int
    updated: int
    #: Argon2id parameters when the key derives from a password; None for random keys.
    password: PasswordParams | None
    keys: tuple[KeyVersion, ...]  # ascending kvno, never empty

    @property
    def name(self) -> str:
        return str(self.principal)

    @property
    def is_password(self) -> bool:
        return self.password is not None

    @property
    def kvnos(self) -> list[int]:
        return [k.kvno for k in self.keys]

    @property
    def current(self) -> KeyVersion:
        return self.keys[-1]

    def with_changes(self, **changes: Any) -> PrincipalRecord:
        return replace(self, **changes)

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "v": RECORD_VERSION,
            "name": self.principal.name,
            "kind": str(self.kind),
            "disabled": self.disabled,
            "created": self.created,
            "updated": self.updated,
            "password": self.password.to_dict() if self.password else None,
            "keys": [{"kvno": k.kvno, "wrapped": b64encode(k.wrapped), "created": k.created} for k in self.keys],
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str, realm: str) -> PrincipalRecord:
        """Decode a stored record; anything unexpected is a ``ConfigurationError`` naming no secret."""
        try:
            doc = json.loads(data)
            if doc["v"] != RECORD_VERSION:
                raise ConfigurationError(f"principal record format {doc['v']!r} is not supported")
            keys = tuple(
                KeyVersion(int(k["kvno"]), b64decode(k["wrapped"]), int(k["created"])) for k in doc["keys"]
            )
            if not keys or [k.kvno for k in keys] != sorted({k.kvno for k in keys}):
                raise ValueError("key versions must be unique, ascending and present")
            return cls(
                principal=Principal(str(doc["name"]), realm),
                kind=PrincipalKind(doc["kind"]),
                disabled=bool(doc["disabled"]),
                created=int(doc["created"]),
                updated=int(doc["updated"]),
                password=PasswordParams.from_dict(doc["password"]) if doc["password"] is not None else None,
                keys=keys,
            )
        except ConfigurationError:
            raise
        except (KeyError, TypeError, ValueError, TallyError) as e:
            raise ConfigurationError("a principal record in the store is corrupt") from e
