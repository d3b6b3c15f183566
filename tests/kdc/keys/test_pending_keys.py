"""Pending key versions: in the keyset at once, issued under only after their delay (new_service_key_delay)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from kdc.key_policy import KeyPolicy
from kdc.master_key import MasterKey
from kdc.records import PrincipalKind
from tally_protocol.errors import InvalidRequest
from tally_protocol.keytab import load_keytab
from tally_protocol.principal import Principal
from tests.kdc.conftest import REALM, T0, FixedClock, Realm, make_realm
from tests.kdc.wire import get_ticket, login

DELAY = 600


def _tgt(realm: Realm) -> Any:
    return login(realm.http, realm.alice, realm.alice_keys.current.material, now=realm.clock.now)


def test_delayed_rotation_returns_a_keyset_holding_the_pending_version(realm: Realm) -> None:
    keys = realm.db.rotate("api", delay_s=DELAY)
    assert keys.versions == [1, 2]
    record = realm.db.get("api")
    assert [k.kvno for k in record.pending(T0)] == [2]
    assert record.current.activate_at == int(T0) + DELAY


def test_kdc_issues_under_the_old_version_until_the_pending_one_activates(realm: Realm) -> None:
    realm.db.rotate("api", delay_s=DELAY)
    assert get_ticket(realm.http, _tgt(realm), realm.api, now=realm.clock.now).ticket.kvno == 1
    realm.clock.advance(DELAY - 1)
    assert get_ticket(realm.http, _tgt(realm), realm.api, now=realm.clock.now).ticket.kvno == 1
    realm.clock.advance(1)
    assert get_ticket(realm.http, _tgt(realm), realm.api, now=realm.clock.now).ticket.kvno == 2


def test_current_key_is_the_newest_active_version(realm: Realm) -> None:
    keys = realm.db.rotate("api", delay_s=DELAY)
    assert realm.db.current_key("api").material == keys.get(1).material
    realm.clock.advance(DELAY)
    assert realm.db.current_key("api").material == keys.get(2).material


def test_exported_keyset_includes_the_pending_version(realm: Realm) -> None:
    from tally_protocol.keytab import dump_keytab

    realm.db.rotate("api", delay_s=DELAY)
    _, keyset = load_keytab(dump_keytab(realm.api, realm.db.keyset("api")))
    assert keyset.versions == [1, 2]


def test_rotation_without_delay_is_active_at_once(realm: Realm) -> None:
    realm.db.rotate("api")
    assert get_ticket(realm.http, _tgt(realm), realm.api, now=realm.clock.now).ticket.kvno == 2


def test_a_second_pending_version_that_activates_first_wins_by_kvno(realm: Realm) -> None:
    realm.db.rotate("api", delay_s=DELAY)
    realm.db.rotate("api", delay_s=60)
    realm.clock.advance(60)
    assert realm.db.get("api").active(realm.clock.now).kvno == 3


def test_pending_krbtgt_version_is_not_used_for_new_tgts_or_renewals(realm: Realm) -> None:
    tgs = Principal.tgs(REALM)
    realm.db.rotate(tgs, delay_s=DELAY)
    tgt = _tgt(realm)
    assert tgt.ticket.kvno == 1
    renewed = get_ticket(realm.http, tgt, tgs, now=realm.clock.now, renew=True)
    assert renewed.ticket.kvno == 1
    realm.clock.advance(DELAY)
    assert get_ticket(realm.http, tgt, tgs, now=realm.clock.now, renew=True).ticket.kvno == 2


def test_a_tgt_under_a_pending_krbtgt_version_is_accepted(realm: Realm) -> None:
    tgs = Principal.tgs(REALM)
    realm.db.rotate(tgs, delay_s=DELAY)
    realm.clock.advance(DELAY)
    tgt = _tgt(realm)  # sealed under version 2
    assert tgt.ticket.kvno == 2
    assert get_ticket(realm.http, tgt, realm.api, now=realm.clock.now).service == realm.api


def test_clients_cannot_have_pending_keys(realm: Realm) -> None:
    with pytest.raises(InvalidRequest, match="single key"):
        realm.db.rotate("alice", delay_s=DELAY)
    assert realm.db.get("alice").kvnos == [1]


@pytest.mark.parametrize("delay", [-1, 31 * 86400])
def test_out_of_range_delays_are_refused(realm: Realm, delay: int) -> None:
    with pytest.raises(InvalidRequest, match="delay"):
        realm.db.rotate("api", delay_s=delay)


def test_realm_default_delay_applies_to_services_only() -> None:
    policy = KeyPolicy(new_service_key_delay_s=300)
    assert policy.default_delay_s(PrincipalKind.SERVICE) == 300
    assert policy.default_delay_s(PrincipalKind.TGS) == 0
    assert policy.default_delay_s(PrincipalKind.CLIENT) == 0


def test_app_reads_the_default_delay_from_its_configuration(fake_redis: redis.Redis, master_key: MasterKey,
                                                            clock: FixedClock, tmp_path: Any) -> None:
    r = make_realm(fake_redis, master_key, clock, tmp_path, TALLY_NEW_SERVICE_KEY_DELAY_S=120)
    from kdc.state import kdc_state

    assert kdc_state(r.app).db.key_policy.new_service_key_delay_s == 120


def test_records_written_before_pending_keys_existed_still_read(realm: Realm, fake_redis: redis.Redis) -> None:
    import json

    key = f"tally:{{{REALM}}}:p:api"
    doc = json.loads(fake_redis.get(key))  # type: ignore[arg-type]
    doc["v"] = 1
    for k in doc["keys"]:
        del k["activate_at"]
    fake_redis.set(key, json.dumps(doc))
    record = realm.db.get("api")
    assert record.current.activate_at == record.current.created
    assert realm.db.current_key("api").material == realm.api_keys.current.material
