"""One-time enrollment tokens: create (admin), redeem (device), in Redis.

Rules this module keeps:

* ``create`` returns the token once; the store keeps only its public id (in
  the key name) and a sealed record holding the verifier (``onboarding_records``).
* Single use is one atomic command on one key, so it holds on a Redis
  Cluster and needs no Lua: ``SET key "used" XX GET`` swaps the record for
  a tombstone and returns what was there.  Of two concurrent redemptions
  exactly one gets the record back.
* The tombstone stays for ``TOMBSTONE_S``: a later use of the same token is
  audited as ``possible_interception`` (somebody else redeemed it first, as
  Vault's response wrapping makes interception visible).  Unknown, expired,
  used and badly proved tokens all get the same ``ENROLLMENT_INVALID``;
  only the audit log tells them apart.
* The token is checked (proof, expiry, device key) before it is spent, and
  spent before the principal's key is rotated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

import redis

from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.enrollment import (
    TOKEN_SIZE,
    TokenSecrets,
    check_enrollment_proof,
    format_token,
    prepare_enrollment_reply,
)
from tally_protocol.errors import EnrollmentInvalid, IntegrityError, InvalidRequest, NotFound, TallyError
from tally_protocol.keys import KEY_SIZE
from tally_protocol.messages.enrollment import EnrollReply, EnrollRequest
from tally_protocol.principal import Principal
from tally_runtime.logs import audit
from tally_runtime.redis_store import store_errors

from .onboarding_records import (
    EnrollmentRecord,
    OnboardingStore,
    require_onboardable,
    rotate_for_delivery,
    stored_bytes,
)

DEFAULT_TTL_S = 600
MAX_TTL_S = 7 * 86400
#: How long a spent token is remembered, so its reuse is seen as a possible interception.
TOMBSTONE_S = 7 * 86400
#: Tombstone prefixes; a sealed record starts with the protocol version byte, never with these.
USED = b"used:"
EXPIRED = b"expired:"
REVOKED = b"revoked:"
_NONCE = 12


def enrollment_id(token_id: bytes) -> str:
    """The id shown in audit events and admin listings: public, and no use without the token."""
    return b64encode(token_id)


@dataclass(frozen=True, slots=True)
class OutstandingEnrollment:
    """An unspent, unexpired token as an admin page lists it: never the token itself."""

    enrollment_id: str
    principal: Principal
    created: int
    expires_at: int


class EnrollmentTokens(OnboardingStore):
    """Enrollment tokens of one realm."""


    def _key(self, token_id: bytes) -> str:
        # One key per token, no hash tag: every operation is on one key, so tokens spread over the slots.
        return f"tally:{self.realm}:enroll:{token_id.hex()}"

    def create(self, principal: Principal, ttl_s: int = DEFAULT_TTL_S) -> str:
        """A new single-use token for ``principal``, valid ``ttl_s`` seconds; shown to the caller only."""
        if not 1 <= ttl_s <= MAX_TTL_S:
            raise InvalidRequest(f"an enrollment token lives between 1 and {MAX_TTL_S} seconds")
        p = self._db.principal(principal)
        require_onboardable(self._db, p)
        token = self._rng(TOKEN_SIZE)
        secrets = TokenSecrets.derive(token)
        now = int(self._clock())
        record = EnrollmentRecord(p, now, now + ttl_s, secrets.verifier)
        key = self._key(secrets.token_id)
        with store_errors():
            created = self._redis.set(key, self._seal.seal(key, record.to_bytes()), nx=True,
                                      ex=ttl_s + TOMBSTONE_S)
        if not created:  # 128-bit id collision: a broken rng, never chance
            raise InvalidRequest("enrollment id collision; the random source is broken")
        audit("enrollment.create", "success", principal=str(p), enrollment_id=enrollment_id(secrets.token_id),
              expires_at=record.expires_at)
        return format_token(token)

    def outstanding(self) -> list[OutstandingEnrollment]:
        """Unspent, unexpired tokens of the realm, soonest expiry first (a SCAN: for admin pages, not hot paths)."""
        now = self._clock()
        found: list[OutstandingEnrollment] = []
        prefix = self._key(b"")
        with store_errors():
            keys = [stored_bytes(k) or b"" for k in self._redis.scan_iter(match=prefix + "*", count=500)]
            pipe = self._redis.pipeline(transaction=False)  # GETs, grouped per node on a Cluster (MGET is one slot)
            for key in keys:
                pipe.get(key)
            values = [stored_bytes(v) for v in pipe.execute()] if keys else []
        for key, stored in zip(keys, values, strict=True):
            if stored is None or stored.startswith((USED, EXPIRED, REVOKED)):
                continue
            plain = self._seal.open(key.decode("ascii"), stored)
            if plain is None:
                continue
            record = EnrollmentRecord.from_bytes(plain)
            if now < record.expires_at:
                token_id = bytes.fromhex(key.decode("ascii")[len(prefix):])
                found.append(OutstandingEnrollment(enrollment_id(token_id), record.principal, record.created,
                                                   record.expires_at))
        return sorted(found, key=lambda e: (e.expires_at, e.enrollment_id))

    def revoke(self, enrollment: str) -> bool:
        """Void an unspent token by its ``enrollment_id``; False if there is none (or it was spent)."""
        try:
            token_id = b64decode(enrollment)
        except TallyError:
            return False
        key = self._key(token_id)
        pipe: Any
        with store_errors(), self._redis.pipeline(transaction=True) as pipe:  # WATCH needs it on a Cluster
            try:
                pipe.watch(key)
                stored = stored_bytes(pipe.get(key))
                plain = None if stored is None else self._seal.open(key, stored)
                if plain is None:  # absent, a tombstone (kept: a later use must still be flagged) or unreadable
                    pipe.unwatch()
                    return False
                principal = EnrollmentRecord.from_bytes(plain).principal
                pipe.multi()
                pipe.set(key, REVOKED + str(principal).encode(), xx=True, keepttl=True)
                pipe.execute()
            except redis.WatchError:  # redeemed at this very moment
                return False
        audit("enrollment.revoke", "success", principal=str(principal), enrollment_id=enrollment)
        return True

    def redeem(self, request: EnrollRequest, *, address: str = "unknown") -> EnrollReply:
        """Spend the token of ``request``, rotate its principal's key and seal the keytab for the device."""
        seen: dict[str, Any] = {"enrollment_id": enrollment_id(request.token_id), "address": address}
        key = self._key(request.token_id)
        with store_errors():
            stored = stored_bytes(self._redis.get(key))
        if stored is None:
            self._refuse("refused", "unknown", seen)
        if stored.startswith(USED):  # the tombstone names whose key the first redemption received
            seen["principal"] = stored[len(USED):].decode("ascii", "replace")
            self._refuse("possible_interception", "already_used", seen)
        for tombstone, reason in ((EXPIRED, "expired"), (REVOKED, "revoked")):
            if stored.startswith(tombstone):
                seen["principal"] = stored[len(tombstone):].decode("ascii", "replace")
                self._refuse("refused", reason, seen)
        plain = self._seal.open(key, stored)
        if plain is None:
            self._refuse("refused", "unreadable", seen)
        record = EnrollmentRecord.from_bytes(plain)
        seen["principal"] = str(record.principal)
        try:
            check_enrollment_proof(request, record.verifier)
        except IntegrityError:
            self._refuse("refused", "bad_proof", seen)
        if self._clock() >= record.expires_at:
            with store_errors():
                self._redis.set(key, EXPIRED + seen["principal"].encode(), xx=True, keepttl=True)
            self._refuse("refused", "expired", seen)
        try:
            sealer = prepare_enrollment_reply(request, record.verifier, kdc_private=self._rng(KEY_SIZE))
        except TallyError as err:  # an unusable device key: refused while the token is unspent
            self._refuse("refused", str(err.code), seen)
        with store_errors():
            previous = stored_bytes(self._redis.set(key, USED + seen["principal"].encode(), xx=True, get=True,
                                                    ex=TOMBSTONE_S))
        if previous != stored:
            # Another request spent it between our read and our swap.
            self._refuse("possible_interception", "already_used", seen)
        try:
            require_onboardable(self._db, record.principal)
            keytab, kvno = rotate_for_delivery(self._db, record.principal)
        except NotFound:
            self._refuse("refused", "principal_gone", seen)
        except TallyError as err:
            audit("enrollment.redeem", "refused", reason=str(err.code), **seen)
            raise
        reply = sealer.seal(keytab, nonce=self._rng(_NONCE))
        audit("enrollment.redeem", "success", kvno=kvno, **seen)
        return reply

    @staticmethod
    def _refuse(outcome: str, reason: str, seen: dict[str, Any]) -> NoReturn:
        audit("enrollment.redeem", outcome, reason=reason, **seen)
        raise EnrollmentInvalid()
