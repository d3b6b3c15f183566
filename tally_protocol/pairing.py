"""PIN pairing codes and the pure SPAKE2 pairing exchange (docs/protocol.md §Pairing).

Rules this module keeps:

* A code is 8 decimal digits, uniform over 10^8, drawn by rejection sampling
  from the caller's ``rng`` (no modulo bias).
* The PAKE is SPAKE2 (Abdalla-Pointcheval) from the maintained ``spake2``
  package: pure Python, no I/O; its only randomness is the ``entropy_f`` we
  pass (the caller's ``rng``).  Device = side A, KDC = side B.  The SPAKE2
  identities bind the exchange to the realm and the principal, so a
  transcript for one name or realm is worthless for another.
* Neither side reveals anything keyed by the shared key before the device
  has proved it: the device's confirmation goes first, the KDC answers with
  its own confirmation and the keytab only after checking it.  Each SPAKE2
  run lets an active attacker test one guess of the code, no more.
* Keys for the confirmations and the delivery are separate HKDF outputs of
  the SPAKE2 key (one ``KeyUsage`` each) over the full transcript.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from spake2 import SPAKE2_A, SPAKE2_B, SPAKEError
from spake2.ed25519_basic import NotOnCurve

from . import Random
from .codes import KeyUsage
from .crypto import derive_onboarding_key, equal, mac, seal, unseal
from .encoding import Writer
from .errors import IntegrityError, MalformedMessage, MutualAuthFailed
from .keys import Key, Keyset
from .keytab import load_keytab
from .messages.pairing import PairChallenge, PairFinish, PairReply, PairStart
from .principal import Principal

CODE_DIGITS = 8
_CODE_SPACE = 10**CODE_DIGITS
_SAMPLE_LIMIT = (2**32 // _CODE_SPACE) * _CODE_SPACE  # largest multiple of 10^8 below 2^32
_CODE = re.compile(r"[0-9]{8}")
_SEPARATORS = re.compile(r"[\s-]+")


def new_pairing_code(rng: Random) -> str:
    """Eight uniform decimal digits."""
    while True:
        n = int.from_bytes(rng(4), "big")
        if n < _SAMPLE_LIMIT:  # rejection sampling: every code equally likely
            return f"{n % _CODE_SPACE:08d}"


def format_code(code: str) -> str:
    """``1234 5678``, the way a person reads it out."""
    return f"{code[:4]} {code[4:]}"


def parse_code(text: str) -> str:
    """The 8 digits of a typed code (spaces and hyphens ignored); ``MalformedMessage`` otherwise."""
    if not isinstance(text, str):
        raise MalformedMessage("a pairing code is text")
    compact = _SEPARATORS.sub("", text)
    if not _CODE.fullmatch(compact):
        raise MalformedMessage("a pairing code is 8 digits, e.g. 1234 5678")
    return compact


def device_identity(principal: Principal) -> bytes:
    """SPAKE2 identity A: the principal being paired, in its realm."""
    return Writer().text("tallystick-v1 pairing device").principal(principal).getvalue()


def kdc_identity(realm: str) -> bytes:
    """SPAKE2 identity B: the realm's KDC (named by its ticket-granting principal)."""
    return Writer().text("tallystick-v1 pairing kdc").principal(Principal.tgs(realm)).getvalue()


def _finish_spake2(spake: Any, inbound: bytes) -> bytes:
    try:
        key = spake.finish(inbound)
    except (SPAKEError, NotOnCurve, ValueError) as e:  # not a group element, or a reflected message
        raise MalformedMessage("invalid SPAKE2 message") from e
    assert isinstance(key, bytes)
    return key


def _transcript(start: PairStart, challenge: PairChallenge) -> bytes:
    return start.to_bytes() + challenge.to_bytes()


def _confirmation(session_key: bytes, usage: KeyUsage, transcript: bytes) -> bytes:
    return mac(derive_onboarding_key(session_key, usage, transcript), transcript)


def _delivery_key(session_key: bytes, transcript: bytes) -> Key:
    return Key(derive_onboarding_key(session_key, KeyUsage.PAIRING_DELIVERY, transcript), 0)


# -- device side ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairingExchange:
    """The device's state after ``start_pairing``; its SPAKE2 object is used once."""

    start: PairStart
    start_bytes: bytes
    spake: Any = field(repr=False)


@dataclass(frozen=True, slots=True)
class PairingConfirmed:
    """The device's state after ``confirm_pairing``: what it needs to check the KDC's reply."""

    principal: Principal
    finish: PairFinish
    finish_bytes: bytes
    transcript: bytes
    session_key: bytes = field(repr=False)


def start_pairing(principal: Principal, code: str, rng: Random) -> PairingExchange:
    spake = SPAKE2_A(parse_code(code).encode("ascii"), idA=device_identity(principal),
                     idB=kdc_identity(principal.realm), entropy_f=rng)
    start = PairStart(principal, spake.start())
    return PairingExchange(start, start.to_bytes(), spake)


def confirm_pairing(pending: PairingExchange, challenge_bytes: bytes) -> PairingConfirmed:
    """The device's key confirmation for the KDC's challenge."""
    challenge = PairChallenge.from_bytes(challenge_bytes)
    session_key = _finish_spake2(pending.spake, challenge.message)
    transcript = _transcript(pending.start, challenge)
    finish = PairFinish(challenge.pairing_id,
                        _confirmation(session_key, KeyUsage.PAIRING_CONFIRM_DEVICE, transcript))
    return PairingConfirmed(pending.start.principal, finish, finish.to_bytes(), transcript, session_key)


def finish_pairing(confirmed: PairingConfirmed, reply_bytes: bytes) -> tuple[Principal, Keyset]:
    """Check the KDC's confirmation (``MutualAuthFailed``) and open the keytab it sealed."""
    reply = PairReply.from_bytes(reply_bytes)
    expected = _confirmation(confirmed.session_key, KeyUsage.PAIRING_CONFIRM_KDC, confirmed.transcript)
    if not equal(reply.confirmation, expected):
        raise MutualAuthFailed("the KDC did not prove it knows the pairing code")
    keytab = unseal(_delivery_key(confirmed.session_key, confirmed.transcript), KeyUsage.KEYTAB_DELIVERY,
                    reply.sealed_keytab, context=confirmed.transcript)
    principal, keyset = load_keytab(keytab)
    if principal != confirmed.principal:
        raise MutualAuthFailed(f"the KDC delivered a key for {principal}, not {confirmed.principal}")
    return principal, keyset


# -- KDC side ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairingResponse:
    """The KDC's answer to a start, and what it keeps for the finish."""

    challenge: PairChallenge
    transcript: bytes
    session_key: bytes = field(repr=False)


def answer_pairing_start(start: PairStart, code: str, *, realm: str, pairing_id: bytes,
                         rng: Random) -> PairingResponse:
    """Run SPAKE2 side B against the device's message with ``code`` (a decoy code when none is open)."""
    spake = SPAKE2_B(parse_code(code).encode("ascii"), idA=device_identity(start.principal),
                     idB=kdc_identity(realm), entropy_f=rng)
    outbound = spake.start()
    session_key = _finish_spake2(spake, start.message)
    challenge = PairChallenge(pairing_id, outbound)
    return PairingResponse(challenge, _transcript(start, challenge), session_key)


def check_device_confirmation(session_key: bytes, transcript: bytes, finish: PairFinish) -> None:
    """``IntegrityError`` unless the device derived the same SPAKE2 key (knew the code); constant time."""
    if not equal(finish.confirmation, _confirmation(session_key, KeyUsage.PAIRING_CONFIRM_DEVICE, transcript)):
        raise IntegrityError()


def seal_pairing_reply(session_key: bytes, transcript: bytes, keytab: bytes, *, nonce: bytes) -> PairReply:
    """The KDC's confirmation and the keytab sealed under the pairing's delivery key."""
    return PairReply(_confirmation(session_key, KeyUsage.PAIRING_CONFIRM_KDC, transcript),
                     seal(_delivery_key(session_key, transcript), KeyUsage.KEYTAB_DELIVERY, keytab, nonce=nonce,
                          context=transcript))
