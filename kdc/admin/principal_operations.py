"""Admin operations on principals: list, show, add, disable, enable, rotate, delete, export.

Listing stays fast at any realm size: pages walk the principal index with
``ZRANGEBYLEX`` from a cursor (O(log N + page)).  Kind and status filters
have no index of their own: a filtered page reads the index in batches and
keeps what matches, at most ``MAX_FILTER_SCAN`` records per call, and may
come back short with a cursor to continue from.
"""

from __future__ import annotations

from typing import Any

from tally_protocol.errors import InvalidRequest, PolicyRefused
from tally_protocol.keys import Keyset
from tally_protocol.principal import Principal

from ..records import PrincipalKind, PrincipalRecord
from .acl import ADMIN_SERVICE_NAME, Actor, Permission, unextractable
from .audited import AuditedOperations
from .policies import PolicyOverride
from .results import Issued, PrincipalPage, PrincipalSummary

MAX_PAGE = 1000
MAX_FILTER_SCAN = 5000
_SCAN_BATCH = 500
KINDS = frozenset(str(k) for k in PrincipalKind)
STATUSES = frozenset({"enabled", "disabled"})


class PrincipalOperations(AuditedOperations):
    """Principals: everything but their keys, which leave only as the rules of ``acl`` allow."""

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
        applied: dict[str, Any] = {}

        def rotate() -> Issued:
            before = self.db.get(p)
            # No delay named: the realm's default (Heimdal's new_service_key_delay, services only).
            delay = self.db.key_policy.default_delay_s(before.kind) if delay_s is None else delay_s
            keyset = self.db.rotate(p, password=password, delay_s=delay)
            applied["delay_s"] = delay or None
            summary = PrincipalSummary.of(self.db.get(p))
            if unextractable(p) or password is not None:
                return Issued(summary)
            if before.kind is PrincipalKind.SERVICE and Permission.EXTRACT_KEYS not in self.acl.permissions(actor):
                keyset = Keyset(k for k in keyset if k.kvno > before.current.kvno)
            return Issued(summary, keyset)

        return self._run(actor, "admin.principal.rotate", Permission.ROTATE, p, rotate,
                         fields={"source": "password" if password is not None else None},
                         result_fields=lambda r: {"kvno": r.principal.current_kvno, **applied})

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
