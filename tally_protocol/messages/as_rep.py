"""AS reply (RFC 4120 §5.4.2) with the KDC's ephemeral X25519 key.

The encrypted part is sealed under ``derive_reply_key(client key, DH secret,
transcript)`` where the transcript is the full AS request plus the KDC's
public key: forward secret, and bound to this exact request.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..codes import KeyUsage, MessageType
from ..crypto import X25519_SIZE, derive_reply_key, seal, unseal
from ..encoding import Reader, Writer
from ..keys import Key
from ..principal import Principal
from .kdc_rep import EncKdcRepPart
from .ticket import Ticket


def as_transcript(as_req_bytes: bytes, kdc_public: bytes) -> bytes:
    return as_req_bytes + kdc_public


@dataclass(frozen=True, slots=True)
class AsReply:
    client: Principal
    ticket: Ticket
    kdc_public: bytes
    enc_part: bytes

    @classmethod
    def create(cls, *, client: Principal, ticket: Ticket, kdc_public: bytes, client_key: Key,
               shared_secret: bytes, as_req_bytes: bytes, part: EncKdcRepPart, nonce: bytes) -> AsReply:
        key = derive_reply_key(client_key, shared_secret, as_transcript(as_req_bytes, kdc_public))
        return cls(client, ticket, kdc_public, seal(key, KeyUsage.AS_REP_ENC_PART, part.to_bytes(), nonce=nonce))

    def open(self, client_key: Key, shared_secret: bytes, as_req_bytes: bytes) -> EncKdcRepPart:
        key = derive_reply_key(client_key, shared_secret, as_transcript(as_req_bytes, self.kdc_public))
        return EncKdcRepPart.from_bytes(unseal(key, KeyUsage.AS_REP_ENC_PART, self.enc_part))

    def to_bytes(self) -> bytes:
        return (
            Writer(MessageType.AS_REP).principal(self.client).blob(self.ticket.to_bytes())
            .raw(self.kdc_public).blob(self.enc_part).getvalue()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> AsReply:
        r = Reader(data, MessageType.AS_REP)
        rep = cls(r.principal(), Ticket.from_bytes(r.blob()), r.raw(X25519_SIZE), r.blob())
        r.end()
        return rep
