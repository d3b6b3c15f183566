"""Policies: resolution (principal, realm default, configuration) and their effect on the KDC's tickets."""

from __future__ import annotations

import pytest
import redis

from kdc.admin.extension import admin_state
from kdc.admin.policies import EffectivePolicy, PolicyOverride, PolicyStore
from kdc.exchange import TicketPolicy
from kdc.lockout import LockoutPolicy
from tally_protocol.errors import ConfigurationError, InvalidRequest
from tally_protocol.principal import Principal
from tests.kdc.admin.conftest import BASE
from tests.kdc.conftest import REALM, T0, Realm
from tests.kdc.wire import get_ticket, login, send_as

ALICE, API, BOB = Principal("alice", REALM), Principal("api", REALM), Principal("bob", REALM)
WRONG = bytes(32)


@pytest.fixture
def store(fake_redis: redis.Redis) -> PolicyStore:
    return PolicyStore(fake_redis, REALM, BASE)


def policies(realm: Realm) -> PolicyStore:
    return admin_state(realm.app).policies


def test_without_any_policy_the_configuration_applies(store: PolicyStore) -> None:
    assert store.resolve(ALICE) == BASE


def test_the_realm_default_overrides_the_configuration_field_by_field(store: PolicyStore) -> None:
    store.set_default(PolicyOverride(tgt_lifetime_s=3600, lockout_threshold=3))
    effective = store.resolve(ALICE)
    assert effective.ticket == TicketPolicy(3600, BASE.ticket.renewable_lifetime_s,
                                            BASE.ticket.service_ticket_lifetime_s)
    assert effective.lockout == LockoutPolicy(3, BASE.lockout.window_s, BASE.lockout.duration_s)


def test_a_principal_override_wins_over_the_realm_default(store: PolicyStore) -> None:
    store.set_default(PolicyOverride(tgt_lifetime_s=3600, renewable_lifetime_s=7200))
    store.set_override(ALICE, PolicyOverride(tgt_lifetime_s=600))
    alice, bob = store.resolve(ALICE), store.resolve(BOB)
    assert (alice.ticket.tgt_lifetime_s, alice.ticket.renewable_lifetime_s) == (600, 7200)
    assert bob.ticket.tgt_lifetime_s == 3600


def test_an_empty_override_removes_it(store: PolicyStore) -> None:
    store.set_override(ALICE, PolicyOverride(tgt_lifetime_s=600))
    store.set_override(ALICE, PolicyOverride())
    assert store.overrides() == {} and store.resolve(ALICE) == BASE


def test_resolving_costs_one_round_trip(store: PolicyStore, fake_redis: redis.Redis,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = fake_redis.execute_command

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(str(args[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(fake_redis, "execute_command", counting)
    store.resolve_pair(ALICE, API)
    assert calls == ["HMGET"]


def test_a_service_ticket_lives_the_shorter_of_client_and_service_lifetimes(store: PolicyStore) -> None:
    store.set_override(ALICE, PolicyOverride(service_ticket_lifetime_s=1800))
    store.set_override(API, PolicyOverride(service_ticket_lifetime_s=900))
    client, service = store.resolve_pair(ALICE, API)
    assert client.for_service(service).service_ticket_lifetime_s == 900
    client, service = store.resolve_pair(BOB, API)
    assert client.for_service(service).service_ticket_lifetime_s == 900
    assert store.resolve_pair(ALICE, BOB)[0].for_service(store.resolve(BOB)).service_ticket_lifetime_s == 1800


@pytest.mark.parametrize("fields", [{"tgt_lifetime_s": 10}, {"lockout_threshold": 0},
                                    {"renewable_lifetime_s": -1}, {"tgt_lifetime_s": "600"},
                                    {"tgt_lifetime_s": True}, {"ticket_lifetime": 600}])
def test_out_of_bounds_or_unknown_fields_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        PolicyOverride.from_dict(fields)


def test_a_corrupt_stored_policy_is_a_configuration_error(store: PolicyStore, fake_redis: redis.Redis) -> None:
    fake_redis.hset(store.key, "alice", "{not json")
    with pytest.raises(ConfigurationError):
        store.resolve(ALICE)


def test_longest_lifetimes_cover_every_override(store: PolicyStore) -> None:
    store.set_override(API, PolicyOverride(service_ticket_lifetime_s=20 * 86400))
    assert store.longest().service_ticket_lifetime_s == 20 * 86400
    assert store.longest().tgt_lifetime_s == BASE.ticket.tgt_lifetime_s


def test_effective_policy_round_trips_through_json() -> None:
    assert EffectivePolicy.from_dict(BASE.to_dict()) == BASE


# -- the KDC applies them (fixed clock) -----------------------------------------------


def test_the_as_exchange_issues_the_clients_tgt_lifetime(admin_realm: Realm) -> None:
    policies(admin_realm).set_override(ALICE, PolicyOverride(tgt_lifetime_s=1200, renewable_lifetime_s=0))
    tgt = login(admin_realm.http, ALICE, admin_realm.alice_keys.current.material, now=T0)
    assert (tgt.endtime, tgt.renew_till) == (T0 + 1200, 0)


def test_the_realm_default_sets_the_tgt_lifetime_of_everyone_else(admin_realm: Realm) -> None:
    policies(admin_realm).set_default(PolicyOverride(tgt_lifetime_s=3000, renewable_lifetime_s=6000))
    tgt = login(admin_realm.http, ALICE, admin_realm.alice_keys.current.material, now=T0)
    assert (tgt.endtime, tgt.renew_till) == (T0 + 3000, T0 + 6000)


def test_the_tgs_exchange_issues_the_shorter_service_ticket_lifetime(admin_realm: Realm) -> None:
    policies(admin_realm).set_override(ALICE, PolicyOverride(service_ticket_lifetime_s=1800))
    policies(admin_realm).set_override(API, PolicyOverride(service_ticket_lifetime_s=900))
    tgt = login(admin_realm.http, ALICE, admin_realm.alice_keys.current.material, now=T0)
    assert get_ticket(admin_realm.http, tgt, API, now=T0).endtime == T0 + 900


def test_the_client_override_shortens_service_tickets_for_every_service(admin_realm: Realm) -> None:
    policies(admin_realm).set_override(ALICE, PolicyOverride(service_ticket_lifetime_s=300))
    tgt = login(admin_realm.http, ALICE, admin_realm.alice_keys.current.material, now=T0)
    assert get_ticket(admin_realm.http, tgt, API, now=T0).endtime == T0 + 300


def test_renewal_follows_the_clients_tgt_lifetime(admin_realm: Realm) -> None:
    tgt = login(admin_realm.http, ALICE, admin_realm.alice_keys.current.material, now=T0)
    policies(admin_realm).set_override(ALICE, PolicyOverride(tgt_lifetime_s=700))
    admin_realm.clock.advance(100)
    renewed = get_ticket(admin_realm.http, tgt, tgt.service, now=T0 + 100, renew=True)
    assert renewed.endtime == T0 + 100 + 700


def test_a_lockout_override_locks_the_principal_at_its_own_threshold(admin_realm: Realm) -> None:
    policies(admin_realm).set_override(BOB, PolicyOverride(lockout_threshold=2, lockout_duration_s=60))
    answers = [send_as(admin_realm.http, BOB, WRONG, now=T0)[1] for _ in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert answers[2].get_json()["retry_after"] == 60
    # alice keeps the configured threshold (5): two failures lock nothing
    for _ in range(2):
        assert send_as(admin_realm.http, ALICE, WRONG, now=T0)[1].status_code == 401
    assert login(admin_realm.http, ALICE, admin_realm.alice_keys.current.material, now=T0).client == ALICE
