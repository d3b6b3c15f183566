"""TGS reply (RFC 4120 §5.4.2): the service ticket, and its session key sealed under the TGT session key."""

from __future__ import annotations

from dataclasses import dataclass

from ..codes import KeyUsage, MessageType
from ..crypto import seal, unseal
from ..encoding import Reader, Writer
from ..keys import Key
from ..principal import Principal
from .kdc_rep import EncKdcRepPart
from .ticket import Ticket


@dataclass(frozen=True, slots=True)
class TgsReply:
    client: Principal
    ticket: Ticket
    enc_part: bytes

    @classmethod
    def create(cls, *, client: Principal, ticket: Ticket, tgt_session_key: Key,
               part: EncKdcRepPart, nonce: bytes) -> TgsReply:
        return cls(client, ticket, seal(tgt_session_key, KeyUsage.TGS_REP_ENC_PART, part.to_bytes(), nonce=nonce))

    def open(self, tgt_session_key: Key) -> EncKdcRepPart:
        return EncKdcRepPart.from_bytes(unseal(tgt_session_key, KeyUsage.TGS_REP_ENC_PART, self.enc_part))

    def to_bytes(self) -> bytes:
        return Writer(MessageType.TGS_REP).principal(self.client).blob(self.ticket.to_bytes()).blob(self.enc_part).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TgsReply:
        r = Reader(data, MessageType.TGS_REP)
        rep = cls(r.principal(), Ticket.from_bytes(r.blob()), r.blob())
        r.end()
        return rep
