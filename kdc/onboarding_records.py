"""The KDC's enrollment and pairing records, and how they rest in Redis.

Rules this module keeps:

* A record is sealed (usage ``ONBOARDING_RECORD``) under the realm's
  ticket-granting key, with its Redis key name as associated data.  Someone
  who can read Redis learns no pairing code and no token verifier; someone
  who can write Redis cannot mint a token or a pairing (either would buy a
  fresh key for any client), nor move a record to another name.
* The ticket-granting key is the KDC's online secret, as in Kerberos; the
  sealed blob names its key version, so records made before a TGS key
  rotation still open while that version is kept.  A record that does not
  open (tampered, or its key version purged) reads as absent: fail closed.
* Expiry is a value in the record, judged against the injected clock;
  Redis TTLs only collect garbage.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from tally_protocol import Random
from tally_protocol.codes import KeyUsage, MessageType
from tally_protocol.crypto import NONCE_SIZE, seal, unseal
from tally_protocol.encoding import Reader, Writer
from tally_protocol.errors import InvalidRequest, PolicyRefused, PrincipalDisabled, TallyError
from tally_protocol.keys import KEY_SIZE, Keyset
from tally_protocol.keytab import dump_keytab
from tally_protocol.principal import Principal

from .principal_db import PrincipalDB
from .records import PrincipalKind

GENERATION_SIZE = 16


def stored_bytes(value: object) -> bytes | None:
    """A Redis reply as bytes (None stays None); the clients here never decode responses."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("latin-1")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"unexpected Redis reply of type {type(value).__name__}")


class RecordSeal:
    """Seals and opens onboarding records under the realm's ticket-granting key."""

    def __init__(self, db: PrincipalDB, rng: Random) -> None:
        self._db = db
        self._rng = rng

    def seal(self, redis_key: str, plaintext: bytes) -> bytes:
        key = self._db.current_key(self._db.tgs)
        return seal(key, KeyUsage.ONBOARDING_RECORD, plaintext, nonce=self._rng(NONCE_SIZE),
                    context=redis_key.encode())

    def open(self, redis_key: str, blob: bytes) -> bytes | None:
        """The plaintext, or None when the blob does not open under any kept TGS key version."""
        try:
            return unseal(self._db.keyset(self._db.tgs), KeyUsage.ONBOARDING_RECORD, blob, context=redis_key.encode())
        except TallyError:  # IntegrityError, UnknownKeyVersion, MalformedMessage: all "no such record"
            return None


@dataclass(frozen=True, slots=True)
class EnrollmentRecord:
    """One outstanding enrollment token: whose it is, until when, and its verifier (never the token)."""

    principal: Principal
    created: int
    expires_at: int
    verifier: bytes = field(repr=False)

    def to_bytes(self) -> bytes:
        return (Writer(MessageType.ENROLLMENT_RECORD).principal(self.principal).u64(self.created)
                .u64(self.expires_at).raw(self.verifier).getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> EnrollmentRecord:
        r = Reader(data, MessageType.ENROLLMENT_RECORD)
        record = cls(r.principal(), r.u64(), r.u64(), r.raw(KEY_SIZE))
        r.end()
        return record


@dataclass(frozen=True, slots=True)
class PairingRecord:
    """One open pairing: the code (secret), its expiry and the attempts it started with.

    ``generation`` tells this pairing from a later one opened for the same name.
    """

    principal: Principal
    generation: bytes
    code: str = field(repr=False)
    created: int
    expires_at: int
    attempts: int

    def to_bytes(self) -> bytes:
        return (Writer(MessageType.PAIRING_RECORD).principal(self.principal).raw(self.generation)
                .text(self.code).u64(self.created).u64(self.expires_at).u32(self.attempts).getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> PairingRecord:
        r = Reader(data, MessageType.PAIRING_RECORD)
        record = cls(r.principal(), r.raw(GENERATION_SIZE), r.text(), r.u64(), r.u64(), r.u32())
        r.end()
        return record


@dataclass(frozen=True, slots=True)
class PairingSession:
    """A SPAKE2 run between its start and its finish (one confirmation check, then gone).

    ``live`` is false for a decoy run (no open pairing, or attempts spent):
    such a run never delivers a key, even if a guess happened to match.
    """

    principal: Principal
    generation: bytes
    live: bool
    expires_at: int
    transcript: bytes
    session_key: bytes = field(repr=False)

    def to_bytes(self) -> bytes:
        return (Writer(MessageType.PAIRING_SESSION).principal(self.principal).raw(self.generation)
                .u8(int(self.live)).u64(self.expires_at).blob(self.transcript).raw(self.session_key).getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> PairingSession:
        r = Reader(data, MessageType.PAIRING_SESSION)
        session = cls(r.principal(), r.raw(GENERATION_SIZE), r.u8() == 1, r.u64(), r.blob(), r.raw(KEY_SIZE))
        r.end()
        return session


# -- who may onboard -------------------------------------------------------------


def require_onboardable(db: PrincipalDB, principal: Principal) -> None:
    """Enrollment and pairing are for enabled client principals with random keys.

    Services are left out on purpose: onboarding rotates the key, and a new
    service key must reach every replica (``rotate --keytab`` / ``export-keytab``),
    not one device.  Password principals log in with their password; the
    ticket-granting key never leaves the KDC.
    """
    record = db.get(principal)  # NotFound
    if record.kind is not PrincipalKind.CLIENT:
        raise PolicyRefused(f"{record.name} is a {record.kind} principal; only clients enroll or pair "
                            "(services get keytabs: tally admin export-keytab)")
    if record.is_password:
        raise PolicyRefused(f"{record.name} logs in with a password; it cannot enroll or pair")
    if record.disabled:
        raise PrincipalDisabled(f"{record.name} is disabled; enable it first")


def rotate_for_delivery(db: PrincipalDB, principal: Principal) -> tuple[bytes, int]:
    """Give ``principal`` a new random key version; the keytab to deliver and its kvno.

    Rotating (rather than handing out the existing key) means a device that
    onboards holds a key nobody else ever saw, and any older key file stops working.
    """
    keyset = db.rotate(principal)
    current = Keyset([keyset.current])
    return dump_keytab(principal, current), current.current.kvno


class OnboardingStore:
    """What enrollment tokens and pairings share: one realm's store, clock, randomness and record seal."""

    def __init__(self, redis_client: redis.Redis, realm: str, db: PrincipalDB,
                 clock: Callable[[], float] = time.time, rng: Random = os.urandom) -> None:
        self._redis = redis_client
        self.realm = db.realm
        if Principal.tgs(realm).realm != self.realm:
            raise InvalidRequest(f"the principal database is for {self.realm}, not {realm}")
        self._db = db
        self._clock = clock
        self._rng = rng
        self._seal = RecordSeal(db, rng)
