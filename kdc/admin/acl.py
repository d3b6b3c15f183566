"""Who may do what: permissions, roles, actors, and the one permission check.

Rules this module keeps (MIT's kadm5.acl is the model):

* every operation needs one named ``Permission``; a role is a set of them;
* the wildcard ``*`` means every permission *except* ``extract-keys``:
  taking existing keys out of the KDC is never implied, it must be granted
  by name (kadm5.acl's ``*`` likewise leaves out ``e``);
* the keys of the ticket-granting principal (``krbtgt/...``) and of the admin
  service (``kadmin/admin``) can never be extracted, whatever the role: whoever
  holds them can forge any ticket or any admin request;
* nobody grants, revokes or defines a role holding a permission they do not
  hold themselves, so ``manage-admins`` cannot be turned into ``extract-keys``;
* unknown role names grant nothing (a deleted custom role simply stops working).

Built-in roles live in code; custom roles in Redis (``tally:{REALM:admin}:roles``,
a hash ``name -> JSON list``), defined by holders of ``manage-admins``.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from tally_protocol.errors import AlreadyExists, ConfigurationError, InvalidRequest, NotFound, PermissionDenied
from tally_protocol.principal import TGS_NAME, Principal
from tally_runtime.redis_store import store_errors


class Permission(enum.StrEnum):
    LIST = "list"
    SHOW = "show"
    ADD = "add"
    MODIFY = "modify"
    DISABLE = "disable"
    DELETE = "delete"
    ROTATE = "rotate"
    EXTRACT_KEYS = "extract-keys"
    MANAGE_POLICIES = "manage-policies"
    MANAGE_ADMINS = "manage-admins"
    VIEW_AUDIT = "view-audit"


_PERMISSION_VALUES = frozenset(p.value for p in Permission)
WILDCARD = "*"
#: Never granted by ``*``: only by name.
NOT_BY_WILDCARD = frozenset({Permission.EXTRACT_KEYS})
#: The realm's admin service principal (as kadmin uses kadmin/admin).
ADMIN_SERVICE_NAME = "kadmin/admin"
_ROLE_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")


def unextractable(principal: Principal) -> bool:
    """True for keys that never leave the KDC: ticket-granting and admin service keys."""
    return principal.name.startswith(f"{TGS_NAME}/") or principal.name == ADMIN_SERVICE_NAME


@dataclass(frozen=True, slots=True)
class Role:
    """A named set of permissions (values of ``Permission``, or ``*``)."""

    name: str
    permissions: frozenset[str]
    builtin: bool = False

    def __post_init__(self) -> None:
        if not _ROLE_NAME.fullmatch(self.name):
            raise InvalidRequest(f"invalid role name {self.name!r} (a-z, 0-9 and '-', at most 32)")
        unknown = sorted(p for p in self.permissions if p != WILDCARD and p not in _PERMISSION_VALUES)
        if unknown:
            raise InvalidRequest(f"unknown permission(s) {', '.join(unknown)}; known: "
                                 f"{', '.join(Permission)} and {WILDCARD}")
        if not self.permissions:
            raise InvalidRequest("a role needs at least one permission")

    def grants(self, permission: Permission) -> bool:
        if permission in self.permissions:
            return True
        return WILDCARD in self.permissions and permission not in NOT_BY_WILDCARD

    @property
    def effective(self) -> frozenset[Permission]:
        """The permissions this role really grants (the wildcard expanded)."""
        return frozenset(p for p in Permission if self.grants(p))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "permissions": sorted(self.permissions), "builtin": self.builtin,
                "effective": sorted(self.effective)}


def _builtin(name: str, *permissions: str) -> Role:
    return Role(name, frozenset(permissions), builtin=True)


_VIEWER = (Permission.LIST, Permission.SHOW, Permission.VIEW_AUDIT)
BUILTIN_ROLES: Mapping[str, Role] = {
    role.name: role
    for role in (
        _builtin("viewer", *_VIEWER),
        _builtin("operator", *_VIEWER, Permission.ADD, Permission.MODIFY, Permission.DISABLE, Permission.ROTATE),
        _builtin("admin", WILDCARD),
        _builtin("key-custodian", Permission.LIST, Permission.SHOW, Permission.EXTRACT_KEYS),
        _builtin("superadmin", *Permission),
    )
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs an admin action: a principal, an admin account or the local operator.

    ``via`` says through what (``cli``, ``api``, ``web``); ``address`` is the client address
    (``local`` for the CLI).
    """

    name: str
    roles: frozenset[str]
    address: str
    via: str


def permits(roles: Iterable[Role], permission: Permission) -> bool:
    return any(role.grants(permission) for role in roles)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RoleStore:
    """Built-in roles plus the realm's custom roles in Redis."""

    def __init__(self, redis_client: redis.Redis, realm: str) -> None:
        self._redis = redis_client
        self._key = f"tally:{{{realm}:admin}}:roles"

    @staticmethod
    def _decode(name: str, raw: Any) -> Role:
        try:
            permissions = json.loads(raw)
            if not isinstance(permissions, list):
                raise TypeError("not a list")
            return Role(name, frozenset(str(p) for p in permissions))
        except (ValueError, TypeError, InvalidRequest) as e:
            raise ConfigurationError(f"custom role {name!r} in the store is corrupt") from e

    def get(self, name: str) -> Role | None:
        if name in BUILTIN_ROLES:
            return BUILTIN_ROLES[name]
        with store_errors():
            raw = self._redis.hget(self._key, name)
        return None if raw is None else self._decode(name, raw)

    def require(self, name: str) -> Role:
        role = self.get(name)
        if role is None:
            raise NotFound(f"no role {name!r}")
        return role

    def all(self) -> dict[str, Role]:
        with store_errors():
            stored = self._redis.hgetall(self._key)
        custom = {_text(k): self._decode(_text(k), v) for k, v in stored.items()}
        return {**dict(sorted(custom.items())), **BUILTIN_ROLES}

    def resolve(self, names: Iterable[str]) -> list[Role]:
        """The roles behind ``names``; one HMGET for the custom ones, none for built-ins; unknown names dropped."""
        names = sorted(set(names))
        custom = [n for n in names if n not in BUILTIN_ROLES]
        roles = [BUILTIN_ROLES[n] for n in names if n in BUILTIN_ROLES]
        if custom:
            with store_errors():
                raws = self._redis.hmget(self._key, custom)
            roles += [self._decode(n, raw) for n, raw in zip(custom, raws, strict=True) if raw is not None]
        return roles

    def define(self, role: Role) -> None:
        """Create or replace a custom role."""
        if role.name in BUILTIN_ROLES or role.builtin:
            raise AlreadyExists(f"{role.name!r} is a built-in role and cannot be redefined")
        with store_errors():
            self._redis.hset(self._key, role.name, json.dumps(sorted(role.permissions)))

    def remove(self, name: str) -> None:
        if name in BUILTIN_ROLES:
            raise InvalidRequest(f"{name!r} is a built-in role and cannot be deleted")
        with store_errors():
            removed = self._redis.hdel(self._key, name)
        if not removed:
            raise NotFound(f"no custom role {name!r}")


class AccessControl:
    """``check(actor, permission, target)``: the one place a permission is decided."""

    def __init__(self, roles: RoleStore) -> None:
        self.roles = roles

    def permissions(self, actor: Actor) -> frozenset[Permission]:
        return frozenset(p for p in Permission if permits(self.roles.resolve(actor.roles), p))

    def check(self, actor: Actor, permission: Permission, target: Principal | None = None) -> None:
        """Raise ``PermissionDenied`` unless ``actor`` may do ``permission`` (to ``target``)."""
        if permission is Permission.EXTRACT_KEYS and target is not None and unextractable(target):
            raise PermissionDenied(f"the keys of {target} never leave the KDC, whatever the role")
        if not permits(self.roles.resolve(actor.roles), permission):
            raise PermissionDenied(f"{actor.name} lacks the {permission} permission")

    def check_grantable(self, actor: Actor, role: Role) -> None:
        """Refuse handing out (or taking away) more than the actor holds: no escalation via manage-admins."""
        self.check(actor, Permission.MANAGE_ADMINS)
        missing = role.effective - self.permissions(actor)
        if missing:
            raise PermissionDenied(f"{actor.name} cannot grant or revoke role {role.name!r}: it holds "
                                   f"{', '.join(sorted(missing))}, which {actor.name} does not")
