"""Hypothesis strategies for protocol values: principals, times, nonces, bindings, messages."""

from __future__ import annotations

from hypothesis import strategies as st

from tally_protocol.binding import RequestBinding
from tally_protocol.codes import KeyUsage, TgsOptions, TicketFlags
from tally_protocol.crypto import HEADER, NONCE_SIZE, TAG_SIZE
from tally_protocol.encoding import PROTOCOL_VERSION
from tally_protocol.keys import Key, Keyset
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
)
from tally_protocol.principal import Principal

U32 = 2**32 - 1
U64 = 2**64 - 1

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,30}", fullmatch=True)
realms = st.from_regex(r"[A-Z0-9][A-Z0-9.-]{0,20}", fullmatch=True)
principals = st.builds(Principal, names, realms)
times = st.integers(0, U64)
nonces = st.binary(min_size=16, max_size=16)
keys32 = st.binary(min_size=32, max_size=32)
digests = st.binary(min_size=32, max_size=32)
ticket_flags = st.integers(0, sum(int(f) for f in TicketFlags)).map(TicketFlags)
tgs_options = st.sampled_from(list(TgsOptions))
usages = st.sampled_from(list(KeyUsage))
kvnos = st.integers(0, U32)
short_text = st.text(max_size=40)

bindings = st.builds(
    RequestBinding,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "TGS"]) | short_text,
    host=short_text,
    path=short_text,
    body=digests,
)


@st.composite
def sealed_blobs(draw: st.DrawFn) -> bytes:
    """Bytes shaped like a sealed blob (valid header, arbitrary nonce and ciphertext)."""
    header = HEADER.pack(PROTOCOL_VERSION, draw(usages), draw(kvnos))
    return header + draw(st.binary(min_size=NONCE_SIZE + TAG_SIZE, max_size=NONCE_SIZE + TAG_SIZE + 64))


@st.composite
def enc_ticket_parts(draw: st.DrawFn) -> EncTicketPart:
    start = draw(times)
    end = draw(st.integers(start, U64))
    return EncTicketPart(
        draw(ticket_flags), draw(keys32), draw(principals), draw(times), start, end, draw(times),
        draw(st.binary(min_size=16, max_size=16)),
    )


tickets = st.builds(Ticket, principals, sealed_blobs())
authenticators = st.builds(Authenticator, principals, times, nonces, bindings)
ap_requests = st.builds(ApRequest, tickets, st.binary(max_size=200))
enc_ap_rep_parts = st.builds(EncApRepPart, times, nonces, digests)
pa_enc_timestamps = st.builds(PaEncTimestamp, times)
as_requests = st.builds(
    AsRequest, principals, principals, nonces, times, st.booleans(), keys32, st.binary(max_size=200),
)
as_replies = st.builds(AsReply, principals, tickets, keys32, st.binary(max_size=200))
enc_kdc_rep_parts = st.builds(
    EncKdcRepPart, keys32, nonces, ticket_flags, times, times, times, times, principals,
)
tgs_request_bodies = st.builds(TgsRequestBody, principals, nonces, times, tgs_options)
tgs_requests = st.builds(TgsRequest, st.binary(max_size=200), ap_requests)
tgs_replies = st.builds(TgsReply, principals, tickets, st.binary(max_size=200))


@st.composite
def keysets(draw: st.DrawFn) -> Keyset:
    versions = draw(st.lists(kvnos, min_size=1, max_size=6, unique=True))
    return Keyset(Key(draw(keys32), v) for v in versions)
