"""AS request (RFC 4120 §5.4.1) with mandatory PA-ENC-TIMESTAMP (RFC 4120 §5.2.7.2).

The body carries the client's ephemeral X25519 public key.  The
pre-authentication timestamp is sealed under the client's long-term key with
a digest of the body as associated data, so an attacker can neither forge it
nor graft a captured one onto a body with its own DH key or nonce.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..codes import KeyUsage, MessageType
from ..crypto import X25519_SIZE, digest, seal, unseal
from ..encoding import Reader, Writer
from ..errors import MalformedMessage
from ..keys import Key
from ..principal import Principal
from .authenticator import NONCE_SIZE


@dataclass(frozen=True, slots=True)
class PaEncTimestamp:
    timestamp: int

    def to_bytes(self) -> bytes:
        return Writer(MessageType.PA_ENC_TIMESTAMP).u64(self.timestamp).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PaEncTimestamp:
        r = Reader(data, MessageType.PA_ENC_TIMESTAMP)
        pa = cls(r.u64())
        r.end()
        return pa


@dataclass(frozen=True, slots=True)
class AsRequest:
    client: Principal
    service: Principal  # the ticket-granting service
    nonce: bytes
    till: int  # requested end time; 0 = realm default
    renewable: bool
    client_public: bytes  # ephemeral X25519
    preauth: bytes = b""  # sealed PaEncTimestamp

    def body_bytes(self) -> bytes:
        return (
            Writer().principal(self.client).principal(self.service).raw(self.nonce)
            .u64(self.till).u8(int(self.renewable)).raw(self.client_public).getvalue()
        )

    def with_preauth(self, client_key: Key, timestamp: int, *, nonce: bytes) -> AsRequest:
        sealed = seal(
            client_key, KeyUsage.AS_REQ_PREAUTH, PaEncTimestamp(timestamp).to_bytes(),
            nonce=nonce, context=digest(self.body_bytes()),
        )
        return AsRequest(self.client, self.service, self.nonce, self.till, self.renewable,
                         self.client_public, sealed)

    def open_preauth(self, client_key: Key) -> PaEncTimestamp:
        plain = unseal(client_key, KeyUsage.AS_REQ_PREAUTH, self.preauth, context=digest(self.body_bytes()))
        return PaEncTimestamp.from_bytes(plain)

    def to_bytes(self) -> bytes:
        return Writer(MessageType.AS_REQ).blob(self.body_bytes()).blob(self.preauth).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> AsRequest:
        r = Reader(data, MessageType.AS_REQ)
        body, preauth = r.blob(), r.blob()
        r.end()
        b = Reader(body)
        client, service, nonce = b.principal(), b.principal(), b.raw(NONCE_SIZE)
        till, renewable, public = b.u64(), b.u8(), b.raw(X25519_SIZE)
        b.end()
        if renewable > 1:
            raise MalformedMessage("renewable must be 0 or 1")
        return cls(client, service, nonce, till, bool(renewable), public, preauth)
