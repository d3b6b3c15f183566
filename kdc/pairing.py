"""PIN pairing: an admin opens a pairing with a short code, a device runs SPAKE2 with it.

Rules this module keeps:

* The attempts counter is its own Redis key, decremented with one atomic
  ``DECR`` at every start *before* the KDC answers: concurrent starts each
  spend exactly one attempt, and a start past the last attempt closes the
  pairing (audited ``exhausted``).  Each start is one SPAKE2 run, and a run
  lets an attacker test one guess: the counter bounds the guesses.
* A run's state (the SPAKE2 key and transcript) is a sealed session record,
  read and deleted at once (``GETDEL``) by the finish: one confirmation check
  per run, so one run cannot test two codes.
* Wrong code, unknown name, closed or exhausted pairing: the start always
  answers with a SPAKE2 message (a decoy run with a random code when there
  is no open pairing) and the finish always fails with ``PAIRING_FAILED``,
  after the same store round trips.  Only the audit log tells them apart.
* Success closes the pairing only if it is still the one the run started
  under (``WATCH`` on the record, generation compared), then rotates the
  principal's key and seals the keytab under the SPAKE2 key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

import redis

from tally_protocol.errors import IntegrityError, InvalidRequest, NotFound, PairingFailed, TallyError
from tally_protocol.messages.pairing import PAIRING_ID_SIZE, PairChallenge, PairFinish, PairReply, PairStart
from tally_protocol.pairing import (
    answer_pairing_start,
    check_device_confirmation,
    format_code,
    new_pairing_code,
    seal_pairing_reply,
)
from tally_protocol.principal import Principal
from tally_runtime.logs import audit
from tally_runtime.redis_store import store_errors

from .onboarding_records import (
    GENERATION_SIZE,
    OnboardingStore,
    PairingRecord,
    PairingSession,
    require_onboardable,
    rotate_for_delivery,
    stored_bytes,
)

DEFAULT_TTL_S = 600
MAX_TTL_S = 86400
DEFAULT_ATTEMPTS = 5
MAX_ATTEMPTS = 20
#: A device answers the challenge at once; a run left open longer is dropped.
SESSION_TTL_S = 120
_NONCE = 12


@dataclass(frozen=True, slots=True)
class PairingCode:
    """What the admin reads out to the user: shown once, never stored in clear."""

    code: str = field(repr=False)
    expires_at: int
    attempts: int

    @property
    def display(self) -> str:
        return format_code(self.code)


@dataclass(frozen=True, slots=True)
class OpenPairing:
    """An open pairing as an admin page lists it: never the code."""

    principal: Principal
    created: int
    expires_at: int
    attempts_left: int


class Pairings(OnboardingStore):
    """Open pairings of one realm and the KDC's side of the SPAKE2 runs."""


    # -- keys ---------------------------------------------------------------

    # The record and its attempts counter are written and deleted together: one hash tag per principal
    # keeps them in one Redis Cluster slot while pairings of different principals spread over the slots.
    def _record_key(self, p: Principal) -> str:
        return f"{self._pairing_prefix}{p.name}}}"

    def _left_key(self, p: Principal) -> str:
        return self._record_key(p) + ":left"

    @property
    def _pairing_prefix(self) -> str:
        return f"tally:pair:{{{self.realm}:"

    def _session_key(self, pairing_id: bytes) -> str:
        return f"tally:pairsess:{self.realm}:{pairing_id.hex()}"  # one key per run, no tag

    # -- admin side -----------------------------------------------------------

    def open(self, principal: Principal, ttl_s: int = DEFAULT_TTL_S, attempts: int = DEFAULT_ATTEMPTS) -> PairingCode:
        """Open (or replace) the pairing of ``principal``; the code is returned, never stored in clear."""
        if not 1 <= ttl_s <= MAX_TTL_S:
            raise InvalidRequest(f"a pairing stays open between 1 and {MAX_TTL_S} seconds")
        if not 1 <= attempts <= MAX_ATTEMPTS:
            raise InvalidRequest(f"a pairing allows between 1 and {MAX_ATTEMPTS} attempts")
        p = self._db.principal(principal)
        require_onboardable(self._db, p)
        now = int(self._clock())
        record = PairingRecord(p, self._rng(GENERATION_SIZE), new_pairing_code(self._rng), now, now + ttl_s,
                               attempts)
        record_key = self._record_key(p)
        with store_errors():
            pipe = self._redis.pipeline(transaction=True)
            pipe.set(record_key, self._seal.seal(record_key, record.to_bytes()), ex=ttl_s)
            pipe.set(self._left_key(p), attempts, ex=ttl_s)
            pipe.execute()
        audit("pairing.open", "success", principal=str(p), expires_at=record.expires_at, attempts=attempts)
        return PairingCode(record.code, record.expires_at, attempts)

    def close(self, principal: Principal, *, reason: str = "cancelled") -> bool:
        """Close the pairing of ``principal`` if one is open; True when one was."""
        p = self._db.principal(principal)
        with store_errors():
            removed = int(self._redis.delete(self._record_key(p), self._left_key(p)))
        if removed:
            audit("pairing.close", reason, principal=str(p))
        return removed > 0

    def outstanding(self) -> list[OpenPairing]:
        """Open, unexpired pairings of the realm, soonest expiry first (a SCAN: for admin pages)."""
        prefix = self._pairing_prefix
        with store_errors():
            keys = [stored_bytes(k) or b"" for k in self._redis.scan_iter(match=prefix + "*", count=500)]
        found: list[OpenPairing] = []
        for key in keys:
            rest = key.decode("ascii")[len(prefix):]  # "<name>}" or "<name>}:left" (no name holds a brace)
            if not rest.endswith("}"):
                continue
            p = Principal(rest[:-1], self.realm)
            record = self._live_record(p)
            with store_errors():
                left = stored_bytes(self._redis.get(self._left_key(p)))
            if record is not None and left is not None:
                found.append(OpenPairing(p, record.created, record.expires_at, max(0, int(left))))
        return sorted(found, key=lambda o: (o.expires_at, o.principal.name))

    def _live_record(self, p: Principal) -> PairingRecord | None:
        key = self._record_key(p)
        with store_errors():
            stored = stored_bytes(self._redis.get(key))
        plain = None if stored is None else self._seal.open(key, stored)
        if plain is None:
            return None
        record = PairingRecord.from_bytes(plain)
        if record.principal != p or self._clock() >= record.expires_at:
            return None
        return record

    # -- device side: start -------------------------------------------------------

    def start(self, start: PairStart, *, address: str = "unknown") -> PairChallenge:
        """Spend one attempt and answer the device's SPAKE2 message (a decoy run if no pairing is open)."""
        p = start.principal
        seen: dict[str, Any] = {"principal": str(p), "address": address}
        record = self._live_record(p) if p.realm == self.realm else None
        left = -1
        with store_errors():
            if record is not None:
                left = int(self._redis.decr(self._left_key(p)))  # atomic: one attempt per start, before answering
            else:
                self._redis.exists(self._left_key(p))  # the same store round trips as a counted start
        if record is not None and left < 0:
            self.close(p, reason="exhausted")
            record = None
        code = record.code if record is not None else new_pairing_code(self._rng)
        pairing_id = self._rng(PAIRING_ID_SIZE)
        response = answer_pairing_start(start, code, realm=self.realm, pairing_id=pairing_id, rng=self._rng)
        session = PairingSession(p, record.generation if record is not None else bytes(GENERATION_SIZE),
                                 record is not None, int(self._clock()) + SESSION_TTL_S, response.transcript,
                                 response.session_key)
        key = self._session_key(pairing_id)
        with store_errors():
            self._redis.set(key, self._seal.seal(key, session.to_bytes()), ex=SESSION_TTL_S)
        if record is not None:
            audit("pairing.start", "attempt", attempts_left=left, **seen)
        else:
            audit("pairing.start", "refused", reason="no_open_pairing", **seen)
        return response.challenge

    # -- device side: finish -------------------------------------------------------

    def finish(self, finish: PairFinish, *, address: str = "unknown") -> PairReply:
        """Check the device's confirmation; on success close the pairing, rotate and deliver the key."""
        seen: dict[str, Any] = {"address": address}
        key = self._session_key(finish.pairing_id)
        with store_errors():
            stored = stored_bytes(self._redis.getdel(key))  # one confirmation check per SPAKE2 run
        plain = None if stored is None else self._seal.open(key, stored)
        if plain is None:
            self._fail("unknown_run", seen)
        session = PairingSession.from_bytes(plain)
        p = session.principal
        seen["principal"] = str(p)
        if self._clock() >= session.expires_at:
            self._fail("run_expired", seen)
        try:
            check_device_confirmation(session.session_key, session.transcript, finish)
        except IntegrityError:
            self._after_wrong_code(session)
            self._fail("wrong_code", seen)
        if not session.live:  # a decoy run never delivers, even for a lucky guess of its random code
            self._fail("no_open_pairing", seen)
        if not self._close_if_current(p, session.generation):
            self._fail("closed", seen)
        try:
            require_onboardable(self._db, p)
            keytab, kvno = rotate_for_delivery(self._db, p)
        except NotFound:
            self._fail("principal_gone", seen)
        except TallyError as err:  # disabled meanwhile: said plainly, the device has proved the code
            audit("pairing.finish", "refused", reason=str(err.code), **seen)
            raise
        reply = seal_pairing_reply(session.session_key, session.transcript, keytab, nonce=self._rng(_NONCE))
        audit("pairing.finish", "success", kvno=kvno, **seen)
        return reply

    def _after_wrong_code(self, session: PairingSession) -> None:
        """A wrong guess on the last attempt closes the pairing (the same store read either way)."""
        p = session.principal
        with store_errors():
            left = self._redis.get(self._left_key(p)) if p.realm == self.realm else None
        if session.live and left is not None and int(left) <= 0 and self._close_if_current(p, session.generation):
            audit("pairing.close", "exhausted", principal=str(p))

    def _close_if_current(self, p: Principal, generation: bytes) -> bool:
        """Delete the pairing if it is still the open one of ``generation``; False if it changed or closed."""
        record_key = self._record_key(p)
        pipe: Any
        with store_errors(), self._redis.pipeline(transaction=True) as pipe:  # WATCH needs it on a Cluster
            try:
                pipe.watch(record_key)
                record = self._live_record(p)
                if record is None or record.generation != generation:
                    pipe.unwatch()
                    return False
                pipe.multi()
                pipe.delete(record_key, self._left_key(p))
                pipe.execute()
                return True
            except redis.WatchError:  # changed under us: a concurrent finish or a new pairing won
                return False

    @staticmethod
    def _fail(reason: str, seen: dict[str, Any]) -> NoReturn:
        audit("pairing.finish", "refused", reason=reason, **seen)
        raise PairingFailed()
