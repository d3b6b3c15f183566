"""The one path every admin action takes: permission check, action, audit record (fail closed).

``AuditedOperations`` holds what every family of operations needs; the
families (``principal_operations``, ``realm_operations``,
``account_operations``, ``onboarding_operations``) add their methods and
``operations.AdminOperations`` joins them.  Refusals are recorded too:
``denied`` for a missing permission, ``refused`` (with the error code) for
any other ``TallyError``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from tally_protocol import Random
from tally_protocol.errors import PermissionDenied, TallyError
from tally_protocol.principal import Principal
from tally_runtime.logs import audit_entry, log_audit_entry

from ..principal_db import PrincipalDB
from .accounts import AdminAccounts
from .acl import AccessControl, Actor, Permission
from .audit_log import AuditLog
from .policies import PolicyStore

T = TypeVar("T")


class AuditedOperations:
    """One realm's stores, the ACL and the audit log; ``_run`` is how every operation executes."""

    def __init__(self, store: redis.Redis, db: PrincipalDB, acl: AccessControl, accounts: AdminAccounts,
                 policies: PolicyStore, audit_log: AuditLog, clock: Callable[[], float] = time.time,
                 rng: Random = os.urandom) -> None:
        self.realm = db.realm
        self.store = store
        self.db = db
        self.acl = acl
        self.accounts = accounts
        self.policies = policies
        self.audit_log = audit_log
        self._clock = clock
        self._rng = rng

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
