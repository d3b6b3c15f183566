"""AP request (RFC 4120 §5.5.1): ticket + sealed authenticator, in ``Authorization: Tally <b64url>``."""

from __future__ import annotations

from dataclasses import dataclass

from ..codes import KeyUsage, MessageType
from ..crypto import seal, unseal
from ..encoding import Reader, Writer, b64decode, b64encode
from ..errors import AuthenticationRequired, MalformedMessage
from ..keys import Key
from .authenticator import Authenticator
from .ticket import Ticket

SCHEME = "Tally"
#: Generous bound on the header value, checked before decoding anything.
MAX_HEADER = 16384


@dataclass(frozen=True, slots=True)
class ApRequest:
    ticket: Ticket
    authenticator: bytes  # sealed under the session key

    @classmethod
    def create(cls, ticket: Ticket, session_key: Key, auth: Authenticator, *, nonce: bytes) -> ApRequest:
        sealed = seal(session_key, KeyUsage.AP_REQ_AUTHENTICATOR, auth.to_bytes(), nonce=nonce)
        return cls(ticket, sealed)

    def open_authenticator(self, session_key: Key) -> Authenticator:
        plain = unseal(session_key, KeyUsage.AP_REQ_AUTHENTICATOR, self.authenticator)
        return Authenticator.from_bytes(plain)

    def to_bytes(self) -> bytes:
        return Writer(MessageType.AP_REQ).blob(self.ticket.to_bytes()).blob(self.authenticator).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ApRequest:
        r = Reader(data, MessageType.AP_REQ)
        req = cls(Ticket.from_bytes(r.blob()), r.blob())
        r.end()
        return req


def format_authorization(ap_req: ApRequest) -> str:
    return f"{SCHEME} {b64encode(ap_req.to_bytes())}"


def parse_authorization(value: str | None) -> ApRequest:
    """Parse an ``Authorization`` header value; absent or other scheme -> AuthenticationRequired."""
    if not value:
        raise AuthenticationRequired()
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != SCHEME.lower():
        raise AuthenticationRequired(f"authorization scheme must be {SCHEME}")
    token = token.strip()
    if not token:
        raise MalformedMessage("missing Tally token")
    if len(token) > MAX_HEADER:  # a ticket and authenticator take a few hundred bytes
        raise MalformedMessage(f"Tally token longer than {MAX_HEADER} characters")
    return ApRequest.from_bytes(b64decode(token))
