"""What admin operations return, and their JSON form (the admin API's bodies).

Every type here is safe to show: names, kinds, key *versions* and times,
never a key.  The one exception is ``Issued.keyset``, the fresh key material
of a principal just created or rotated, which is delivered once (a keytab in
a 0600 file, or base64url in an API response) and never logged.
``from_dict`` rebuilds each type from the API's JSON, so the remote CLI
prints exactly what the local one does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.errors import InvalidRequest, MalformedMessage
from tally_protocol.keys import Keyset
from tally_protocol.keytab import dump_keytab, load_keytab
from tally_protocol.principal import Principal

from ..enrollment import OutstandingEnrollment
from ..pairing import OpenPairing, PairingCode
from ..records import PrincipalRecord
from .accounts import AdminAccount
from .acl import Role
from .policies import EffectivePolicy, PolicyOverride


def _malformed(what: str) -> MalformedMessage:
    return MalformedMessage(f"the admin API sent a malformed {what}")


@dataclass(frozen=True, slots=True)
class KeyVersionInfo:
    kvno: int
    created: int
    activate_at: int

    def to_dict(self) -> dict[str, int]:
        return {"kvno": self.kvno, "created": self.created, "activate_at": self.activate_at}


@dataclass(frozen=True, slots=True)
class PrincipalSummary:
    """A principal as admins see it: everything but its keys."""

    name: str
    kind: str
    disabled: bool
    #: Argon2id cost of a password principal (salt left out); None for random keys.
    password_kdf: dict[str, int] | None
    keys: tuple[KeyVersionInfo, ...]
    created: int
    updated: int

    @classmethod
    def of(cls, record: PrincipalRecord) -> PrincipalSummary:
        kdf = None
        if record.password is not None:
            p = record.password
            kdf = {"iterations": p.iterations, "memory_kib": p.memory_kib, "lanes": p.lanes}
        keys = tuple(KeyVersionInfo(k.kvno, k.created, int(getattr(k, "activate_at", k.created)))
                     for k in record.keys)
        return cls(record.name, str(record.kind), record.disabled, kdf, keys, record.created, record.updated)

    @property
    def principal(self) -> Principal:
        return Principal.parse(self.name)

    @property
    def status(self) -> str:
        return "disabled" if self.disabled else "enabled"

    @property
    def kvnos(self) -> list[int]:
        return [k.kvno for k in self.keys]

    @property
    def current_kvno(self) -> int:
        return self.keys[-1].kvno

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "status": self.status, "disabled": self.disabled,
                "key_source": "password" if self.password_kdf else "random", "password_kdf": self.password_kdf,
                "kvnos": self.kvnos, "keys": [k.to_dict() for k in self.keys], "created": self.created,
                "updated": self.updated}

    @classmethod
    def from_dict(cls, doc: Any) -> PrincipalSummary:
        try:
            keys = tuple(KeyVersionInfo(int(k["kvno"]), int(k["created"]), int(k["activate_at"]))
                         for k in doc["keys"])
            kdf = doc["password_kdf"]
            return cls(str(doc["name"]), str(doc["kind"]), bool(doc["disabled"]),
                       {str(k): int(v) for k, v in kdf.items()} if kdf else None, keys, int(doc["created"]),
                       int(doc["updated"]))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise _malformed("principal") from e


@dataclass(frozen=True, slots=True)
class PrincipalPage:
    principals: list[PrincipalSummary]
    #: Pass as ``cursor`` for the next page; None when the listing is complete.
    next_cursor: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"principals": [p.to_dict() for p in self.principals], "next_cursor": self.next_cursor}

    @classmethod
    def from_dict(cls, doc: Any) -> PrincipalPage:
        try:
            cursor = doc["next_cursor"]
            return cls([PrincipalSummary.from_dict(p) for p in doc["principals"]],
                       None if cursor is None else str(cursor))
        except (KeyError, TypeError) as e:
            raise _malformed("principal page") from e


@dataclass(frozen=True)
class Issued:
    """A principal just created or rotated, with its fresh keys when they are to be delivered."""

    principal: PrincipalSummary
    keyset: Keyset | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        keytab = None
        if self.keyset is not None:
            keytab = b64encode(dump_keytab(self.principal.principal, self.keyset))
        return {"principal": self.principal.to_dict(), "keytab": keytab}

    @classmethod
    def from_dict(cls, doc: Any) -> Issued:
        try:
            summary = PrincipalSummary.from_dict(doc["principal"])
            keytab = doc["keytab"]
        except (KeyError, TypeError) as e:
            raise _malformed("result") from e
        if keytab is None:
            return cls(summary)
        principal, keyset = load_keytab(b64decode(str(keytab)))
        if principal != summary.principal:
            raise _malformed("keytab (it names another principal)")
        return cls(summary, keyset)


@dataclass(frozen=True, slots=True)
class PolicyView:
    """A principal's override (or the realm default when ``principal`` is None) and what applies."""

    principal: str | None
    override: PolicyOverride
    effective: EffectivePolicy

    def to_dict(self) -> dict[str, Any]:
        return {"principal": self.principal, "override": self.override.to_dict(),
                "effective": self.effective.to_dict()}

    @classmethod
    def from_dict(cls, doc: Any) -> PolicyView:
        try:
            principal = doc["principal"]
            return cls(None if principal is None else str(principal), PolicyOverride.from_dict(doc["override"]),
                       EffectivePolicy.from_dict(doc["effective"]))
        except (KeyError, TypeError, InvalidRequest) as e:
            raise _malformed("policy") from e


@dataclass(frozen=True, slots=True)
class PoliciesView:
    config: EffectivePolicy
    default: PolicyOverride
    overrides: dict[str, PolicyOverride]

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "default": self.default.to_dict(),
                "overrides": {name: o.to_dict() for name, o in self.overrides.items()}}

    @classmethod
    def from_dict(cls, doc: Any) -> PoliciesView:
        try:
            return cls(EffectivePolicy.from_dict(doc["config"]), PolicyOverride.from_dict(doc["default"]),
                       {str(k): PolicyOverride.from_dict(v) for k, v in doc["overrides"].items()})
        except (KeyError, TypeError, AttributeError, InvalidRequest) as e:
            raise _malformed("policies") from e


@dataclass(frozen=True, slots=True)
class AdminsView:
    accounts: list[AdminAccount]
    principals: dict[str, frozenset[str]]

    def to_dict(self) -> dict[str, Any]:
        return {"accounts": [a.to_dict() for a in self.accounts],
                "principals": [{"principal": p, "roles": sorted(r)} for p, r in self.principals.items()]}

    @classmethod
    def from_dict(cls, doc: Any) -> AdminsView:
        try:
            return cls([account_from_dict(a) for a in doc["accounts"]],
                       {str(g["principal"]): frozenset(str(r) for r in g["roles"]) for g in doc["principals"]})
        except (KeyError, TypeError) as e:
            raise _malformed("admin list") from e


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """Versions of a realm-wide key (ticket-granting or master) and when the newest was made."""

    kvnos: list[int]
    current_kvno: int | None
    rotated: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"kvnos": self.kvnos, "current_kvno": self.current_kvno, "rotated": self.rotated}

    @classmethod
    def from_dict(cls, doc: Any) -> KeyStatus:
        try:
            current, rotated = doc["current_kvno"], doc["rotated"]
            return cls([int(k) for k in doc["kvnos"]], None if current is None else int(current),
                       None if rotated is None else int(rotated))
        except (KeyError, TypeError, ValueError) as e:
            raise _malformed("key status") from e


@dataclass(frozen=True, slots=True)
class RealmStatus:
    realm: str
    store: dict[str, Any]
    created: int | None
    principals: int
    audit_events: int
    tgs: KeyStatus
    master: KeyStatus
    admin_service: bool

    def to_dict(self) -> dict[str, Any]:
        return {"realm": self.realm, "store": self.store, "created": self.created, "principals": self.principals,
                "audit_events": self.audit_events, "tgs_key": self.tgs.to_dict(), "master_key": self.master.to_dict(),
                "admin_service": self.admin_service}

    @classmethod
    def from_dict(cls, doc: Any) -> RealmStatus:
        try:
            created = doc["created"]
            return cls(str(doc["realm"]), dict(doc["store"]), None if created is None else int(created),
                       int(doc["principals"]), int(doc["audit_events"]), KeyStatus.from_dict(doc["tgs_key"]),
                       KeyStatus.from_dict(doc["master_key"]), bool(doc["admin_service"]))
        except (KeyError, TypeError, ValueError) as e:
            raise _malformed("realm status") from e


def role_from_dict(doc: Any) -> Role:
    if not isinstance(doc, Mapping):
        raise _malformed("role")
    try:
        return Role(str(doc["name"]), frozenset(str(p) for p in doc["permissions"]), bool(doc.get("builtin")))
    except (KeyError, TypeError) as e:
        raise _malformed("role") from e


def account_from_dict(doc: Any) -> AdminAccount:
    try:
        last = doc["last_login"]
        return AdminAccount(str(doc["username"]), frozenset(str(r) for r in doc["roles"]), bool(doc["disabled"]),
                            int(doc["created"]), None if last is None else int(last))
    except (KeyError, TypeError, ValueError) as e:
        raise _malformed("admin account") from e


def onboarding_to_dict(enrollments: list[OutstandingEnrollment], pairings: list[OpenPairing]) -> dict[str, Any]:
    return {"enrollments": [{"enrollment_id": e.enrollment_id, "principal": str(e.principal), "created": e.created,
                             "expires_at": e.expires_at} for e in enrollments],
            "pairings": [{"principal": str(p.principal), "created": p.created, "expires_at": p.expires_at,
                          "attempts_left": p.attempts_left} for p in pairings]}


def onboarding_from_dict(doc: Any) -> tuple[list[OutstandingEnrollment], list[OpenPairing]]:
    try:
        return ([OutstandingEnrollment(str(e["enrollment_id"]), Principal.parse(str(e["principal"])),
                                       int(e["created"]), int(e["expires_at"])) for e in doc["enrollments"]],
                [OpenPairing(Principal.parse(str(p["principal"])), int(p["created"]), int(p["expires_at"]),
                             int(p["attempts_left"])) for p in doc["pairings"]])
    except (KeyError, TypeError, ValueError) as e:
        raise _malformed("onboarding list") from e


def pairing_to_dict(principal: Principal, code: PairingCode) -> dict[str, Any]:
    """The one response that carries a pairing code: shown once to the admin, never stored or logged."""
    return {"principal": str(principal), "code": code.code, "display": code.display, "expires_at": code.expires_at,
            "attempts": code.attempts}


def pairing_from_dict(doc: Any) -> PairingCode:
    try:
        return PairingCode(str(doc["code"]), int(doc["expires_at"]), int(doc["attempts"]))
    except (KeyError, TypeError, ValueError) as e:
        raise _malformed("pairing code") from e
