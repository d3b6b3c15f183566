"""Every message survives ``to_bytes``/``from_bytes``, and sealed parts survive create/open."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally_protocol.binding import response_digest
from tally_protocol.keys import Key
from tally_protocol.keytab import dump_keytab, load_keytab
from tally_protocol.messages import (
    ApRequest,
    AsReply,
    AsRequest,
    Authenticator,
    EncApRepPart,
    EncKdcRepPart,
    EncTicketPart,
    PaEncTimestamp,
    TgsReply,
    TgsRequest,
    TgsRequestBody,
    Ticket,
    format_authorization,
    open_ap_reply,
    parse_authorization,
    seal_ap_reply,
)
from tally_protocol.principal import Principal

from . import strategies as s
from .realm import ALICE, API, NOW, DeterministicRandom, issue_ticket, key

MESSAGES: list[tuple[type[Any], st.SearchStrategy[Any]]] = [
    (Ticket, s.tickets),
    (EncTicketPart, s.enc_ticket_parts()),
    (Authenticator, s.authenticators),
    (ApRequest, s.ap_requests),
    (EncApRepPart, s.enc_ap_rep_parts),
    (PaEncTimestamp, s.pa_enc_timestamps),
    (AsRequest, s.as_requests),
    (AsReply, s.as_replies),
    (EncKdcRepPart, s.enc_kdc_rep_parts),
    (TgsRequestBody, s.tgs_request_bodies),
    (TgsRequest, s.tgs_requests),
    (TgsReply, s.tgs_replies),
]


@pytest.mark.parametrize(("cls", "strategy"), MESSAGES, ids=[c.__name__ for c, _ in MESSAGES])
def test_message_round_trips_through_its_encoding(cls: type[Any], strategy: st.SearchStrategy[Any]) -> None:
    @given(strategy)
    def check(message: Any) -> None:
        data = message.to_bytes()
        decoded = cls.from_bytes(data)
        assert decoded == message
        assert decoded.to_bytes() == data  # one encoding per value

    check()


@given(s.principals, s.keysets())
def test_keytab_round_trips_with_every_key_version(principal: Principal, keyset: Any) -> None:
    loaded_principal, loaded = load_keytab(dump_keytab(principal, keyset))
    assert loaded_principal == principal
    assert loaded.versions == keyset.versions
    assert [k.material for k in loaded] == [k.material for k in keyset]


@given(s.principals)
def test_principal_text_form_parses_back_to_the_same_principal(principal: Principal) -> None:
    assert Principal.parse(str(principal)) == principal


@given(s.ap_requests)
def test_authorization_header_round_trips(ap_req: ApRequest) -> None:
    assert parse_authorization(format_authorization(ap_req)) == ap_req


@given(s.enc_ticket_parts(), s.principals)
def test_issued_ticket_opens_to_the_same_enc_part(part: EncTicketPart, service: Principal) -> None:
    rng = DeterministicRandom()
    service_key = key("svc", 3)
    ticket = Ticket.issue(service, service_key, part, nonce=rng(12))
    assert ticket.kvno == 3
    assert Ticket.from_bytes(ticket.to_bytes()).open(service_key) == part


@given(s.authenticators)
def test_sealed_authenticator_opens_to_the_same_authenticator(auth: Authenticator) -> None:
    rng = DeterministicRandom()
    issued = issue_ticket(rng, key("api"))
    ap_req = ApRequest.create(issued.ticket, issued.session_key, auth, nonce=rng(12))
    assert ApRequest.from_bytes(ap_req.to_bytes()).open_authenticator(issued.session_key) == auth


@given(s.enc_kdc_rep_parts)
def test_tgs_reply_opens_under_the_tgt_session_key(part: EncKdcRepPart) -> None:
    rng = DeterministicRandom()
    issued = issue_ticket(rng, key("api"))
    session = Key(rng(32), 0)
    reply = TgsReply.create(client=ALICE, ticket=issued.ticket, tgt_session_key=session, part=part, nonce=rng(12))
    assert TgsReply.from_bytes(reply.to_bytes()).open(session) == part


@given(s.enc_kdc_rep_parts, s.keys32, st.binary(max_size=300))
def test_as_reply_opens_with_the_same_key_secret_and_request(
    part: EncKdcRepPart, shared: bytes, request_bytes: bytes,
) -> None:
    rng = DeterministicRandom()
    issued = issue_ticket(rng, key("krbtgt"))
    client_key = Key(key("alice").material, 0)
    reply = AsReply.create(
        client=ALICE, ticket=issued.ticket, kdc_public=rng(32), client_key=client_key,
        shared_secret=shared, as_req_bytes=request_bytes, part=part, nonce=rng(12),
    )
    assert AsReply.from_bytes(reply.to_bytes()).open(client_key, shared, request_bytes) == part


@given(st.integers(100, 999), st.binary(max_size=200), s.times, s.nonces)
def test_ap_reply_header_round_trips(status: int, body: bytes, ctime: int, nonce: bytes) -> None:
    session = Key(DeterministicRandom()(32), 0)
    part = EncApRepPart(ctime, nonce, response_digest(status, body))
    header = seal_ap_reply(session, part, nonce=bytes(12))
    open_ap_reply(session, header, part)  # raises on any mismatch


def test_pa_enc_timestamp_opens_only_with_the_sealed_body() -> None:
    rng = DeterministicRandom()
    client_key = Key(key("alice").material, 0)
    req = AsRequest(ALICE, Principal.tgs(API.realm), rng(16), 0, True, rng(32))
    sealed = req.with_preauth(client_key, int(NOW), nonce=rng(12))
    assert AsRequest.from_bytes(sealed.to_bytes()).open_preauth(client_key) == PaEncTimestamp(int(NOW))
