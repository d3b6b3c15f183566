"""EncKdcRepPart (RFC 4120 §5.4.2): what the client learns about its new ticket.

Shared by the AS reply (sealed under the forward-secret reply key) and the
TGS reply (sealed under the TGT's session key).  ``nonce`` echoes the
request's, so a reply cannot be replayed to another request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..codes import MessageType, TicketFlags
from ..encoding import Reader, Writer
from ..keys import KEY_SIZE
from ..principal import Principal
from .authenticator import NONCE_SIZE


@dataclass(frozen=True, slots=True)
class EncKdcRepPart:
    session_key: bytes = field(repr=False)  # secret: never in logs or reprs
    nonce: bytes
    flags: TicketFlags
    authtime: int
    starttime: int
    endtime: int
    renew_till: int
    service: Principal

    def to_bytes(self) -> bytes:
        return (
            Writer(MessageType.ENC_KDC_REP_PART)
            .raw(self.session_key).raw(self.nonce).u32(self.flags)
            .u64(self.authtime).u64(self.starttime).u64(self.endtime).u64(self.renew_till)
            .principal(self.service).getvalue()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> EncKdcRepPart:
        r = Reader(data, MessageType.ENC_KDC_REP_PART)
        part = cls(
            r.raw(KEY_SIZE), r.raw(NONCE_SIZE), r.flags(TicketFlags),
            r.u64(), r.u64(), r.u64(), r.u64(), r.principal(),
        )
        r.end()
        return part
