"""Admin side of onboarding: enrollment tokens and PIN pairings, checked and audited like every admin action.

Completing either gives the device a new key for the principal, so both need
``rotate``.  A token or code is returned once and never recorded.
"""

from __future__ import annotations

from tally_protocol.principal import Principal

from ..enrollment import DEFAULT_TTL_S as ENROLLMENT_TTL_S
from ..enrollment import EnrollmentTokens, OutstandingEnrollment
from ..pairing import DEFAULT_ATTEMPTS, OpenPairing, PairingCode, Pairings
from ..pairing import DEFAULT_TTL_S as PAIRING_TTL_S
from .acl import Actor, Permission
from .audited import AuditedOperations


class OnboardingOperations(AuditedOperations):
    """Enrollment tokens and pairings of the realm."""

    def _enrollments(self) -> EnrollmentTokens:
        return EnrollmentTokens(self.store, self.realm, self.db, self._clock, self._rng)

    def _pairings(self) -> Pairings:
        return Pairings(self.store, self.realm, self.db, self._clock, self._rng)

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
