"""TGS request (RFC 4120 §5.4.1): an AP request to the TGS plus a body.

The authenticator's binding is ``RequestBinding.for_tgs(realm, body)``, so a
captured TGS request cannot be altered to ask for another service or
lifetime, and the KDC verifies it with the relying services' verifier.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..codes import MessageType, TgsOptions
from ..encoding import Reader, Writer
from ..principal import Principal
from .ap_req import ApRequest
from .authenticator import NONCE_SIZE


@dataclass(frozen=True, slots=True)
class TgsRequestBody:
    service: Principal
    nonce: bytes
    till: int  # 0 = as long as policy and the TGT allow
    options: TgsOptions = TgsOptions.NONE

    def to_bytes(self) -> bytes:
        return (
            Writer(MessageType.TGS_REQ_BODY).principal(self.service).raw(self.nonce)
            .u64(self.till).u32(self.options).getvalue()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> TgsRequestBody:
        r = Reader(data, MessageType.TGS_REQ_BODY)
        body = cls(r.principal(), r.raw(NONCE_SIZE), r.u64(), r.flags(TgsOptions))
        r.end()
        return body


@dataclass(frozen=True, slots=True)
class TgsRequest:
    body: bytes  # encoded TgsRequestBody, kept as sent: the binding covers these bytes
    ap_req: ApRequest

    def decoded_body(self) -> TgsRequestBody:
        return TgsRequestBody.from_bytes(self.body)

    def to_bytes(self) -> bytes:
        return Writer(MessageType.TGS_REQ).blob(self.body).blob(self.ap_req.to_bytes()).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TgsRequest:
        r = Reader(data, MessageType.TGS_REQ)
        req = cls(r.blob(), ApRequest.from_bytes(r.blob()))
        r.end()
        return req
