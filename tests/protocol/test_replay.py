"""Replay keys come only from authenticated fields, are scoped by service, and live as long as the skew window."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally_protocol.errors import ReplayCacheRecovering, ReplayDetected, StoreUnavailable
from tally_protocol.messages import ApRequest, Ticket
from tally_protocol.principal import Principal
from tally_protocol.replay import REPLAY_KEY_SIZE, claim_or_reject, refuse_before_recovered, replay_key, replay_ttl_ms
from tally_protocol.verify import VerifyPolicy, verify_ap_request

from . import strategies as s
from .realm import (
    ALICE,
    API,
    BINDING,
    BOB,
    NOW,
    REALM,
    DeterministicRandom,
    SetReplayCache,
    ap_request,
    issue_ticket,
    service_keyset,
)

SKEW = VerifyPolicy().max_skew_s
MARGIN = VerifyPolicy().replay_margin_s


def test_replay_key_is_the_same_for_every_presentation_of_one_authenticator() -> None:
    # The same authenticator, carried in a re-sealed ticket and a re-sealed
    # authenticator blob (different bytes on the wire), has one replay key.
    rng = DeterministicRandom()
    keyset = service_keyset()
    issued = issue_ticket(rng, keyset.current)
    first = ap_request(rng, issued)
    auth = first.open_authenticator(issued.session_key)
    resealed_ticket = Ticket.issue(API, keyset.current, issued.part, nonce=rng(12))
    second = ApRequest.create(resealed_ticket, issued.session_key, auth, nonce=rng(12))
    assert first.to_bytes() != second.to_bytes()
    keys = {verify_ap_request(r, service=API, keyset=keyset, binding=BINDING, now=NOW).replay_key
            for r in (first, second)}
    assert len(keys) == 1


@given(s.principals, s.principals, s.times, s.nonces)
def test_replay_key_is_a_fixed_size_digest(service: Principal, client: Principal, ctime: int, nonce: bytes) -> None:
    assert len(replay_key(service, client, ctime, nonce)) == REPLAY_KEY_SIZE


@given(s.principals, s.times, s.nonces)
def test_replay_key_is_scoped_by_service(client: Principal, ctime: int, nonce: bytes) -> None:
    assert replay_key(API, client, ctime, nonce) != replay_key(Principal("files", REALM), client, ctime, nonce)


@given(s.times, s.nonces, s.nonces)
def test_replay_key_differs_per_nonce(ctime: int, nonce: bytes, other: bytes) -> None:
    if nonce != other:
        assert replay_key(API, ALICE, ctime, nonce) != replay_key(API, ALICE, ctime, other)


@given(s.times, s.nonces)
def test_replay_key_differs_per_client_and_time(ctime: int, nonce: bytes) -> None:
    base = replay_key(API, ALICE, ctime, nonce)
    assert base != replay_key(API, BOB, ctime, nonce)
    assert base != replay_key(API, ALICE, ctime ^ 1, nonce)


def test_replay_key_is_unambiguous_across_field_boundaries() -> None:
    # "a" + "b@R" and "a@R" + "b" style ambiguities are ruled out by length framing.
    assert replay_key(Principal("ab", REALM), ALICE, 1, bytes(16)) != replay_key(Principal("a", REALM), ALICE, 1, bytes(16))


def test_replay_keys_spread_evenly() -> None:
    # Keys are uniform hashes, so they spread over a Redis Cluster's slots.
    rng = DeterministicRandom(b"spread")
    buckets = [0] * 16
    for _ in range(4096):
        buckets[replay_key(API, ALICE, int(NOW), rng(16))[0] >> 4] += 1
    assert min(buckets) > 256 - 64 and max(buckets) < 256 + 64


@given(st.integers(-SKEW, SKEW), st.floats(0, 1, exclude_max=True))
def test_replay_entry_outlives_the_authenticators_acceptance_window(offset: int, fraction: float) -> None:
    now = NOW + fraction
    ctime = int(NOW) + offset
    ttl_ms = replay_ttl_ms(ctime, now, SKEW, MARGIN)
    # Still recorded at the last instant the authenticator would pass the skew check...
    assert now + ttl_ms / 1000 >= ctime + SKEW + MARGIN - 0.001
    # ...and never longer than the whole window plus the margin: the cache stays bounded.
    assert 1000 <= ttl_ms <= (2 * SKEW + MARGIN) * 1000


def test_replay_ttl_is_at_least_one_second() -> None:
    assert replay_ttl_ms(int(NOW) - SKEW - MARGIN, NOW, SKEW, MARGIN) == 1000


def test_second_claim_of_the_same_key_is_a_replay() -> None:
    cache = SetReplayCache()
    key = replay_key(API, ALICE, int(NOW), bytes(16))
    claim_or_reject(cache, key, 1000, ctime=int(NOW), max_skew_s=SKEW)
    with pytest.raises(ReplayDetected) as info:
        claim_or_reject(cache, key, 1000, ctime=int(NOW), max_skew_s=SKEW)
    assert info.value.code == "REPLAY_DETECTED"


class _BrokenCache:
    def claim(self, key: bytes, ttl_ms: int, *, ctime: int, max_skew_s: int) -> bool:
        raise StoreUnavailable()


def test_store_failure_propagates_so_nothing_is_accepted() -> None:
    with pytest.raises(StoreUnavailable):
        claim_or_reject(_BrokenCache(), bytes(16), 1000, ctime=int(NOW), max_skew_s=SKEW)


def test_authenticator_dated_before_birth_plus_skew_is_refused_as_recovering() -> None:
    with pytest.raises(ReplayCacheRecovering) as info:
        refuse_before_recovered(NOW, int(NOW) + SKEW - 1, SKEW, NOW)
    assert (info.value.code, info.value.status_hint, info.value.data["retry_after"]) == (
        "REPLAY_CACHE_RECOVERING", 503, SKEW)


def test_authenticator_dated_from_birth_plus_skew_is_not_refused() -> None:
    refuse_before_recovered(NOW, int(NOW) + SKEW, SKEW, NOW + SKEW)


def test_recovering_retry_after_is_at_least_one_second() -> None:
    with pytest.raises(ReplayCacheRecovering) as info:
        refuse_before_recovered(NOW, int(NOW), SKEW, NOW + SKEW)
    assert info.value.data["retry_after"] == 1
