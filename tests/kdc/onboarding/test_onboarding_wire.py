"""The onboarding wire format and pure flows: round trips, hostile bytes, tampering, identity binding."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kdc.onboarding_records import EnrollmentRecord, PairingRecord, PairingSession
from tally_protocol.enrollment import (
    TokenSecrets,
    check_enrollment_proof,
    finish_enrollment,
    format_token,
    parse_token,
    prepare_enrollment_reply,
    start_enrollment,
)
from tally_protocol.errors import IntegrityError, MalformedMessage, MutualAuthFailed, TallyError
from tally_protocol.keys import Key, Keyset
from tally_protocol.keytab import dump_keytab
from tally_protocol.messages.enrollment import EnrollReply, EnrollRequest
from tally_protocol.messages.pairing import PairChallenge, PairFinish, PairReply, PairStart
from tally_protocol.pairing import (
    answer_pairing_start,
    check_device_confirmation,
    confirm_pairing,
    finish_pairing,
    format_code,
    new_pairing_code,
    parse_code,
    seal_pairing_reply,
    start_pairing,
)
from tally_protocol.principal import Principal

REALM = "EXAMPLE.TEST"
ALICE = Principal("alice", REALM)
KEYTAB = dump_keytab(ALICE, Keyset([Key(bytes(range(32)), 2)]))

principals = st.builds(Principal, st.from_regex(r"[a-z][a-z0-9._/-]{0,20}", fullmatch=True),
                       st.sampled_from([REALM, "OTHER.TEST"]))


def fixed(n: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=n, max_size=n)


def spake(side: bytes) -> st.SearchStrategy[bytes]:
    return fixed(32).map(lambda b: side + b)


MESSAGES: list[tuple[Callable[[bytes], Any], st.SearchStrategy[Any]]] = [
    (EnrollRequest.from_bytes, st.builds(EnrollRequest, fixed(16), fixed(32), fixed(32))),
    (EnrollReply.from_bytes, st.builds(EnrollReply, fixed(32), st.binary(max_size=300))),
    (PairStart.from_bytes, st.builds(PairStart, principals, spake(b"A"))),
    (PairChallenge.from_bytes, st.builds(PairChallenge, fixed(16), spake(b"B"))),
    (PairFinish.from_bytes, st.builds(PairFinish, fixed(16), fixed(32))),
    (PairReply.from_bytes, st.builds(PairReply, fixed(32), st.binary(max_size=300))),
    (EnrollmentRecord.from_bytes, st.builds(EnrollmentRecord, principals, st.integers(0, 2**64 - 1),
                                            st.integers(0, 2**64 - 1), fixed(32))),
    (PairingRecord.from_bytes, st.builds(PairingRecord, principals, fixed(16),
                                         st.from_regex(r"[0-9]{8}", fullmatch=True),
                                         st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
                                         st.integers(0, 2**32 - 1))),
    (PairingSession.from_bytes, st.builds(PairingSession, principals, fixed(16), st.booleans(),
                                          st.integers(0, 2**64 - 1), st.binary(max_size=300), fixed(32))),
]
IDS = [parse.__self__.__name__ for parse, _ in MESSAGES]


@pytest.mark.parametrize(("parse", "strategy"), MESSAGES, ids=IDS)
def test_messages_round_trip(parse: Callable[[bytes], Any], strategy: st.SearchStrategy[Any]) -> None:
    @given(strategy)
    def check(message: Any) -> None:
        assert parse(message.to_bytes()) == message

    check()


@pytest.mark.parametrize(("parse", "strategy"), MESSAGES, ids=IDS)
def test_parsers_refuse_hostile_bytes_with_malformed_message_only(parse: Callable[[bytes], Any],
                                                                  strategy: st.SearchStrategy[Any]) -> None:
    @given(strategy, st.data())
    def check(message: Any, data: st.DataObject) -> None:
        encoded = message.to_bytes()
        cut = data.draw(st.integers(0, len(encoded) - 1))
        for hostile in (encoded[:cut], encoded + b"\x00", data.draw(st.binary(max_size=120))):
            try:
                parse(hostile)
            except MalformedMessage:
                pass

    check()


def test_spake2_messages_must_come_from_the_expected_side() -> None:
    with pytest.raises(MalformedMessage):
        PairStart.from_bytes(PairStart(ALICE, b"B" + bytes(32)).to_bytes())


@given(fixed(20))
def test_tokens_round_trip_whatever_the_case_and_separators(raw: bytes) -> None:
    text = format_token(raw)
    assert len(text) == 39 and text.count("-") == 7
    assert parse_token(text) == raw
    assert parse_token(text.lower().replace("-", " ")) == raw


@given(st.text(max_size=60))
def test_token_parser_refuses_anything_else_with_malformed_message(text: str) -> None:
    try:
        assert len(parse_token(text)) == 20
    except MalformedMessage:
        pass


@given(st.text(max_size=20))
def test_code_parser_accepts_only_eight_ascii_digits(text: str) -> None:
    try:
        code = parse_code(text)
    except MalformedMessage:
        return
    assert len(code) == 8 and all(c in "0123456789" for c in code)


def test_unicode_digits_are_not_a_code() -> None:
    with pytest.raises(MalformedMessage):
        parse_code("١٢٣٤٥٦٧٨")  # Arabic-Indic digits: isdigit() would say yes


def test_code_sampling_rejects_the_biased_tail() -> None:
    draws = iter([(2**32 - 1).to_bytes(4, "big"), (4_200_000_000).to_bytes(4, "big"), (123).to_bytes(4, "big")])
    assert new_pairing_code(lambda n: next(draws)) == "00000123"
    assert format_code("00000123") == "0000 0123"


def _enroll_reply(token: bytes) -> tuple[Any, bytes]:
    pending = start_enrollment(token, os.urandom(32))
    secrets = TokenSecrets.derive(token)
    check_enrollment_proof(pending.request, secrets.verifier)
    sealer = prepare_enrollment_reply(pending.request, secrets.verifier, kdc_private=os.urandom(32))
    return pending, sealer.seal(KEYTAB, nonce=os.urandom(12)).to_bytes()


@given(st.data())
def test_any_flipped_byte_of_an_enrollment_reply_is_refused(data: st.DataObject) -> None:
    pending, reply = _enroll_reply(os.urandom(20))
    i = data.draw(st.integers(0, len(reply) - 1))
    tampered = reply[:i] + bytes([reply[i] ^ data.draw(st.integers(1, 255))]) + reply[i + 1:]
    with pytest.raises(TallyError):
        finish_enrollment(pending, tampered)


def test_enrollment_reply_for_another_request_is_refused() -> None:
    token = os.urandom(20)
    _, reply = _enroll_reply(token)
    other = start_enrollment(token, os.urandom(32))  # same token, another device key
    with pytest.raises(IntegrityError):
        finish_enrollment(other, reply)


def test_kdc_identity_binds_the_realm() -> None:
    device = start_pairing(ALICE, "12345678", os.urandom)
    kdc = answer_pairing_start(device.start, "12345678", realm="OTHER.TEST", pairing_id=bytes(16), rng=os.urandom)
    confirmed = confirm_pairing(device, kdc.challenge.to_bytes())
    with pytest.raises(IntegrityError):
        check_device_confirmation(kdc.session_key, kdc.transcript, confirmed.finish)


def test_device_identity_binds_the_principal() -> None:
    device = start_pairing(ALICE, "12345678", os.urandom)
    renamed = replace(device.start, principal=Principal("mallory", REALM))  # the same SPAKE2 message, another name
    kdc = answer_pairing_start(renamed, "12345678", realm=REALM, pairing_id=bytes(16), rng=os.urandom)
    confirmed = confirm_pairing(device, kdc.challenge.to_bytes())
    with pytest.raises(IntegrityError):
        check_device_confirmation(kdc.session_key, kdc.transcript, confirmed.finish)


def _paired(code_device: str, code_kdc: str) -> tuple[Any, Any]:
    device = start_pairing(ALICE, code_device, os.urandom)
    kdc = answer_pairing_start(device.start, code_kdc, realm=REALM, pairing_id=os.urandom(16), rng=os.urandom)
    return confirm_pairing(device, kdc.challenge.to_bytes()), kdc


def test_device_refuses_a_kdc_that_does_not_know_the_code() -> None:
    confirmed, impostor = _paired("12345678", "87654321")
    reply = seal_pairing_reply(impostor.session_key, impostor.transcript, KEYTAB, nonce=os.urandom(12))
    with pytest.raises(MutualAuthFailed):
        finish_pairing(confirmed, reply.to_bytes())


def test_device_refuses_a_key_for_another_principal() -> None:
    confirmed, kdc = _paired("12345678", "12345678")
    other = dump_keytab(Principal("bob", REALM), Keyset([Key(bytes(32), 1)]))
    reply = seal_pairing_reply(kdc.session_key, kdc.transcript, other, nonce=os.urandom(12))
    with pytest.raises(MutualAuthFailed):
        finish_pairing(confirmed, reply.to_bytes())


def test_pairing_with_the_same_code_agrees_on_the_key() -> None:
    confirmed, kdc = _paired("1234 5678", "12345678")
    check_device_confirmation(kdc.session_key, kdc.transcript, confirmed.finish)
    reply = seal_pairing_reply(kdc.session_key, kdc.transcript, KEYTAB, nonce=os.urandom(12))
    assert finish_pairing(confirmed, reply.to_bytes())[1].versions == [2]
