"""``AdminOperations``: every admin action, checked and audited in one place.

The JSON API, the ``tally admin`` CLI (locally, as ``kadmin.local``, or
``--remote``) and the web UI call these methods and nothing below them, so
a permission cannot be forgotten by one front end.  Each method takes the
``Actor`` first and:

1. checks the one permission the operation needs (``acl.AccessControl``);
2. performs it;
3. writes its audit event, synchronously, to the realm's audit stream
   (``AuditLog``), then to the log.  An event that cannot be stored raises
   ``StoreUnavailable``: nothing is reported done, and no key is handed out,
   without its record.  Refusals (``denied``, ``refused``) are recorded too.

Audit events carry who (actor, via, address), what (event, permission),
target, outcome, error code and time; never a key or a password.

Listing stays fast at any realm size: pages walk the principal index with
``ZRANGEBYLEX`` from a cursor (O(log N + page)).  Kind and status filters
have no index of their own: a filtered page reads the index in batches and
keeps what matches, at most ``MAX_FILTER_SCAN`` records per call, and may
come back short with a cursor to continue from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis

from tally_protocol.errors import InvalidRequest, PermissionDenied, PolicyRefused, TallyError
from tally_protocol.keys import Keyset
from tally_protocol.principal import Principal
from tally_runtime.logs import audit_entry, log_audit_entry

from ..enrollment import DEFAULT_TTL_S as ENROLLMENT_TTL_S
from ..enrollment import EnrollmentTokens, OutstandingEnrollment
from ..pairing import DEFAULT_ATTEMPTS, OpenPairing, PairingCode, Pairings
from ..pairing import DEFAULT_TTL_S as PAIRING_TTL_S
from ..principal_db import PrincipalDB
from ..records import PrincipalKind, PrincipalRecord
from .accounts import AdminAccount, AdminAccounts, parse_subject
from .acl import ADMIN_SERVICE_NAME, AccessControl, Actor, Permission, Role, unextractable
from .audit_log import AuditLog, AuditPage, AuditQuery
from .policies import PolicyOverride, PolicyStore
from .realm_status import read_realm_status
from .results import AdminsView, Issued, PoliciesView, PolicyView, PrincipalPage, PrincipalSummary, RealmStatus

T = TypeVar("T")
MAX_PAGE = 1000
MAX_FILTER_SCAN = 5000
_SCAN_BATCH = 500
KINDS = frozenset(str(k) for k in PrincipalKind)
STATUSES = frozenset({"enabled", "disabled"})


class AdminOperations:
    """One realm's admin operations; ``actor`` first in every call."""

    def __init__(self, store: redis.Redis, db: PrincipalDB, acl: AccessControl, accounts: AdminAccounts,
                 policies: PolicyStore, audit_log: AuditLog, clock: Callable[[], float] = time.time) -> None:
        self.realm = db.realm
        self.store = store
        self.db = db
        self.acl = acl
        self.accounts = accounts
        self.policies = policies
        self.audit_log = audit_log
        self._clock = clock

    # -- the one path every action takes ---------------------------------------

    def _record(self, actor: Actor, event: str, outcome: str, fields: dict[str, Any]) -> None:
        entry = audit_entry(event, outcome, {"actor": actor.name, "via": actor.via, "address": actor.address,
                                             **{k: v for k, v in fields.items() if v is not None}},
                            now=self._clock())
        self.audit_log.append(entry)  # StoreUnavailable: the action is not reported done
        log_audit_entry(entry)

    def _run(self, actor: Actor, event: str, permission: Permission | None, target: Principal | str | None,
             action: Callable[[], T], *, fields: dict[str, Any] | None = None,
             result_fields: Callable[[T], dict[str, Any]] | None = None,
             check: Callable[[], None] | None = None) -> T:
        base = {"target": None if target is None else str(target),
                "permission": None if permission is None else str(permission), **(fields or {})}
        try:
            if permission is not None:
                self.acl.check(actor, permission, target if isinstance(target, Principal) else None)
            if check is not None:
                check()
            result = action()
        except TallyError as err:
            outcome = "denied" if isinstance(err, PermissionDenied) else "refused"
            self._record(actor, event, outcome, {**base, "error": str(err.code)})
            raise
        self._record(actor, event, "success", {**base, **(result_fields(result) if result_fields else {})})
        return result

    def principal(self, name: str | Principal) -> Principal:
        return self.db.principal(name)

    # -- principals ---------------------------------------------------------------

    def list_principals(self, actor: Actor, *, prefix: str = "", cursor: str | None = None, limit: int = 100,
                        kind: str | None = None, status: str | None = None) -> PrincipalPage:
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
        if kind is not None and kind not in KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(sorted(KINDS))}")
        if status is not None and status not in STATUSES:
            raise InvalidRequest("status must be enabled or disabled")
        if cursor:  # the previous page's last name, bare or as name@REALM
            cursor = self.principal(cursor).name

        def page() -> PrincipalPage:
            if kind is None and status is None:
                records = self.db.list(prefix=prefix, start=cursor, limit=limit)
                more = len(records) == limit
                return PrincipalPage([PrincipalSummary.of(r) for r in records],
                                     records[-1].principal.name if more else None)
            return self._filtered_page(prefix, cursor, limit, kind, status)

        return self._run(actor, "admin.principal.list", Permission.LIST, None, page,
                         fields={"prefix": prefix or None, "kind": kind, "status": status},
                         result_fields=lambda p: {"count": len(p.principals)})

    def _filtered_page(self, prefix: str, cursor: str | None, limit: int, kind: str | None,
                       status: str | None) -> PrincipalPage:
        def wanted(r: PrincipalRecord) -> bool:
            return (kind is None or str(r.kind) == kind) and (status is None or r.disabled == (status == "disabled"))

        found: list[PrincipalSummary] = []
        scanned = 0
        while scanned < MAX_FILTER_SCAN:
            batch = self.db.list(prefix=prefix, start=cursor, limit=_SCAN_BATCH)
            for record in batch:
                scanned += 1
                cursor = record.principal.name
                if wanted(record):
                    found.append(PrincipalSummary.of(record))
                    if len(found) == limit:
                        return PrincipalPage(found, cursor)
            if len(batch) < _SCAN_BATCH:
                return PrincipalPage(found, None)
        return PrincipalPage(found, cursor)

    def show(self, actor: Actor, name: str | Principal) -> PrincipalSummary:
        p = self.principal(name)
        return self._run(actor, "admin.principal.show", Permission.SHOW, p,
                         lambda: PrincipalSummary.of(self.db.get(p)))

    def _refuse_reserved(self, p: Principal) -> None:
        if p.name == ADMIN_SERVICE_NAME:
            raise PolicyRefused(f"{p} is the realm's admin service: tally kdc init creates it, with a key that "
                                "never leaves the KDC")

    def add_client(self, actor: Actor, name: str | Principal, *, password: str | None = None) -> Issued:
        """A client with a random key (in the result, delivered once) or a password-derived key."""
        p = self.principal(name)

        def add() -> Issued:
            keyset = self.db.add_client(p, password=password)
            return Issued(PrincipalSummary.of(self.db.get(p)), keyset)

        return self._run(actor, "admin.principal.add", Permission.ADD, p, add,
                         fields={"kind": "client", "source": "password" if password is not None else "random"},
                         check=lambda: self._refuse_reserved(p),
                         result_fields=lambda r: {"kvno": r.principal.current_kvno})

    def add_service(self, actor: Actor, name: str | Principal) -> Issued:
        p = self.principal(name)

        def add() -> Issued:
            keyset = self.db.add_service(p)
            return Issued(PrincipalSummary.of(self.db.get(p)), keyset)

        return self._run(actor, "admin.principal.add", Permission.ADD, p, add, fields={"kind": "service"},
                         check=lambda: self._refuse_reserved(p),
                         result_fields=lambda r: {"kvno": r.principal.current_kvno})

    def disable(self, actor: Actor, name: str | Principal) -> PrincipalSummary:
        p = self.principal(name)

        def disable() -> PrincipalSummary:
            self.db.disable(p)
            return PrincipalSummary.of(self.db.get(p))

        return self._run(actor, "admin.principal.disable", Permission.DISABLE, p, disable)

    def enable(self, actor: Actor, name: str | Principal) -> PrincipalSummary:
        p = self.principal(name)

        def enable() -> PrincipalSummary:
            self.db.enable(p)
            return PrincipalSummary.of(self.db.get(p))

        return self._run(actor, "admin.principal.enable", Permission.DISABLE, p, enable)

    def rotate(self, actor: Actor, name: str | Principal, *, password: str | None = None,
               delay_s: int | None = None) -> Issued:
        """A new key version.

        The result carries the new key of a random-key client, and for a
        service the kept versions: all of them with ``extract-keys``,
        otherwise only the new one (the service already holds the older
        ones; as with MIT's ``ktadd``, a fresh random key is not an
        extraction).  Ticket-granting and admin service keys are never returned.
        """
        p = self.principal(name)

        def rotate() -> Issued:
            before = self.db.get(p)
            options: dict[str, Any] = {} if delay_s is None else {"delay_s": delay_s}
            keyset = self.db.rotate(p, password=password, **options)
            summary = PrincipalSummary.of(self.db.get(p))
            if unextractable(p) or password is not None:
                return Issued(summary)
            if before.kind is PrincipalKind.SERVICE and Permission.EXTRACT_KEYS not in self.acl.permissions(actor):
                keyset = Keyset(k for k in keyset if k.kvno > before.current.kvno)
            return Issued(summary, keyset)

        return self._run(actor, "admin.principal.rotate", Permission.ROTATE, p, rotate,
                         fields={"delay_s": delay_s, "source": "password" if password is not None else None},
                         result_fields=lambda r: {"kvno": r.principal.current_kvno})

    def delete(self, actor: Actor, name: str | Principal) -> None:
        p = self.principal(name)

        def delete() -> None:
            if p.name == ADMIN_SERVICE_NAME:
                raise PolicyRefused(f"{p} is the realm's admin service and cannot be deleted")
            self.db.delete(p)
            self.policies.set_override(p, PolicyOverride())  # no stale override for a future namesake

        self._run(actor, "admin.principal.delete", Permission.DELETE, p, delete)

    def export_keytab(self, actor: Actor, name: str | Principal) -> tuple[Principal, Keyset]:
        """A service's kept key versions: ``extract-keys``, never for ticket-granting or admin keys."""
        p = self.principal(name)

        def export() -> tuple[Principal, Keyset]:
            record = self.db.get(p)
            if record.kind is not PrincipalKind.SERVICE:
                raise InvalidRequest(f"{record.name} is a {record.kind}; only service keytabs can be exported")
            return record.principal, self.db.unwrap_keys(record)

        return self._run(actor, "admin.principal.export", Permission.EXTRACT_KEYS, p, export,
                         result_fields=lambda r: {"kvno": r[1].current.kvno})

    # -- policies -----------------------------------------------------------------

    def policies_overview(self, actor: Actor) -> PoliciesView:
        return self._run(actor, "admin.policy.list", Permission.SHOW, None,
                         lambda: PoliciesView(self.policies.base, self.policies.realm_default(),
                                              self.policies.overrides()))

    def policy(self, actor: Actor, name: str | Principal | None = None) -> PolicyView:
        """The realm default (``name`` None) or a principal's override, with what applies."""
        if name is None:
            return self._run(actor, "admin.policy.show", Permission.SHOW, "realm default",
                             lambda: PolicyView(None, self.policies.realm_default(), self.policies.resolve_default()))
        p = self.principal(name)

        def show() -> PolicyView:
            self.db.get(p)
            return PolicyView(str(p), self.policies.override(p), self.policies.resolve(p))

        return self._run(actor, "admin.policy.show", Permission.SHOW, p, show)

    def set_policy(self, actor: Actor, name: str | Principal | None, policy: PolicyOverride) -> PolicyView:
        """Replace the realm default (``manage-policies``) or a principal's override (``modify``)."""
        changed = sorted(k for k, v in policy.to_dict().items() if v is not None)
        if name is None:
            def set_default() -> PolicyView:
                self.policies.set_default(policy)
                return PolicyView(None, policy, self.policies.resolve_default())

            return self._run(actor, "admin.policy.set", Permission.MANAGE_POLICIES, "realm default", set_default,
                             fields={"fields": ",".join(changed) or "-"})
        p = self.principal(name)

        def set_override() -> PolicyView:
            self.db.get(p)
            self.policies.set_override(p, policy)
            return PolicyView(str(p), policy, self.policies.resolve(p))

        return self._run(actor, "admin.policy.set", Permission.MODIFY, p, set_override,
                         fields={"fields": ",".join(changed) or "-"})

    # -- audit --------------------------------------------------------------------

    def audit_events(self, actor: Actor, query: AuditQuery) -> AuditPage:
        subjects: tuple[str, ...] = ()
        if query.principal:
            subjects = (query.principal,) if "@" in query.principal else (query.principal,
                                                                          f"{query.principal}@{self.realm}")
        return self._run(actor, "admin.audit.query", Permission.VIEW_AUDIT, None,
                         lambda: self.audit_log.query(query, subjects=subjects),
                         fields={"filter_principal": query.principal, "filter_event": query.event},
                         result_fields=lambda page: {"count": len(page.records)})

    # -- admins and roles ---------------------------------------------------------

    def whoami(self, actor: Actor) -> dict[str, Any]:
        return self._run(actor, "admin.whoami", None, None, lambda: {
            "name": actor.name, "roles": sorted(actor.roles), "via": actor.via,
            "permissions": sorted(self.acl.permissions(actor))})

    def admins(self, actor: Actor) -> AdminsView:
        return self._run(actor, "admin.admins.list", Permission.MANAGE_ADMINS, None,
                         lambda: AdminsView(self.accounts.list(), self.accounts.principal_grants()))

    def roles(self, actor: Actor) -> list[Role]:
        return self._run(actor, "admin.roles.list", Permission.MANAGE_ADMINS, None,
                         lambda: list(self.acl.roles.all().values()))

    def _may_manage(self, actor: Actor, role_names: Iterable[str]) -> None:
        """Refuse touching a subject holding more than the actor does (or handing out more)."""
        for role in self.acl.roles.resolve(role_names):
            self.acl.check_grantable(actor, role)

    def create_account(self, actor: Actor, username: str, password: str, roles: Iterable[str]) -> AdminAccount:
        wanted = sorted(set(roles))

        def check() -> None:
            for name in wanted:
                self.acl.check_grantable(actor, self.acl.roles.require(name))

        return self._run(actor, "admin.account.create", Permission.MANAGE_ADMINS, username,
                         lambda: self.accounts.create(username, password, wanted), check=check,
                         fields={"roles": ",".join(wanted) or "-"})

    def delete_account(self, actor: Actor, username: str) -> None:
        self._run(actor, "admin.account.delete", Permission.MANAGE_ADMINS, username,
                  lambda: self.accounts.delete(username),
                  check=lambda: self._may_manage(actor, self.accounts.get(username).roles))

    def set_account_disabled(self, actor: Actor, username: str, disabled: bool) -> AdminAccount:
        def change() -> AdminAccount:
            self.accounts.set_disabled(username, disabled)
            return self.accounts.get(username)

        return self._run(actor, "admin.account.disable" if disabled else "admin.account.enable",
                         Permission.MANAGE_ADMINS, username, change,
                         check=lambda: self._may_manage(actor, self.accounts.get(username).roles))

    def set_account_password(self, actor: Actor, username: str, password: str) -> None:
        """An account's new password: its owner (``via`` web) or someone who may manage it."""
        own = actor.via == "web" and actor.name == username
        self._run(actor, "admin.account.password", None if own else Permission.MANAGE_ADMINS, username,
                  lambda: self.accounts.set_password(username, password),
                  check=None if own else lambda: self._may_manage(actor, self.accounts.get(username).roles))

    def grant(self, actor: Actor, subject: str, role: str) -> frozenset[str]:
        subject = parse_subject(subject, self.realm)
        return self._run(actor, "admin.role.grant", Permission.MANAGE_ADMINS, subject,
                         lambda: self.accounts.grant(subject, role), fields={"role": role},
                         check=lambda: self.acl.check_grantable(actor, self.acl.roles.require(role)))

    def revoke(self, actor: Actor, subject: str, role: str) -> frozenset[str]:
        subject = parse_subject(subject, self.realm)
        return self._run(actor, "admin.role.revoke", Permission.MANAGE_ADMINS, subject,
                         lambda: self.accounts.revoke(subject, role), fields={"role": role},
                         check=lambda: self._may_manage(actor, [role]))

    def define_role(self, actor: Actor, name: str, permissions: Iterable[str]) -> Role:
        role = Role(name, frozenset(permissions))

        def define() -> Role:
            self.acl.roles.define(role)
            return role

        return self._run(actor, "admin.role.define", Permission.MANAGE_ADMINS, name, define,
                         fields={"permissions": ",".join(sorted(role.permissions))},
                         check=lambda: self.acl.check_grantable(actor, role))

    def delete_role(self, actor: Actor, name: str) -> None:
        self._run(actor, "admin.role.delete", Permission.MANAGE_ADMINS, name,
                  lambda: self.acl.roles.remove(name),
                  check=lambda: self.acl.check_grantable(actor, self.acl.roles.require(name)))

    # -- the realm ------------------------------------------------------------------

    def realm_status(self, actor: Actor) -> RealmStatus:
        return self._run(actor, "admin.status", Permission.SHOW, None,
                         lambda: read_realm_status(self.store, self.db, self.audit_log, self._clock))

    # -- web logins and onboarding (used by the web UI) -------------------------------

    def login(self, username: str, password: str, *, address: str, via: str = "web") -> AdminAccount:
        """A password login: throttled per account and address (``AdminAccounts.authenticate``), audited."""
        return self._run(Actor(username or "-", frozenset(), address, via), "admin.login", None, None,
                         lambda: self.accounts.authenticate(username, password, address))

    def logout(self, actor: Actor) -> None:
        self._run(actor, "admin.logout", None, None, lambda: None)

    def _enrollments(self) -> EnrollmentTokens:
        return EnrollmentTokens(self.store, self.realm, self.db, self._clock)

    def _pairings(self) -> Pairings:
        return Pairings(self.store, self.realm, self.db, self._clock)

    def onboarding(self, actor: Actor) -> tuple[list[OutstandingEnrollment], list[OpenPairing]]:
        """Outstanding enrollment tokens and open pairings (ids, names and times; never a token or code)."""
        return self._run(actor, "admin.onboarding.list", Permission.LIST, None,
                         lambda: (self._enrollments().outstanding(), self._pairings().outstanding()))

    def create_enrollment(self, actor: Actor, name: str | Principal, *, ttl_s: int = ENROLLMENT_TTL_S) -> str:
        """A one-time enrollment token, returned once.  Redeeming it rotates the client's key: ``rotate``."""
        p = self.principal(name)
        return self._run(actor, "admin.enrollment.create", Permission.ROTATE, p,
                         lambda: self._enrollments().create(p, ttl_s), fields={"ttl_s": ttl_s})

    def revoke_enrollment(self, actor: Actor, enrollment_id: str) -> bool:
        return self._run(actor, "admin.enrollment.revoke", Permission.ROTATE, None,
                         lambda: self._enrollments().revoke(enrollment_id), fields={"enrollment_id": enrollment_id},
                         result_fields=lambda done: {"revoked": done})

    def open_pairing(self, actor: Actor, name: str | Principal, *, ttl_s: int = PAIRING_TTL_S,
                     attempts: int = DEFAULT_ATTEMPTS) -> PairingCode:
        """Open (or replace) a PIN pairing; the code is returned once.  Completing it rotates the key: ``rotate``."""
        p = self.principal(name)
        return self._run(actor, "admin.pairing.open", Permission.ROTATE, p,
                         lambda: self._pairings().open(p, ttl_s, attempts),
                         fields={"ttl_s": ttl_s, "attempts": attempts},
                         result_fields=lambda code: {"expires_at": code.expires_at})

    def close_pairing(self, actor: Actor, name: str | Principal) -> bool:
        p = self.principal(name)
        return self._run(actor, "admin.pairing.close", Permission.ROTATE, p, lambda: self._pairings().close(p),
                         result_fields=lambda closed: {"closed": closed})
