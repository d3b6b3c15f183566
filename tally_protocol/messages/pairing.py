"""PIN pairing messages (docs/protocol.md §Pairing): SPAKE2 in two round trips.

1. ``PairStart``      device -> KDC: principal, SPAKE2 message A
2. ``PairChallenge``  KDC -> device: pairing id, SPAKE2 message B
3. ``PairFinish``     device -> KDC: pairing id, the device's key confirmation
4. ``PairReply``      KDC -> device: the KDC's key confirmation, sealed keytab

A SPAKE2 message is the side byte (``A`` or ``B``) and a 32-byte Ed25519
group element, as the ``spake2`` package writes it; the parser checks only
the length and side here, the group check happens in the SPAKE2 step.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..codes import MessageType
from ..encoding import Reader, Writer
from ..errors import MalformedMessage
from ..principal import Principal

SPAKE2_MESSAGE_SIZE = 33
PAIRING_ID_SIZE = 16
CONFIRMATION_SIZE = 32


def _spake2_message(r: Reader, side: bytes) -> bytes:
    message = r.raw(SPAKE2_MESSAGE_SIZE)
    if message[:1] != side:
        raise MalformedMessage(f"expected a SPAKE2 message from side {side.decode()}")
    return message


@dataclass(frozen=True, slots=True)
class PairStart:
    principal: Principal
    message: bytes  # SPAKE2 side A

    def to_bytes(self) -> bytes:
        return Writer(MessageType.PAIR_START).principal(self.principal).raw(self.message).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PairStart:
        r = Reader(data, MessageType.PAIR_START)
        start = cls(r.principal(), _spake2_message(r, b"A"))
        r.end()
        return start


@dataclass(frozen=True, slots=True)
class PairChallenge:
    pairing_id: bytes
    message: bytes  # SPAKE2 side B

    def to_bytes(self) -> bytes:
        return Writer(MessageType.PAIR_CHALLENGE).raw(self.pairing_id).raw(self.message).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PairChallenge:
        r = Reader(data, MessageType.PAIR_CHALLENGE)
        challenge = cls(r.raw(PAIRING_ID_SIZE), _spake2_message(r, b"B"))
        r.end()
        return challenge


@dataclass(frozen=True, slots=True)
class PairFinish:
    pairing_id: bytes
    confirmation: bytes  # HMAC under the device's confirmation key

    def to_bytes(self) -> bytes:
        return Writer(MessageType.PAIR_FINISH).raw(self.pairing_id).raw(self.confirmation).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PairFinish:
        r = Reader(data, MessageType.PAIR_FINISH)
        finish = cls(r.raw(PAIRING_ID_SIZE), r.raw(CONFIRMATION_SIZE))
        r.end()
        return finish


@dataclass(frozen=True, slots=True)
class PairReply:
    confirmation: bytes  # HMAC under the KDC's confirmation key
    sealed_keytab: bytes  # KEYTAB_DELIVERY under the pairing delivery key

    def to_bytes(self) -> bytes:
        return Writer(MessageType.PAIR_REP).raw(self.confirmation).blob(self.sealed_keytab).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PairReply:
        r = Reader(data, MessageType.PAIR_REP)
        reply = cls(r.raw(CONFIRMATION_SIZE), r.blob())
        r.end()
        return reply
