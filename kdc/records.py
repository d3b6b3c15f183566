"""Principal records as stored in the principal database (one JSON document each).

Long-term keys appear here only wrapped under the master key; the record is
safe to log by name and kind, and its repr never shows the wrapped blobs.
The JSON carries a format version so a future layout can be migrated
instead of misread.

Key versions over time (Heimdal's ``new_service_key_delay``): every version
has an ``activate_at``.  A version whose ``activate_at`` is still in the
future is *pending*: it is already in the keyset (so keytabs carry it and
every service replica can load it first) but the KDC keeps issuing under the
newest *active* version until then.  A version is *superseded* when a newer
one becomes active; once the longest ticket lifetime has passed since, no
ticket under it can still be valid and it may be purged.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, replace
from typing import Any

from tally_protocol.crypto import peek_unverified_kvno
from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.errors import ConfigurationError, TallyError
from tally_protocol.keys import PasswordParams
from tally_protocol.principal import Principal

#: Format 2 adds ``activate_at`` to key versions; format 1 records still read.
RECORD_VERSION = 2
_READABLE_VERSIONS = (1, 2)


class PrincipalKind(enum.StrEnum):
    CLIENT = "client"
    SERVICE = "service"
    TGS = "tgs"


@dataclass(frozen=True, slots=True)
class KeyVersion:
    """One long-term key version, wrapped under the master key.

    ``activate_at`` (epoch seconds) is when the KDC may start issuing under
    it; left out, the version is active from ``created``.
    """

    kvno: int
    wrapped: bytes = field(repr=False)
    created: int
    activate_at: int = -1

    def __post_init__(self) -> None:
        if self.activate_at < 0:
            object.__setattr__(self, "activate_at", self.created)

    @property
    def master_kvno(self) -> int:
        """The master key version this key is wrapped under (read from the sealed blob's header).

        The header is associated data of the seal, so a relabelled blob does
        not unwrap: this is only used to pick the master key version.
        """
        return peek_unverified_kvno(self.wrapped)

    def is_pending(self, now: float) -> bool:
        return self.activate_at > now


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
        """The newest version, which may still be pending: issue under ``active(now)``, never this."""
        return self.keys[-1]

    def active(self, now: float) -> KeyVersion:
        """The version the KDC issues under at ``now``: the newest whose activation time has come.

        When none has (only after the clock stepped back past the first
        version's creation), the oldest version: it was active first.
        """
        for key in reversed(self.keys):
            if not key.is_pending(now):
                return key
        return self.keys[0]

    def pending(self, now: float) -> tuple[KeyVersion, ...]:
        """Versions already distributed but not yet issued under."""
        active = self.active(now).kvno
        return tuple(k for k in self.keys if k.kvno > active)

    def superseded_at(self, key: KeyVersion) -> int | None:
        """When a newer version became (or becomes) active; None for the newest."""
        later = [k.activate_at for k in self.keys if k.kvno > key.kvno]
        return min(later) if later else None

    def expired_versions(self, now: float, retention_s: int) -> list[int]:
        """Versions no valid ticket can use any more: superseded more than ``retention_s`` ago.

        The active version and pending ones are never in the list: a version
        is superseded only by a newer one that is already active.
        """
        active = self.active(now).kvno
        expired: list[int] = []
        for key in self.keys:
            since = self.superseded_at(key)
            if key.kvno < active and since is not None and since + retention_s <= now:
                expired.append(key.kvno)
        return expired

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
            "keys": [{"kvno": k.kvno, "wrapped": b64encode(k.wrapped), "created": k.created,
                      "activate_at": k.activate_at} for k in self.keys],
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str, realm: str) -> PrincipalRecord:
        """Decode a stored record; anything unexpected is a ``ConfigurationError`` naming no secret."""
        try:
            doc = json.loads(data)
            if doc["v"] not in _READABLE_VERSIONS:
                raise ConfigurationError(f"principal record format {doc['v']!r} is not supported")
            keys = tuple(
                KeyVersion(int(k["kvno"]), b64decode(k["wrapped"]), int(k["created"]),
                           int(k.get("activate_at", k["created"])))
                for k in doc["keys"]
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
        except (KeyError, TypeError, ValueError, AttributeError, TallyError) as e:
            raise ConfigurationError("a principal record in the store is corrupt") from e
