"""The realm's revocation list: principal revoked-before times, ticket ids, a cache of at most cache_s."""

from __future__ import annotations

import os
from typing import Any

import pytest
import redis

from kdc.revocation import RevocationList
from tally_protocol.errors import InvalidRequest, StoreUnavailable
from tally_protocol.principal import Principal
from tests.kdc.conftest import REALM, T0, FixedClock

ALICE = Principal("alice", REALM)
BOB = Principal("bob", REALM)
TICKET = bytes(range(16))


class CountingRedis:
    """A Redis client that counts the GETs made through it (the hot-path cost)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self.gets = 0

    def get(self, key: str) -> Any:
        self.gets += 1
        return self._client.get(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _lists(store: redis.Redis, clock: FixedClock, cache_s: float = 1.0) -> tuple[RevocationList, RevocationList]:
    admin = RevocationList(store, REALM, clock, cache_s=0)
    service = RevocationList(store, REALM, clock, cache_s=cache_s)
    return admin, service


def test_tickets_from_logins_before_the_revocation_are_revoked(any_redis: redis.Redis, clock: FixedClock) -> None:
    admin, service = _lists(any_redis, clock)
    admin.revoke_principal(ALICE, before=int(T0))
    assert service.is_revoked(ALICE, int(T0) - 1, TICKET)
    assert not service.is_revoked(ALICE, int(T0), TICKET)
    assert not service.is_revoked(BOB, int(T0) - 1, TICKET)


def test_default_revocation_covers_the_current_second(any_redis: redis.Redis, clock: FixedClock) -> None:
    admin, _ = _lists(any_redis, clock)
    clock.advance(0.5)
    assert admin.revoke_principal(ALICE) == int(T0) + 1
    assert admin.is_revoked(ALICE, int(T0), TICKET)


def test_a_revoked_ticket_id_is_refused_until_its_end(any_redis: redis.Redis, clock: FixedClock) -> None:
    admin, service = _lists(any_redis, clock)
    admin.revoke_ticket(TICKET, int(T0) + 100)
    assert service.is_revoked(ALICE, int(T0), TICKET)
    assert not service.is_revoked(ALICE, int(T0), os.urandom(16))
    clock.advance(100)
    assert not service.is_revoked(ALICE, int(T0), TICKET)


def test_ended_ticket_ids_are_pruned_so_the_list_stays_bounded(any_redis: redis.Redis, clock: FixedClock) -> None:
    admin, _ = _lists(any_redis, clock)
    for _ in range(5):
        admin.revoke_ticket(os.urandom(16), int(clock.now) + 10)
    clock.advance(10)
    admin.revoke_ticket(TICKET, int(clock.now) + 10)
    key = f"tally:{{{REALM}:rev}}:t"
    assert any_redis.zcard(key) == 1
    assert 0 < any_redis.ttl(key)


def test_old_principal_entries_are_dropped_after_the_longest_ticket_life(any_redis: redis.Redis,
                                                                          clock: FixedClock) -> None:
    admin = RevocationList(any_redis, REALM, clock, cache_s=0, longest_ticket_s=1000)
    admin.revoke_principal(ALICE)
    clock.advance(1002)
    admin.revoke_principal(BOB)
    assert any_redis.hkeys(f"tally:{{{REALM}:rev}}:p") == [str(BOB).encode()]


def test_a_service_sees_a_revocation_within_its_cache_time(any_redis: redis.Redis, clock: FixedClock) -> None:
    admin, service = _lists(any_redis, clock, cache_s=1.0)
    assert not service.is_revoked(ALICE, int(T0) - 10, TICKET)
    admin.revoke_principal(ALICE)
    clock.advance(0.9)
    assert not service.is_revoked(ALICE, int(T0) - 10, TICKET)  # the local copy, at most one second old
    clock.advance(0.1)
    assert service.is_revoked(ALICE, int(T0) - 10, TICKET)


def test_the_hot_path_costs_at_most_one_get_per_cache_period(fake_redis: redis.Redis, clock: FixedClock) -> None:
    counting = CountingRedis(fake_redis)
    service = RevocationList(counting, REALM, clock, cache_s=1.0)  # type: ignore[arg-type]
    for _ in range(100):
        service.is_revoked(ALICE, int(T0), TICKET)
        clock.advance(0.05)  # 100 checks over 5 seconds
    assert counting.gets == 5


def test_the_list_is_only_reloaded_when_its_version_moved(fake_redis: redis.Redis, clock: FixedClock) -> None:
    service = RevocationList(fake_redis, REALM, clock, cache_s=1.0)
    first = service.snapshot()
    clock.advance(1)
    assert service.snapshot() is first
    RevocationList(fake_redis, REALM, clock).revoke_principal(ALICE)
    clock.advance(1)
    assert service.snapshot() is not first


def test_a_clock_stepping_back_refreshes_the_copy(fake_redis: redis.Redis, clock: FixedClock) -> None:
    admin, service = _lists(fake_redis, clock, cache_s=1.0)
    service.is_revoked(ALICE, 0, TICKET)
    admin.revoke_principal(ALICE, before=int(T0))
    clock.advance(-5)
    assert service.is_revoked(ALICE, 0, TICKET)


def test_an_unreachable_store_fails_closed(down_redis: redis.Redis, clock: FixedClock) -> None:
    service = RevocationList(down_redis, REALM, clock)
    with pytest.raises(StoreUnavailable):
        service.is_revoked(ALICE, int(T0), TICKET)
    with pytest.raises(StoreUnavailable):
        service.revoke_principal(ALICE)


@pytest.mark.parametrize("call", [
    lambda r: r.revoke_principal(Principal("alice", "OTHER.TEST")),
    lambda r: r.revoke_ticket(b"short", int(T0) + 10),
    lambda r: r.revoke_ticket(TICKET, int(T0)),
])
def test_bad_revocations_are_refused(fake_redis: redis.Redis, clock: FixedClock, call: Any) -> None:
    with pytest.raises(InvalidRequest):
        call(RevocationList(fake_redis, REALM, clock))
