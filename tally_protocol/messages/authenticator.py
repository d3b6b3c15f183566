"""Authenticator (RFC 4120 §5.5.1): fresh proof of the session key, per request.

Sealed under the ticket's session key (usage AP_REQ_AUTHENTICATOR).  The
128-bit random ``nonce`` and ``ctime`` make each one unique; ``binding`` ties
it to one request.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..binding import RequestBinding
from ..codes import MessageType
from ..encoding import Reader, Writer
from ..principal import Principal

NONCE_SIZE = 16


@dataclass(frozen=True, slots=True)
class Authenticator:
    client: Principal
    ctime: int
    nonce: bytes
    binding: RequestBinding

    def to_bytes(self) -> bytes:
        w = Writer(MessageType.AUTHENTICATOR).principal(self.client).u64(self.ctime).raw(self.nonce)
        self.binding.write(w)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Authenticator:
        r = Reader(data, MessageType.AUTHENTICATOR)
        auth = cls(r.principal(), r.u64(), r.raw(NONCE_SIZE), RequestBinding.read(r))
        r.end()
        return auth
