"""base64url without padding, strictly: one text per byte string (RFC 4648 §5)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.errors import MalformedMessage


@given(st.binary(max_size=200))
def test_b64_round_trips(data: bytes) -> None:
    assert b64decode(b64encode(data)) == data


@given(st.binary(max_size=200))
def test_b64_encoding_is_urlsafe_and_unpadded(data: bytes) -> None:
    text = b64encode(data)
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@given(st.binary(min_size=1, max_size=60).filter(lambda b: len(b) % 3))
def test_b64_padding_is_refused(data: bytes) -> None:
    padded = base64.urlsafe_b64encode(data).decode()
    assert padded.endswith("=")
    with pytest.raises(MalformedMessage):
        b64decode(padded)


@given(st.binary(min_size=1, max_size=60))
def test_b64_standard_alphabet_is_refused(data: bytes) -> None:
    text = b64encode(data)
    std = text.replace("-", "+").replace("_", "/")
    if std != text:
        with pytest.raises(MalformedMessage):
            b64decode(std)


@pytest.mark.parametrize("text", ["AB", "AAB", "AAAAAB"])
def test_b64_non_canonical_trailing_bits_are_refused(text: str) -> None:
    # "AB" decodes to 0x00 like "AA", but with non-zero unused bits: a second spelling.
    with pytest.raises(MalformedMessage):
        b64decode(text)


@pytest.mark.parametrize("text", ["A", "AAAAA", "AA AA", "AA\nAA", "AA.A", "AAé", "====", " AA"])
def test_b64_impossible_lengths_whitespace_and_foreign_characters_are_refused(text: str) -> None:
    with pytest.raises(MalformedMessage):
        b64decode(text)


def test_b64_decoder_refuses_bytes_input() -> None:
    with pytest.raises(MalformedMessage):
        b64decode(b"AAAA")  # type: ignore[arg-type]


@given(st.text(max_size=40))
def test_b64_decoder_raises_only_malformed_message(text: str) -> None:
    try:
        data = b64decode(text)
    except MalformedMessage:
        return
    assert b64encode(data) == text  # anything accepted is the canonical spelling
