"""The KDC's AS and TGS exchanges as pure functions (RFC 4120 §3.1, §3.3).

No store, clock or randomness here: the callers (``exchange_handlers``) look
principals up, pass ``now`` and ``rng`` in, claim replay keys and write audit events.  Lifetimes
follow a ``TicketPolicy`` the caller resolves (realm default for now).
``issue_tgt`` and ``issue_service_ticket`` return the reply with the
ticket's clear part, so the audit event can name the ticket without opening
what was just sealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from tally_protocol import Random
from tally_protocol.binding import RequestBinding
from tally_protocol.codes import TgsOptions, TicketFlags
from tally_protocol.crypto import x25519_public_key_and_secret
from tally_protocol.errors import ClockSkew, IntegrityError, PolicyRefused, PreauthFailed, WrongRealm
from tally_protocol.keys import KEY_SIZE, Key, Keyset
from tally_protocol.messages import (
    AsReply,
    AsRequest,
    EncKdcRepPart,
    EncTicketPart,
    TgsReply,
    TgsRequest,
    TgsRequestBody,
    Ticket,
)
from tally_protocol.messages.ticket import TICKET_ID_SIZE
from tally_protocol.principal import Principal
from tally_protocol.replay import replay_key, replay_ttl_ms
from tally_protocol.ticket_cache import TicketCache
from tally_protocol.verify import Verified, VerifyPolicy, verify_ap_request

NONCE = 12
R = TypeVar("R", AsReply, TgsReply)


@dataclass(frozen=True, slots=True)
class Issued(Generic[R]):
    """A reply and the clear part of the ticket it carries (secret: the session key is in it)."""

    reply: R
    part: EncTicketPart


@dataclass(frozen=True, slots=True)
class TicketPolicy:
    """Lifetimes in seconds.  A service ticket never outlives its TGT."""

    tgt_lifetime_s: int = 10 * 3600
    renewable_lifetime_s: int = 7 * 86400
    service_ticket_lifetime_s: int = 10 * 3600


@dataclass(frozen=True, slots=True)
class PreauthChecked:
    """A pre-authenticated AS request, pending its replay claim."""

    request: AsRequest
    replay_key: bytes
    replay_ttl_ms: int
    #: The encrypted timestamp, for the replay cache's recovery window (RFC 4120 §3.2.3).
    ctime: int


def check_preauth(as_req: AsRequest, client_key: Key, *, now: float, verify: VerifyPolicy) -> PreauthChecked:
    """Check the encrypted timestamp.

    Any decryption failure is ``PreauthFailed``: the caller passes a decoy key
    for unknown names, so an unknown name and a wrong key look the same.
    """
    if as_req.service != Principal.tgs(as_req.client.realm):
        raise WrongRealm("the AS exchange issues only the realm's ticket-granting ticket")
    try:
        pa = as_req.open_preauth(client_key)
    except IntegrityError:
        raise PreauthFailed() from None
    if abs(pa.timestamp - now) > verify.max_skew_s:
        raise ClockSkew(server_time=int(now), client_time=pa.timestamp, max_skew=verify.max_skew_s)
    return PreauthChecked(
        request=as_req,
        replay_key=replay_key(as_req.service, as_req.client, pa.timestamp, as_req.nonce),
        replay_ttl_ms=replay_ttl_ms(pa.timestamp, now, verify.max_skew_s, verify.replay_margin_s),
        ctime=pa.timestamp,
    )


def _end_time(now: int, lifetime: int, till: int, *limits: int) -> int:
    end = min([now + lifetime, *(limit for limit in limits if limit)])
    if till:
        if till <= now:
            raise PolicyRefused("requested end time is in the past")
        end = min(end, till)
    return end


def issue_tgt(checked: PreauthChecked, as_req_bytes: bytes, *, client_key: Key, tgs_key: Key,
              policy: TicketPolicy, now: float, rng: Random) -> Issued[AsReply]:
    """Issue a ticket-granting ticket, its reply sealed under the forward-secret reply key."""
    req = checked.request
    t = int(now)
    end = _end_time(t, policy.tgt_lifetime_s, req.till)
    renew_till = max(end, t + policy.renewable_lifetime_s) if req.renewable and policy.renewable_lifetime_s else 0
    flags = TicketFlags.INITIAL | TicketFlags.PRE_AUTHENTICATED | TicketFlags.FORWARD_SECRET
    if renew_till:
        flags |= TicketFlags.RENEWABLE
    session_key = rng(KEY_SIZE)
    part = EncTicketPart(flags, session_key, req.client, t, t, end, renew_till, rng(TICKET_ID_SIZE))
    ticket = Ticket.issue(req.service, tgs_key, part, nonce=rng(NONCE))
    kdc_public, shared = x25519_public_key_and_secret(rng(32), req.client_public)
    return Issued(AsReply.create(
        client=req.client, ticket=ticket, kdc_public=kdc_public, client_key=client_key,
        shared_secret=shared, as_req_bytes=as_req_bytes,
        part=EncKdcRepPart(session_key, req.nonce, flags, t, t, end, renew_till, req.service),
        nonce=rng(NONCE),
    ), part)


def check_tgs_request(tgs_req: TgsRequest, *, realm: str, tgs_keys: Keyset, now: float,
                      verify: VerifyPolicy, tgts: TicketCache | None = None) -> tuple[Verified, TgsRequestBody]:
    """Verify the TGT and authenticator exactly as a relying service would (``tgts``: TGTs already opened)."""
    body = tgs_req.decoded_body()
    verified = verify_ap_request(
        tgs_req.ap_req, service=Principal.tgs(realm), keyset=tgs_keys,
        binding=RequestBinding.for_tgs(realm, tgs_req.body), now=now, policy=verify, tickets=tgts,
    )
    return verified, body


def issue_service_ticket(verified: Verified, body: TgsRequestBody, *, service_key: Key,
                         policy: TicketPolicy, now: float, rng: Random) -> Issued[TgsReply]:
    """Issue a service ticket, or renew the TGT when ``body.options`` has RENEW.

    ``service_key`` is the requested service's current key (the TGS key when renewing).
    """
    tgt, t = verified.ticket, int(now)
    if body.service.realm != verified.service.realm:
        raise WrongRealm("cross-realm tickets are not supported")
    if body.options & TgsOptions.RENEW:
        if body.service != verified.service:
            raise PolicyRefused("only the ticket-granting ticket can be renewed")
        if not tgt.flags & TicketFlags.RENEWABLE or t >= tgt.renew_till:
            raise PolicyRefused("ticket is not renewable (or its renewable life is over)")
        end = _end_time(t, policy.tgt_lifetime_s, body.till, tgt.renew_till)
        flags, renew_till, session_key = tgt.flags & ~TicketFlags.INITIAL, tgt.renew_till, tgt.session_key
    else:
        if body.service == verified.service:
            raise PolicyRefused("use renewal to extend a ticket-granting ticket")
        end = _end_time(t, policy.service_ticket_lifetime_s, body.till, tgt.endtime)
        flags = tgt.flags & (TicketFlags.PRE_AUTHENTICATED | TicketFlags.FORWARD_SECRET)
        renew_till, session_key = 0, rng(KEY_SIZE)
    part = EncTicketPart(flags, session_key, tgt.client, tgt.authtime, t, end, renew_till, rng(TICKET_ID_SIZE))
    ticket = Ticket.issue(body.service, service_key, part, nonce=rng(NONCE))
    return Issued(TgsReply.create(
        client=tgt.client, ticket=ticket, tgt_session_key=verified.session_key,
        part=EncKdcRepPart(session_key, body.nonce, flags, tgt.authtime, t, end, renew_till, body.service),
        nonce=rng(NONCE),
    ), part)
