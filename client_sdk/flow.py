"""The client's side of the three exchanges, as pure functions (sans-I/O).

Each exchange is a ``start_*`` that returns the request bytes plus the state
needed to check the answer, and a ``finish_*``/``check_*`` that verifies it.
The HTTP client (``client.py``) only moves bytes; time and randomness come in
as arguments, so the whole client role runs in tests without a network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tally_protocol import Random
from tally_protocol.binding import RequestBinding, response_digest
from tally_protocol.codes import TgsOptions, TicketFlags
from tally_protocol.crypto import equal, x25519_public_key, x25519_shared_secret
from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.errors import MalformedMessage, MutualAuthFailed, TallyError
from tally_protocol.keys import Key
from tally_protocol.messages import (
    ApRequest,
    AsReply,
    AsRequest,
    Authenticator,
    EncApRepPart,
    EncKdcRepPart,
    TgsReply,
    TgsRequest,
    TgsRequestBody,
    Ticket,
    format_authorization,
    open_ap_reply,
)
from tally_protocol.messages.authenticator import NONCE_SIZE
from tally_protocol.principal import Principal
from tally_protocol.verify import SESSION_KVNO

AEAD_NONCE = 12


@dataclass(frozen=True, slots=True)
class Credential:
    """A ticket and what the client knows about it: one credential-cache entry."""

    client: Principal
    service: Principal
    ticket: Ticket
    session_key: bytes = field(repr=False)
    flags: TicketFlags
    authtime: int
    starttime: int
    endtime: int
    renew_till: int

    @property
    def key(self) -> Key:
        return Key(self.session_key, SESSION_KVNO)

    def valid_at(self, now: float, *, margin_s: float = 0) -> bool:
        return self.starttime - 300 <= now < self.endtime - margin_s

    def renewable_at(self, now: float) -> bool:
        return bool(self.flags & TicketFlags.RENEWABLE) and now < min(self.endtime, self.renew_till)

    def to_dict(self) -> dict[str, Any]:
        return {
            "client": str(self.client), "service": str(self.service),
            "ticket": b64encode(self.ticket.to_bytes()), "session_key": b64encode(self.session_key),
            "flags": int(self.flags), "authtime": self.authtime, "starttime": self.starttime,
            "endtime": self.endtime, "renew_till": self.renew_till,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Credential:
        try:
            return cls(
                Principal.parse(data["client"]), Principal.parse(data["service"]),
                Ticket.from_bytes(b64decode(data["ticket"])), b64decode(data["session_key"]),
                TicketFlags(int(data["flags"])), int(data["authtime"]), int(data["starttime"]),
                int(data["endtime"]), int(data["renew_till"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise MalformedMessage("invalid credential cache entry") from e

    @classmethod
    def from_reply(cls, client: Principal, ticket: Ticket, part: EncKdcRepPart) -> Credential:
        return cls(client, part.service, ticket, part.session_key, part.flags, part.authtime,
                   part.starttime, part.endtime, part.renew_till)


def _check_reply(expected_client: Principal, client: Principal, ticket: Ticket,
                 part: EncKdcRepPart, nonce: bytes, service: Principal) -> None:
    # The KDC proved it knows our key (or the TGT session key) by sealing this
    # part; these checks stop a reply to another request being substituted.
    if client != expected_client or not equal(part.nonce, nonce):
        raise MutualAuthFailed("KDC reply does not answer this request")
    if part.service != service or ticket.service != service:
        raise MutualAuthFailed("KDC reply is for another service")


@dataclass(frozen=True, slots=True)
class AsExchange:
    request: AsRequest
    request_bytes: bytes
    private: bytes = field(repr=False)  # ephemeral X25519 scalar, discarded afterwards
    client_key: Key = field(repr=False)


def start_as_exchange(client: Principal, client_key: Key, *, now: float, rng: Random,
                      till: int = 0, renewable: bool = True) -> AsExchange:
    private = rng(32)
    request = AsRequest(client, Principal.tgs(client.realm), rng(NONCE_SIZE), till, renewable,
                        x25519_public_key(private))
    request = request.with_preauth(client_key, int(now), nonce=rng(AEAD_NONCE))
    return AsExchange(request, request.to_bytes(), private, client_key)


def finish_as_exchange(pending: AsExchange, reply_bytes: bytes) -> Credential:
    reply = AsReply.from_bytes(reply_bytes)
    try:
        shared = x25519_shared_secret(pending.private, reply.kdc_public)
        part = reply.open(pending.client_key, shared, pending.request_bytes)
    except TallyError as e:
        raise MutualAuthFailed("KDC reply could not be opened with this key") from e
    req = pending.request
    _check_reply(req.client, reply.client, reply.ticket, part, req.nonce, req.service)
    return Credential.from_reply(reply.client, reply.ticket, part)


@dataclass(frozen=True, slots=True)
class TgsExchange:
    tgt: Credential
    body: TgsRequestBody
    request_bytes: bytes


def start_tgs_exchange(tgt: Credential, service: Principal, *, now: float, rng: Random,
                       till: int = 0, renew: bool = False) -> TgsExchange:
    body = TgsRequestBody(service, rng(NONCE_SIZE), till, TgsOptions.RENEW if renew else TgsOptions.NONE)
    body_bytes = body.to_bytes()
    binding = RequestBinding.for_tgs(tgt.service.realm, body_bytes)
    auth = Authenticator(tgt.client, int(now), rng(NONCE_SIZE), binding)
    ap_req = ApRequest.create(tgt.ticket, tgt.key, auth, nonce=rng(AEAD_NONCE))
    return TgsExchange(tgt, body, TgsRequest(body_bytes, ap_req).to_bytes())


def finish_tgs_exchange(pending: TgsExchange, reply_bytes: bytes) -> Credential:
    reply = TgsReply.from_bytes(reply_bytes)
    try:
        part = reply.open(pending.tgt.key)
    except TallyError as e:
        raise MutualAuthFailed("KDC reply could not be opened with the TGT session key") from e
    _check_reply(pending.tgt.client, reply.client, reply.ticket, part, pending.body.nonce, pending.body.service)
    return Credential.from_reply(reply.client, reply.ticket, part)


@dataclass(frozen=True, slots=True)
class ApContext:
    """What the client keeps to check the service's mutual-authentication proof."""

    authorization: str  # the Authorization header value
    ctime: int
    nonce: bytes
    session_key: Key = field(repr=False)

    def check_reply(self, header: str | None, *, status: int, body: bytes) -> None:
        """Raise ``MutualAuthFailed`` unless the service proved itself for this response."""
        open_ap_reply(self.session_key, header, EncApRepPart(self.ctime, self.nonce, response_digest(status, body)))


def make_ap_request(cred: Credential, binding: RequestBinding, *, now: float, rng: Random) -> ApContext:
    ctime, nonce = int(now), rng(NONCE_SIZE)
    auth = Authenticator(cred.client, ctime, nonce, binding)
    ap_req = ApRequest.create(cred.ticket, cred.key, auth, nonce=rng(AEAD_NONCE))
    return ApContext(format_authorization(ap_req), ctime, nonce, cred.key)
