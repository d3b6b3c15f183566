"""Parsers refuse every malformed input with a ``TallyError``, never anything else.

A parser that raised ``IndexError`` or ``struct.error`` would surface as a 500
with a traceback; a parser that accepted trailing bytes or a truncated
message would give one value two encodings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally_protocol.codes import MessageType
from tally_protocol.encoding import PROTOCOL_VERSION, b64encode, peek_unverified_type
from tally_protocol.errors import (
    AuthenticationRequired,
    MalformedMessage,
    TallyError,
    UnsupportedVersion,
)
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
    parse_authorization,
)
from tally_protocol.messages.ap_req import MAX_HEADER

from .realm import ALICE, API, NOW, TGS, DeterministicRandom, ap_request, issue_ticket, service_keyset
from .strategies import (
    ap_requests,
    as_replies,
    as_requests,
    authenticators,
    enc_ap_rep_parts,
    enc_kdc_rep_parts,
    enc_ticket_parts,
    pa_enc_timestamps,
    tgs_replies,
    tgs_request_bodies,
    tgs_requests,
    tickets,
)

Parser = Callable[[bytes], Any]

#: (parser, its message type, a strategy for valid messages of that type)
PARSERS: list[tuple[Parser, MessageType, st.SearchStrategy[Any]]] = [
    (Ticket.from_bytes, MessageType.TICKET, tickets),
    (EncTicketPart.from_bytes, MessageType.ENC_TICKET_PART, enc_ticket_parts()),
    (Authenticator.from_bytes, MessageType.AUTHENTICATOR, authenticators),
    (ApRequest.from_bytes, MessageType.AP_REQ, ap_requests),
    (EncApRepPart.from_bytes, MessageType.ENC_AP_REP_PART, enc_ap_rep_parts),
    (PaEncTimestamp.from_bytes, MessageType.PA_ENC_TIMESTAMP, pa_enc_timestamps),
    (AsRequest.from_bytes, MessageType.AS_REQ, as_requests),
    (AsReply.from_bytes, MessageType.AS_REP, as_replies),
    (EncKdcRepPart.from_bytes, MessageType.ENC_KDC_REP_PART, enc_kdc_rep_parts),
    (TgsRequestBody.from_bytes, MessageType.TGS_REQ_BODY, tgs_request_bodies),
    (TgsRequest.from_bytes, MessageType.TGS_REQ, tgs_requests),
    (TgsReply.from_bytes, MessageType.TGS_REP, tgs_replies),
]
IDS = [t.name for _, t, _ in PARSERS]


def _samples() -> dict[MessageType, bytes]:
    """One fixed, valid encoding of every message type (deterministic randomness)."""
    rng = DeterministicRandom()
    issued = issue_ticket(rng, service_keyset().current)
    ap_req = ap_request(rng, issued)
    body = TgsRequestBody(API, rng(16), 0)
    kdc_part = EncKdcRepPart(rng(32), rng(16), issued.part.flags, 1, 2, 3, 4, API)
    messages: list[Any] = [
        issued.ticket, issued.part, ap_req, ap_req.open_authenticator(issued.session_key),
        EncApRepPart(int(NOW), rng(16), rng(32)), PaEncTimestamp(int(NOW)),
        AsRequest(ALICE, TGS, rng(16), 0, True, rng(32), rng(60)),
        AsReply(ALICE, issued.ticket, rng(32), rng(80)), kdc_part, body,
        TgsRequest(body.to_bytes(), ap_req), TgsReply(ALICE, issued.ticket, rng(80)),
    ]
    samples = {peek_unverified_type(m.to_bytes()): m.to_bytes() for m in messages}
    samples[MessageType.KEYTAB] = dump_keytab(API, service_keyset(1, 2))
    return samples


SAMPLES = _samples()


def _refuses(parser: Callable[[Any], Any], data: Any) -> TallyError:
    with pytest.raises(TallyError) as info:
        parser(data)
    return info.value


@pytest.mark.parametrize(("parser", "msg_type", "strategy"), PARSERS, ids=IDS)
def test_parser_raises_only_tally_errors_on_arbitrary_bytes(
    parser: Parser, msg_type: MessageType, strategy: st.SearchStrategy[Any],
) -> None:
    header = bytes((PROTOCOL_VERSION, msg_type))

    @given(st.binary(max_size=300) | st.binary(max_size=300).map(lambda b: header + b))
    def check(data: bytes) -> None:
        try:
            parser(data)
        except TallyError:
            pass

    check()


@pytest.mark.parametrize(("parser", "msg_type", "strategy"), PARSERS, ids=IDS)
def test_parser_raises_only_tally_errors_on_mutated_valid_messages(
    parser: Parser, msg_type: MessageType, strategy: st.SearchStrategy[Any],
) -> None:
    @given(strategy, st.data())
    def check(message: Any, data: st.DataObject) -> None:
        raw = bytearray(message.to_bytes())
        for _ in range(data.draw(st.integers(1, 4))):
            pos = data.draw(st.integers(0, len(raw) - 1))
            op = data.draw(st.sampled_from(["flip", "delete", "insert"]))
            if op == "flip":
                raw[pos] ^= data.draw(st.integers(1, 255))
            elif op == "delete" and len(raw) > 1:
                del raw[pos]
            else:
                raw.insert(pos, data.draw(st.integers(0, 255)))
        try:
            parser(bytes(raw))
        except TallyError:
            pass

    check()


def test_keytab_loader_raises_only_tally_errors_on_arbitrary_bytes() -> None:
    header = bytes((PROTOCOL_VERSION, MessageType.KEYTAB))

    @given(st.binary(max_size=300).map(lambda b: header + b))
    def check(data: bytes) -> None:
        try:
            load_keytab(data)
        except TallyError:
            pass

    check()


@pytest.mark.parametrize(("parser", "msg_type", "strategy"), PARSERS, ids=IDS)
def test_trailing_byte_is_refused(parser: Parser, msg_type: MessageType, strategy: st.SearchStrategy[Any]) -> None:
    err = _refuses(parser, SAMPLES[msg_type] + b"\x00")
    assert type(err) is MalformedMessage


@pytest.mark.parametrize(("parser", "msg_type", "strategy"), PARSERS, ids=IDS)
def test_every_truncation_is_refused(parser: Parser, msg_type: MessageType, strategy: st.SearchStrategy[Any]) -> None:
    data = SAMPLES[msg_type]
    for cut in range(len(data)):
        assert isinstance(_refuses(parser, data[:cut]), MalformedMessage)


@pytest.mark.parametrize(("parser", "msg_type", "strategy"), PARSERS, ids=IDS)
@pytest.mark.parametrize("version", [0, PROTOCOL_VERSION + 1, 255])
def test_other_protocol_version_is_unsupported(
    parser: Parser, msg_type: MessageType, strategy: st.SearchStrategy[Any], version: int,
) -> None:
    data = SAMPLES[msg_type]
    err = _refuses(parser, bytes((version,)) + data[1:])
    assert type(err) is UnsupportedVersion
    assert err.data == {"version": version}


@pytest.mark.parametrize(("parser", "msg_type", "strategy"), PARSERS, ids=IDS)
def test_every_other_type_byte_is_refused(
    parser: Parser, msg_type: MessageType, strategy: st.SearchStrategy[Any],
) -> None:
    data = SAMPLES[msg_type]
    for other in range(256):
        if other != msg_type:
            err = _refuses(parser, data[:1] + bytes((other,)) + data[2:])
            assert type(err) is MalformedMessage


def test_keytab_refuses_trailing_bytes_truncation_version_and_type() -> None:
    data = SAMPLES[MessageType.KEYTAB]
    assert type(_refuses(load_keytab, data + b"\x00")) is MalformedMessage
    for cut in range(len(data)):
        assert isinstance(_refuses(load_keytab, data[:cut]), MalformedMessage)
    assert type(_refuses(load_keytab, b"\x02" + data[1:])) is UnsupportedVersion
    assert type(_refuses(load_keytab, data[:1] + bytes((MessageType.TICKET,)) + data[2:])) is MalformedMessage


def test_keytab_refuses_duplicate_key_versions() -> None:
    data = bytearray(SAMPLES[MessageType.KEYTAB])
    # Entries are (kvno u32 | key[32]) at the end: make the second kvno equal the first.
    first, second = len(data) - 2 * 36, len(data) - 36
    data[second:second + 4] = data[first:first + 4]
    assert type(_refuses(load_keytab, bytes(data))) is MalformedMessage


def test_keytab_refuses_zero_entries() -> None:
    data = SAMPLES[MessageType.KEYTAB]
    head = data[: len(data) - 2 * 36 - 4]
    assert type(_refuses(load_keytab, head + bytes(4))) is MalformedMessage


def test_ticket_whose_sealed_part_has_no_valid_header_is_malformed() -> None:
    data = bytearray(SAMPLES[MessageType.TICKET])
    blob_start = 2 + 2 + len(str(API)) + 2  # header | service text | blob length | blob
    data[blob_start] = PROTOCOL_VERSION + 1  # the sealed blob's own version byte
    assert type(_refuses(Ticket.from_bytes, bytes(data))) is UnsupportedVersion


def test_as_request_renewable_flag_must_be_zero_or_one() -> None:
    rng = DeterministicRandom()
    req = AsRequest(API, API, rng(16), 0, True, rng(32), b"")
    data = bytearray(req.to_bytes())
    renewable_at = len(data) - 2 - 32 - 1  # ... u8 renewable | public[32] | preauth blob (empty)
    assert data[renewable_at] == 1
    data[renewable_at] = 2
    assert type(_refuses(AsRequest.from_bytes, bytes(data))) is MalformedMessage


def test_unknown_flag_bits_are_refused() -> None:
    rng = DeterministicRandom()
    issued = issue_ticket(rng, service_keyset().current)
    data = bytearray(issued.part.to_bytes())
    data[2:6] = (1 << 31).to_bytes(4, "big")  # flags u32 right after the header
    assert type(_refuses(EncTicketPart.from_bytes, bytes(data))) is MalformedMessage


def test_ticket_ending_before_it_starts_is_malformed() -> None:
    rng = DeterministicRandom()
    part = issue_ticket(rng, service_keyset().current, start=NOW, end=NOW - 1).part
    assert type(_refuses(EncTicketPart.from_bytes, part.to_bytes())) is MalformedMessage


def test_peek_type_names_the_claimed_message_type() -> None:
    samples = SAMPLES
    assert peek_unverified_type(samples[MessageType.AP_REQ]) is MessageType.AP_REQ
    assert type(_refuses(peek_unverified_type, b"\x01")) is MalformedMessage
    assert type(_refuses(peek_unverified_type, b"\x02\x0e")) is UnsupportedVersion
    assert type(_refuses(peek_unverified_type, b"\x01\xff")) is MalformedMessage


@given(st.text(max_size=200) | st.none())
def test_authorization_parser_raises_only_tally_errors(value: str | None) -> None:
    try:
        parse_authorization(value)
    except TallyError:
        pass


@pytest.mark.parametrize("value", [None, "", "Basic dXNlcjpwYXNz", "Bearer abc", "Tallyx abc"])
def test_missing_or_foreign_authorization_requires_authentication(value: str | None) -> None:
    assert type(_refuses(parse_authorization, value)) is AuthenticationRequired


@pytest.mark.parametrize("value", ["Tally", "Tally ", "Tally " + "A" * (MAX_HEADER + 1), "Tally AAAA=", "Tally +/+/"])
def test_empty_oversized_or_non_base64url_token_is_malformed(value: str) -> None:
    assert isinstance(_refuses(parse_authorization, value), MalformedMessage)


def test_authorization_scheme_is_case_insensitive() -> None:
    token = SAMPLES[MessageType.AP_REQ]
    assert parse_authorization(f"tally {b64encode(token)}") == ApRequest.from_bytes(token)
    assert parse_authorization(f"  TALLY   {b64encode(token)}  ") == ApRequest.from_bytes(token)
