"""Ticket (RFC 4120 §5.3): readable service name outside, everything else sealed.

The sealed part is under the service's long-term key (usage TICKET) with the
service principal as associated data, so the outer name cannot be swapped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..codes import KeyUsage, MessageType, TicketFlags
from ..crypto import key_for_blob, peek_unverified_kvno, seal, unseal
from ..encoding import Reader, Writer
from ..errors import MalformedMessage
from ..keys import KEY_SIZE, Key, Keyset
from ..principal import Principal

TICKET_ID_SIZE = 16


@dataclass(frozen=True, slots=True)
class EncTicketPart:
    flags: TicketFlags
    session_key: bytes = field(repr=False)  # secret: never in logs or reprs
    client: Principal
    authtime: int
    starttime: int
    endtime: int
    renew_till: int  # 0 when not renewable
    ticket_id: bytes  # random; lets a realm revoke one ticket

    def to_bytes(self) -> bytes:
        return (
            Writer(MessageType.ENC_TICKET_PART)
            .u32(self.flags).raw(self.session_key).principal(self.client)
            .u64(self.authtime).u64(self.starttime).u64(self.endtime).u64(self.renew_till)
            .raw(self.ticket_id).getvalue()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> EncTicketPart:
        r = Reader(data, MessageType.ENC_TICKET_PART)
        part = cls(
            r.flags(TicketFlags), r.raw(KEY_SIZE), r.principal(),
            r.u64(), r.u64(), r.u64(), r.u64(), r.raw(TICKET_ID_SIZE),
        )
        r.end()
        if part.endtime < part.starttime:
            raise MalformedMessage("ticket ends before it starts")
        return part


@dataclass(frozen=True, slots=True)
class Ticket:
    service: Principal
    enc_part: bytes

    @property
    def kvno(self) -> int:
        """The service key version that sealed this ticket (unverified until opened)."""
        return peek_unverified_kvno(self.enc_part)

    @classmethod
    def issue(cls, service: Principal, key: Key, part: EncTicketPart, *, nonce: bytes) -> Ticket:
        context = str(service).encode()
        return cls(service, seal(key, KeyUsage.TICKET, part.to_bytes(), nonce=nonce, context=context))

    def key_in(self, keys: Keyset) -> Key:
        """The service key version that sealed this ticket (``UnknownKeyVersion`` when ``keys`` lacks it)."""
        return key_for_blob(keys, KeyUsage.TICKET, self.enc_part)

    def open(self, keys: Key | Keyset) -> EncTicketPart:
        plain = unseal(keys, KeyUsage.TICKET, self.enc_part, context=str(self.service).encode())
        return EncTicketPart.from_bytes(plain)

    def to_bytes(self) -> bytes:
        return Writer(MessageType.TICKET).principal(self.service).blob(self.enc_part).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Ticket:
        r = Reader(data, MessageType.TICKET)
        ticket = cls(r.principal(), r.blob())
        r.end()
        peek_unverified_kvno(ticket.enc_part)  # a sealed part without a valid header is malformed
        return ticket
