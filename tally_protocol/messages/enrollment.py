"""Enrollment messages (docs/protocol.md §Enrollment): a device redeems a one-time token.

``EnrollRequest`` carries the token's public id, the device's ephemeral
X25519 key and a proof (an HMAC under a key only the token yields) over
both, so the token itself never travels and a captured request cannot be
re-pointed at another device key.  ``EnrollReply`` carries the KDC's
ephemeral X25519 key and a keytab sealed under a key derived from the DH
secret *and* the token.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..codes import MessageType
from ..crypto import X25519_SIZE
from ..encoding import Reader, Writer

TOKEN_ID_SIZE = 16
PROOF_SIZE = 32


@dataclass(frozen=True, slots=True)
class EnrollRequest:
    token_id: bytes
    device_public: bytes  # ephemeral X25519
    proof: bytes

    def body_bytes(self) -> bytes:
        """What the proof covers."""
        return Writer().raw(self.token_id).raw(self.device_public).getvalue()

    def to_bytes(self) -> bytes:
        return Writer(MessageType.ENROLL_REQ).raw(self.body_bytes()).raw(self.proof).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> EnrollRequest:
        r = Reader(data, MessageType.ENROLL_REQ)
        req = cls(r.raw(TOKEN_ID_SIZE), r.raw(X25519_SIZE), r.raw(PROOF_SIZE))
        r.end()
        return req


@dataclass(frozen=True, slots=True)
class EnrollReply:
    kdc_public: bytes  # ephemeral X25519
    sealed_keytab: bytes  # KEYTAB_DELIVERY under the delivery key

    def to_bytes(self) -> bytes:
        return Writer(MessageType.ENROLL_REP).raw(self.kdc_public).blob(self.sealed_keytab).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> EnrollReply:
        r = Reader(data, MessageType.ENROLL_REP)
        rep = cls(r.raw(X25519_SIZE), r.blob())
        r.end()
        return rep
