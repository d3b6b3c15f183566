"""Superseded key versions are purged once no ticket under them can still be valid (fixed clock)."""

from __future__ import annotations

from typing import Any

import redis

from kdc.exchange import TicketPolicy
from kdc.key_policy import KeyPolicy
from kdc.master_key import MasterKey
from kdc.principal_db import PrincipalDB
from tally_protocol.principal import Principal
from tests.kdc.conftest import REALM, FixedClock, Realm, cheap_params, make_realm
from tests.kdc.wire import get_ticket, login

POLICY = KeyPolicy(service_retention_s=1000, tgs_retention_s=5000)


def _db(store: redis.Redis, master_key: MasterKey, clock: FixedClock) -> PrincipalDB:
    db = PrincipalDB(store, REALM, master_key, clock, password_params=cheap_params, key_policy=POLICY)
    db.init_realm()
    db.add_service("api")
    return db


def test_superseded_version_is_kept_until_the_retention_has_passed(fake_redis: redis.Redis, master_key: MasterKey,
                                                                   clock: FixedClock) -> None:
    db = _db(fake_redis, master_key, clock)
    db.rotate("api")
    clock.advance(999)
    assert db.purge_old_keys("api") == 0 and db.get("api").kvnos == [1, 2]
    clock.advance(1)
    assert db.purge_old_keys("api") == 1 and db.get("api").kvnos == [2]


def test_retention_counts_from_activation_of_the_newer_version(fake_redis: redis.Redis, master_key: MasterKey,
                                                               clock: FixedClock) -> None:
    db = _db(fake_redis, master_key, clock)
    db.rotate("api", delay_s=500)
    clock.advance(1000)  # version 1 was issued under until +500
    assert db.purge_old_keys() == 0
    clock.advance(500)
    assert db.purge_old_keys() == 1


def test_rotation_purges_expired_versions_itself(fake_redis: redis.Redis, master_key: MasterKey,
                                                 clock: FixedClock) -> None:
    db = _db(fake_redis, master_key, clock)
    db.rotate("api")
    clock.advance(1000)
    assert db.rotate("api").versions == [2, 3]


def test_active_and_pending_versions_are_never_purged(fake_redis: redis.Redis, master_key: MasterKey,
                                                     clock: FixedClock) -> None:
    db = _db(fake_redis, master_key, clock)
    db.rotate("api", delay_s=10**6)
    clock.advance(10**5)
    assert db.purge_old_keys() == 0 and db.get("api").kvnos == [1, 2]


def test_krbtgt_versions_are_kept_for_the_renewable_life(fake_redis: redis.Redis, master_key: MasterKey,
                                                         clock: FixedClock) -> None:
    db = _db(fake_redis, master_key, clock)
    tgs = Principal.tgs(REALM)
    db.rotate(tgs)
    clock.advance(4999)
    assert db.purge_old_keys() == 0
    clock.advance(1)
    assert db.purge_old_keys() == 1 and db.get(tgs).kvnos == [2]


def test_clients_are_never_swept(fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock) -> None:
    db = _db(fake_redis, master_key, clock)
    db.add_client("alice")
    clock.advance(10**7)
    assert db.purge_old_keys() == 0 and db.get("alice").kvnos == [1]


def test_retention_follows_the_ticket_lifetimes_and_skew() -> None:
    policy = KeyPolicy.for_tickets(TicketPolicy(tgt_lifetime_s=3600, renewable_lifetime_s=86400,
                                                service_ticket_lifetime_s=1800), max_skew_s=300)
    assert (policy.service_retention_s, policy.tgs_retention_s) == (2100, 86700)
    assert policy.longest_ticket_s == 86700


def test_key_policy_may_be_resolved_at_each_use(fake_redis: redis.Redis, master_key: MasterKey,
                                                clock: FixedClock) -> None:
    policies = [POLICY]
    db = PrincipalDB(fake_redis, REALM, master_key, clock, key_policy=lambda: policies[0])
    db.init_realm()
    db.add_service("api")
    db.rotate("api")
    clock.advance(1000)
    policies[0] = KeyPolicy(service_retention_s=2000)  # a longer lifetime was configured meanwhile
    assert db.purge_old_keys() == 0


def test_tgt_from_before_a_krbtgt_rotation_works_until_it_expires(fake_redis: redis.Redis, master_key: MasterKey,
                                                                  clock: FixedClock, tmp_path: Any) -> None:
    r: Realm = make_realm(fake_redis, master_key, clock, tmp_path, TALLY_TGT_LIFETIME_S=3600)
    tgt = login(r.http, r.alice, r.alice_keys.current.material, now=clock.now)
    r.db.rotate(Principal.tgs(REALM))
    clock.advance(3000)
    from kdc.state import kdc_state

    assert kdc_state(r.app).db.purge_old_keys() == 0  # the app's retention outlasts the TGT
    assert get_ticket(r.http, tgt, r.api, now=clock.now).service == r.api
    renewed = get_ticket(r.http, tgt, Principal.tgs(REALM), now=clock.now, renew=True)
    assert (tgt.ticket.kvno, renewed.ticket.kvno) == (1, 2)


def test_a_policy_allowing_longer_service_tickets_keeps_old_service_keys_longer(
    fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock
) -> None:
    from kdc.admin.policies import EffectivePolicy, PolicyOverride, PolicyStore, key_policy_source
    from kdc.lockout import LockoutPolicy

    base = TicketPolicy(tgt_lifetime_s=3600, renewable_lifetime_s=0, service_ticket_lifetime_s=3600)
    policies = PolicyStore(fake_redis, REALM, EffectivePolicy(base, LockoutPolicy()))
    db = PrincipalDB(fake_redis, REALM, master_key, clock, password_params=cheap_params,
                     key_policy=key_policy_source(policies, max_skew_s=300))
    db.init_realm()
    db.add_service("api")
    # One client may now hold day-long service tickets: keys must outlive them.
    policies.set_override(Principal("alice", REALM), PolicyOverride(service_ticket_lifetime_s=86400))
    db.rotate("api")
    clock.advance(3600 + 300)
    assert db.purge_old_keys("api") == 0
    clock.advance(86400 - 3600)
    assert db.purge_old_keys("api") == 1
