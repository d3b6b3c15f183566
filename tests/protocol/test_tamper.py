"""Any bit flipped anywhere in a ticket, an authenticator or an AP request is refused.

Each byte is covered by something: the framing (length prefixes, version and
type), the principal check, the sealed header (authenticated as associated
data) or the AEAD tag.  The exhaustive loops also pin which error the sealed
regions give, so a check that silently stopped covering its bytes shows up.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally_protocol.crypto import HEADER_SIZE
from tally_protocol.errors import IntegrityError, TallyError
from tally_protocol.messages import ApRequest, Ticket
from tally_protocol.ticket_cache import TicketCache
from tally_protocol.verify import verify_ap_request

from .realm import API, BINDING, NOW, DeterministicRandom, ap_request, issue_ticket, service_keyset

KEYSET = service_keyset(1, 2)
_rng = DeterministicRandom(b"tamper")
ISSUED = issue_ticket(_rng, KEYSET.get(1))
AP_REQ = ap_request(_rng, ISSUED)
TICKET = AP_REQ.ticket.to_bytes()
AUTHENTICATOR = AP_REQ.authenticator
AP_BYTES = AP_REQ.to_bytes()


#: A cache that has opened the genuine ticket: a tampered copy must never be served from it.
WARM = TicketCache()
verify_ap_request(AP_REQ, service=API, keyset=KEYSET, binding=BINDING, now=NOW, tickets=WARM)


def _verdict(ap_bytes: bytes, tickets: TicketCache | None) -> TallyError | None:
    try:
        verify_ap_request(ApRequest.from_bytes(ap_bytes), service=API, keyset=KEYSET, binding=BINDING, now=NOW,
                          tickets=tickets)
    except TallyError as err:
        return err
    return None


def _refusal(ap_bytes: bytes) -> TallyError | None:
    """The error verification gives for ``ap_bytes``, or None when it is accepted: the same with the warm cache."""
    err = _verdict(ap_bytes, None)
    cached = _verdict(ap_bytes, WARM)
    assert type(cached) is type(err), f"with the warm ticket cache: {cached!r}, without: {err!r}"
    assert len(WARM) == 1  # nothing tampered was ever put
    return err


def _flip(data: bytes, pos: int, mask: int) -> bytes:
    return data[:pos] + bytes((data[pos] ^ mask,)) + data[pos + 1:]


def _with_ticket(ticket_bytes: bytes) -> bytes:
    return ApRequest(Ticket.from_bytes(ticket_bytes), AUTHENTICATOR).to_bytes()


def test_untampered_request_is_accepted() -> None:
    assert _refusal(AP_BYTES) is None


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_every_byte_of_the_ticket_flipped_is_refused(mask: int) -> None:
    sealed_at = len(TICKET) - len(AP_REQ.ticket.enc_part)
    for pos in range(len(TICKET)):
        tampered = _flip(TICKET, pos, mask)
        try:
            ap_bytes = _with_ticket(tampered)
        except TallyError:
            continue  # the ticket no longer parses: refused before verification
        err = _refusal(ap_bytes)
        assert err is not None, f"ticket byte {pos} flipped with {mask:#x} was accepted"
        if pos >= sealed_at + HEADER_SIZE:  # nonce, ciphertext, tag
            assert type(err) is IntegrityError, f"ticket byte {pos}: {err.code}"


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_every_byte_of_the_sealed_authenticator_flipped_is_refused(mask: int) -> None:
    for pos in range(len(AUTHENTICATOR)):
        err = _refusal(ApRequest(AP_REQ.ticket, _flip(AUTHENTICATOR, pos, mask)).to_bytes())
        assert err is not None, f"authenticator byte {pos} flipped with {mask:#x} was accepted"
        if pos != 0:  # byte 0 is the version: UNSUPPORTED_VERSION; every other byte is authenticated
            assert type(err) is IntegrityError, f"authenticator byte {pos}: {err.code}"


def test_every_byte_of_the_ap_request_flipped_is_refused() -> None:
    for pos in range(len(AP_BYTES)):
        assert _refusal(_flip(AP_BYTES, pos, 0x01)) is not None, f"AP request byte {pos} flipped was accepted"


@given(st.integers(0, len(AP_BYTES) - 1), st.integers(1, 255))
def test_any_bit_mask_at_any_position_of_the_ap_request_is_refused(pos: int, mask: int) -> None:
    assert _refusal(_flip(AP_BYTES, pos, mask)) is not None


@given(st.integers(0, len(TICKET) - 1), st.integers(1, 255))
def test_any_bit_mask_at_any_position_of_the_ticket_is_refused(pos: int, mask: int) -> None:
    try:
        ap_bytes = _with_ticket(_flip(TICKET, pos, mask))
    except TallyError:
        return
    assert _refusal(ap_bytes) is not None


@given(st.integers(0, len(AUTHENTICATOR) - 1), st.integers(1, 255))
def test_any_bit_mask_at_any_position_of_the_authenticator_is_refused(pos: int, mask: int) -> None:
    assert _refusal(ApRequest(AP_REQ.ticket, _flip(AUTHENTICATOR, pos, mask)).to_bytes()) is not None


@given(st.data())
def test_several_flips_at_once_are_refused(data: st.DataObject) -> None:
    tampered = AP_BYTES
    positions = data.draw(st.lists(st.integers(0, len(AP_BYTES) - 1), min_size=2, max_size=6, unique=True))
    for pos in positions:
        tampered = _flip(tampered, pos, data.draw(st.integers(1, 255)))
    assert _refusal(tampered) is not None


@given(st.integers(0, len(AP_BYTES) - 1))
def test_truncated_or_extended_ap_request_is_refused(cut: int) -> None:
    assert _refusal(AP_BYTES[:cut]) is not None
    assert _refusal(AP_BYTES + AP_BYTES[cut:cut + 1]) is not None
