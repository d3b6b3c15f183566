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

The families of operations live in their own modules (principals, the
realm's policies/audit/status, accounts and roles, onboarding) on the one
``AuditedOperations._run``; this class joins them.
"""

from __future__ import annotations

from .account_operations import AccountOperations
from .onboarding_operations import OnboardingOperations
from .principal_operations import KINDS, MAX_FILTER_SCAN, MAX_PAGE, STATUSES, PrincipalOperations
from .realm_operations import RealmOperations

__all__ = ["KINDS", "MAX_FILTER_SCAN", "MAX_PAGE", "STATUSES", "AdminOperations"]


class AdminOperations(PrincipalOperations, RealmOperations, AccountOperations, OnboardingOperations):
    """One realm's admin operations; ``actor`` first in every call."""
