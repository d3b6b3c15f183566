"""What the ``tally admin`` commands need, whoever answers: ``AdminInterface``.

Two implementations: ``LocalAdmin`` binds ``AdminOperations`` to one actor
(the OS user with every right, as ``kadmin.local``: whoever reads the master
key file holds every key anyway), and ``remote.RemoteAdmin`` calls the JSON
API as the logged-in principal.  Both return the same result types, so the
commands print the same text either way.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from typing import Any, Protocol

from tally_protocol.keys import Keyset
from tally_protocol.principal import Principal

from ..enrollment import OutstandingEnrollment
from ..pairing import OpenPairing, PairingCode
from .accounts import AdminAccount
from .acl import Actor, Role
from .audit_log import AuditPage, AuditQuery
from .operations import AdminOperations
from .policies import PolicyOverride
from .results import AdminsView, Issued, PoliciesView, PolicyView, PrincipalPage, PrincipalSummary, RealmStatus

LOCAL_ROLE = "superadmin"


class AdminInterface(Protocol):
    realm: str

    def list_principals(self, *, prefix: str = "", cursor: str | None = None, limit: int = 100,
                        kind: str | None = None, status: str | None = None) -> PrincipalPage: ...
    def show(self, name: str) -> PrincipalSummary: ...
    def add_client(self, name: str, *, password: str | None = None) -> Issued: ...
    def add_service(self, name: str) -> Issued: ...
    def disable(self, name: str) -> PrincipalSummary: ...
    def enable(self, name: str) -> PrincipalSummary: ...
    def rotate(self, name: str, *, password: str | None = None, delay_s: int | None = None) -> Issued: ...
    def delete(self, name: str) -> None: ...
    def export_keytab(self, name: str) -> tuple[Principal, Keyset]: ...
    def policies_overview(self) -> PoliciesView: ...
    def policy(self, name: str | None = None) -> PolicyView: ...
    def set_policy(self, name: str | None, policy: PolicyOverride) -> PolicyView: ...
    def audit_events(self, query: AuditQuery) -> AuditPage: ...
    def whoami(self) -> dict[str, Any]: ...
    def admins(self) -> AdminsView: ...
    def roles(self) -> list[Role]: ...
    def create_account(self, username: str, password: str, roles: Iterable[str]) -> AdminAccount: ...
    def delete_account(self, username: str) -> None: ...
    def set_account_disabled(self, username: str, disabled: bool) -> AdminAccount: ...
    def grant(self, subject: str, role: str) -> frozenset[str]: ...
    def revoke(self, subject: str, role: str) -> frozenset[str]: ...
    def define_role(self, name: str, permissions: Iterable[str]) -> Role: ...
    def delete_role(self, name: str) -> None: ...
    def realm_status(self) -> RealmStatus: ...
    def onboarding(self) -> tuple[list[OutstandingEnrollment], list[OpenPairing]]: ...
    def create_enrollment(self, name: str, *, ttl_s: int | None = None) -> str: ...
    def revoke_enrollment(self, enrollment_id: str) -> bool: ...
    def open_pairing(self, name: str, *, ttl_s: int | None = None, attempts: int | None = None) -> PairingCode: ...
    def close_pairing(self, name: str) -> bool: ...


def local_actor() -> Actor:
    """The operator running the CLI on the KDC host: full rights, recorded by OS user name."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): still audited, by uid-less name
        user = "unknown"
    return Actor(f"local:{user}", frozenset({LOCAL_ROLE}), "local", "cli")


class LocalAdmin:
    """``AdminOperations`` with the actor bound: what ``tally admin`` uses without ``--remote``."""

    def __init__(self, operations: AdminOperations, actor: Actor) -> None:
        self.operations = operations
        self.actor = actor
        self.realm = operations.realm

    def list_principals(self, *, prefix: str = "", cursor: str | None = None, limit: int = 100,
                        kind: str | None = None, status: str | None = None) -> PrincipalPage:
        return self.operations.list_principals(self.actor, prefix=prefix, cursor=cursor, limit=limit, kind=kind,
                                               status=status)

    def show(self, name: str) -> PrincipalSummary:
        return self.operations.show(self.actor, name)

    def add_client(self, name: str, *, password: str | None = None) -> Issued:
        return self.operations.add_client(self.actor, name, password=password)

    def add_service(self, name: str) -> Issued:
        return self.operations.add_service(self.actor, name)

    def disable(self, name: str) -> PrincipalSummary:
        return self.operations.disable(self.actor, name)

    def enable(self, name: str) -> PrincipalSummary:
        return self.operations.enable(self.actor, name)

    def rotate(self, name: str, *, password: str | None = None, delay_s: int | None = None) -> Issued:
        return self.operations.rotate(self.actor, name, password=password, delay_s=delay_s)

    def delete(self, name: str) -> None:
        self.operations.delete(self.actor, name)

    def export_keytab(self, name: str) -> tuple[Principal, Keyset]:
        return self.operations.export_keytab(self.actor, name)

    def policies_overview(self) -> PoliciesView:
        return self.operations.policies_overview(self.actor)

    def policy(self, name: str | None = None) -> PolicyView:
        return self.operations.policy(self.actor, name)

    def set_policy(self, name: str | None, policy: PolicyOverride) -> PolicyView:
        return self.operations.set_policy(self.actor, name, policy)

    def audit_events(self, query: AuditQuery) -> AuditPage:
        return self.operations.audit_events(self.actor, query)

    def whoami(self) -> dict[str, Any]:
        return self.operations.whoami(self.actor)

    def admins(self) -> AdminsView:
        return self.operations.admins(self.actor)

    def roles(self) -> list[Role]:
        return self.operations.roles(self.actor)

    def create_account(self, username: str, password: str, roles: Iterable[str]) -> AdminAccount:
        return self.operations.create_account(self.actor, username, password, roles)

    def delete_account(self, username: str) -> None:
        self.operations.delete_account(self.actor, username)

    def set_account_disabled(self, username: str, disabled: bool) -> AdminAccount:
        return self.operations.set_account_disabled(self.actor, username, disabled)

    def grant(self, subject: str, role: str) -> frozenset[str]:
        return self.operations.grant(self.actor, subject, role)

    def revoke(self, subject: str, role: str) -> frozenset[str]:
        return self.operations.revoke(self.actor, subject, role)

    def define_role(self, name: str, permissions: Iterable[str]) -> Role:
        return self.operations.define_role(self.actor, name, permissions)

    def delete_role(self, name: str) -> None:
        self.operations.delete_role(self.actor, name)

    def realm_status(self) -> RealmStatus:
        return self.operations.realm_status(self.actor)

    def onboarding(self) -> tuple[list[OutstandingEnrollment], list[OpenPairing]]:
        return self.operations.onboarding(self.actor)

    def create_enrollment(self, name: str, *, ttl_s: int | None = None) -> str:
        if ttl_s is None:
            return self.operations.create_enrollment(self.actor, name)
        return self.operations.create_enrollment(self.actor, name, ttl_s=ttl_s)

    def revoke_enrollment(self, enrollment_id: str) -> bool:
        return self.operations.revoke_enrollment(self.actor, enrollment_id)

    def open_pairing(self, name: str, *, ttl_s: int | None = None, attempts: int | None = None) -> PairingCode:
        options = {k: v for k, v in (("ttl_s", ttl_s), ("attempts", attempts)) if v is not None}
        return self.operations.open_pairing(self.actor, name, **options)

    def close_pairing(self, name: str) -> bool:
        return self.operations.close_pairing(self.actor, name)
