"""Verification of an AP request: the service side of RFC 4120 §3.2.3.

The order of checks is part of the design:

1. decode (``ApRequest.from_bytes``; version byte checked by the reader)
2. service and realm named by the ticket (before any decryption)
3. key version: the keyset must hold it (else "get a new ticket")
4. ticket AEAD under the service key (or the same ticket's earlier opening
   under that very key, from a ``TicketCache``: same bytes, same key, same
   result; never past the ticket's end time)
5. ticket times (start, with skew allowance; end, strictly)
6. authenticator AEAD under the ticket's session key
7. the authenticator's client equals the ticket's
8. clock skew of the authenticator's timestamp, before any store is touched,
   so the replay cache only ever holds entries from the current window
9. request binding, component by component
10. replay claim, last, by the caller with ``Verified.replay_key`` (a store
    round trip is only spent on requests that are otherwise valid)

Nothing here reads the clock: ``now`` is a parameter.  The TGS uses this same
function with the TGS keyset and a TGS binding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .binding import RequestBinding, response_digest
from .errors import (
    BindingMismatch,
    ClientMismatch,
    ClockSkew,
    TicketExpired,
    TicketNotYetValid,
    WrongRealm,
    WrongService,
)
from .keys import Key, Keyset
from .messages.ap_rep import EncApRepPart, seal_ap_reply
from .messages.ap_req import ApRequest
from .messages.authenticator import Authenticator
from .messages.ticket import EncTicketPart, Ticket
from .principal import Principal
from .replay import replay_key, replay_ttl_ms
from .ticket_cache import OpenedTicket, TicketCache

SESSION_KVNO = 0


@dataclass(frozen=True, slots=True)
class VerifyPolicy:
    max_skew_s: int = 300
    #: Extra replay-entry lifetime covering clock differences between replicas.
    replay_margin_s: int = 2


@dataclass(frozen=True, slots=True)
class Verified:
    """A request whose ticket and authenticator checked out, pending the replay claim."""

    service: Principal
    client: Principal
    kvno: int
    ticket: EncTicketPart
    authenticator: Authenticator
    replay_key: bytes
    replay_ttl_ms: int
    #: ``Key(ticket.session_key, 0)``, the one object whose per-usage AEADs the authenticator and reply use.
    session_key: Key = field(repr=False)


def verify_ap_request(
    ap_req: ApRequest,
    *,
    service: Principal,
    keyset: Keyset,
    binding: RequestBinding,
    now: float,
    policy: VerifyPolicy = VerifyPolicy(),
    tickets: TicketCache | None = None,
) -> Verified:
    """Check ``ap_req`` in the order above; ``tickets`` (optional) saves re-opening a ticket seen before."""
    ticket = ap_req.ticket
    if ticket.service != service:
        if ticket.service.realm != service.realm:
            raise WrongRealm(expected=service.realm)
        raise WrongService(expected=str(service))
    opened = _open_ticket(ticket, keyset, now, tickets)  # UnknownKeyVersion or IntegrityError
    part, session_key = opened.part, opened.session_key
    if now < part.starttime - policy.max_skew_s:
        raise TicketNotYetValid(starttime=part.starttime, server_time=int(now))
    if now >= part.endtime:
        raise TicketExpired(endtime=part.endtime, server_time=int(now))
    auth = ap_req.open_authenticator(session_key)
    if auth.client != part.client:
        raise ClientMismatch()
    if abs(auth.ctime - now) > policy.max_skew_s:
        raise ClockSkew(server_time=int(now), client_time=auth.ctime, max_skew=policy.max_skew_s)
    component = binding.first_mismatch(auth.binding)
    if component is not None:
        raise BindingMismatch(f"request {component} differs from the one the client signed", component=component)
    return Verified(
        service=service,
        client=part.client,
        kvno=opened.service_key.kvno,  # the version that opened it: the header is not parsed again
        ticket=part,
        authenticator=auth,
        replay_key=replay_key(service, part.client, auth.ctime, auth.nonce),
        replay_ttl_ms=replay_ttl_ms(auth.ctime, now, policy.max_skew_s, policy.replay_margin_s),
        session_key=session_key,
    )


def _open_ticket(ticket: Ticket, keyset: Keyset, now: float, tickets: TicketCache | None) -> OpenedTicket:
    """Steps 3 and 4: the service key for the ticket's kvno, then the ticket opened under it (or found opened)."""
    service_key = ticket.key_in(keyset)  # UnknownKeyVersion (or IntegrityError for another usage's blob)
    if tickets is not None:
        opened = tickets.get(ticket, service_key, now)
        if opened is not None:
            return opened
    part = ticket.open(service_key)  # IntegrityError
    opened = OpenedTicket(service_key, part, Key(part.session_key, SESSION_KVNO))
    if tickets is not None:
        tickets.put(ticket, opened, now)
    return opened


def make_ap_reply(verified: Verified, *, status: int, body: bytes, nonce: bytes) -> str:
    """The ``Authentication-Info`` header value proving the service to the client."""
    part = EncApRepPart(verified.authenticator.ctime, verified.authenticator.nonce, response_digest(status, body))
    return seal_ap_reply(verified.session_key, part, nonce=nonce)
