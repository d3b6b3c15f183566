"""The AS and TGS exchanges batch their reads and keep decoded records, keys and policies in process:
every change an administrator makes is applied by the very next exchange of the same warm KDC, and the
exchanges cost the round trips docs/protocol.md states."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.connection import Connection

from client_sdk.flow import Credential
from kdc.admin.policies import PolicyOverride
from kdc.master_key import MasterKey
from kdc.principal_db import PrincipalDB
from kdc.revocation import RevocationList
from tally_protocol.errors import ConfigurationError
from tally_protocol.principal import Principal
from tests.kdc.conftest import REALM, FixedClock, Realm, make_realm
from tests.kdc.wire import get_ticket, login, post, send_as, send_tgs

TGS = Principal.tgs(REALM)


@pytest.fixture
def warm(real_redis: redis.Redis, master_key: MasterKey, clock: FixedClock, tmp_path: Any) -> Realm:
    """A realm on the real redis-server whose KDC has already served one AS and one TGS exchange."""
    realm = make_realm(real_redis, master_key, clock, tmp_path)
    get_ticket(realm.http, login_alice(realm), realm.api, now=clock.now)
    return realm


def login_alice(realm: Realm, material: bytes | None = None) -> Credential:
    return login(realm.http, realm.alice, material or realm.alice_keys.current.material, now=realm.clock.now)


def error(response: Any) -> str:
    return str(response.get_json()["error"])


def test_a_client_disabled_after_its_login_gets_no_further_ticket_or_login(warm: Realm) -> None:
    tgt = login_alice(warm)
    warm.db.disable("alice")
    assert error(send_tgs(warm.http, tgt, warm.api, now=warm.clock.now)[1]) == "PRINCIPAL_DISABLED"
    assert error(send_as(warm.http, warm.alice, warm.alice_keys.current.material, now=warm.clock.now)[1]) == \
        "PRINCIPAL_DISABLED"


def test_a_deleted_client_can_no_longer_log_in(warm: Realm) -> None:
    warm.db.delete("alice")
    assert error(send_as(warm.http, warm.alice, warm.alice_keys.current.material, now=warm.clock.now)[1]) == \
        "PREAUTH_FAILED"


def test_a_rotated_client_key_replaces_the_old_one_at_once(warm: Realm) -> None:
    new = warm.db.rotate("alice").current
    assert error(send_as(warm.http, warm.alice, warm.alice_keys.current.material, now=warm.clock.now)[1]) == \
        "PREAUTH_FAILED"
    login_alice(warm, new.material)


def test_a_service_disabled_after_a_ticket_gets_no_further_ticket(warm: Realm) -> None:
    tgt = login_alice(warm)
    warm.db.disable("api")
    assert error(send_tgs(warm.http, tgt, warm.api, now=warm.clock.now)[1]) == "PRINCIPAL_DISABLED"


def test_the_next_service_ticket_is_sealed_under_a_rotated_service_key(warm: Realm) -> None:
    tgt = login_alice(warm)
    keys = warm.db.rotate("api")
    ticket = get_ticket(warm.http, tgt, warm.api, now=warm.clock.now)
    assert ticket.ticket.kvno == keys.current.kvno == 2
    assert ticket.ticket.open(keys).client == warm.alice


def test_the_next_tgt_is_sealed_under_a_rotated_krbtgt_key_and_older_tgts_still_work(warm: Realm) -> None:
    old = login_alice(warm)
    keys = warm.db.rotate(TGS)
    new = login_alice(warm)
    assert (old.ticket.kvno, new.ticket.kvno) == (1, 2)
    assert new.ticket.open(keys).client == warm.alice
    get_ticket(warm.http, old, warm.api, now=warm.clock.now)
    get_ticket(warm.http, new, warm.api, now=warm.clock.now)


def test_a_tgt_is_opened_once_and_its_next_requests_reuse_it(warm: Realm) -> None:
    tgt = login_alice(warm)
    get_ticket(warm.http, tgt, warm.api, now=warm.clock.now)
    tgts = warm.app.extensions["tally_kdc"].tgts
    assert len(tgts) == 2  # the fixture's TGT and this one
    get_ticket(warm.http, tgt, warm.api, now=warm.clock.now)
    assert len(tgts) == 2


def test_an_opened_tgt_is_refused_once_its_krbtgt_version_is_gone(warm: Realm) -> None:
    tgt = login_alice(warm)
    get_ticket(warm.http, tgt, warm.api, now=warm.clock.now)  # opened and kept
    warm.db.rotate(TGS)
    warm.db._update(TGS, lambda record, _now, _wrap: record.with_changes(keys=record.keys[-1:]))
    assert error(send_tgs(warm.http, tgt, warm.api, now=warm.clock.now)[1]) == "UNKNOWN_KEY_VERSION"


def test_an_opened_tgt_is_refused_once_it_expires(warm: Realm) -> None:
    tgt = login_alice(warm)
    get_ticket(warm.http, tgt, warm.api, now=warm.clock.now)
    warm.clock.now = tgt.endtime
    assert error(send_tgs(warm.http, tgt, warm.api, now=warm.clock.now)[1]) == "TICKET_EXPIRED"


def test_a_changed_policy_applies_to_the_next_ticket(warm: Realm) -> None:
    policies = warm.app.extensions["tally_admin"].policies
    policies.set_override(warm.alice, PolicyOverride(tgt_lifetime_s=600))
    assert login_alice(warm).endtime == int(warm.clock.now) + 600
    policies.set_default(PolicyOverride(service_ticket_lifetime_s=300))
    ticket = get_ticket(warm.http, login_alice(warm), warm.api, now=warm.clock.now)
    assert ticket.endtime == int(warm.clock.now) + 300


def test_a_revoked_login_buys_no_further_ticket(warm: Realm) -> None:
    tgt = login_alice(warm)
    RevocationList(warm.db._redis, REALM, warm.clock).revoke_principal(warm.alice)
    assert error(send_tgs(warm.http, tgt, warm.api, now=warm.clock.now)[1]) == "TICKET_REVOKED"


def test_keys_unwrapped_under_one_master_keyring_are_not_reused_under_another(warm: Realm) -> None:
    warm.db.current_key("alice")  # unwrapped and kept under the realm's master key
    stranger = warm.db.with_master_key(MasterKey.generate())
    with pytest.raises(ConfigurationError):
        stranger.current_key("alice")


def test_a_record_rewritten_by_hand_is_read_as_stored(warm: Realm, real_redis: redis.Redis) -> None:
    real_redis.set(f"tally:{{{REALM}}}:p:alice", b"{not a record")
    response = send_as(warm.http, warm.alice, warm.alice_keys.current.material, now=warm.clock.now)[1]
    assert response.status_code == 500 and error(response) == "CONFIGURATION_ERROR"


class RoundTrips:
    """Counts the writes redis-py makes to the server: one per round trip."""

    def __init__(self) -> None:
        self.count = 0


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[RoundTrips]:
    trips = RoundTrips()
    send = Connection.send_packed_command

    def counting(self: Connection, command: Any, check_health: bool = True) -> None:
        trips.count += 1
        send(self, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counting)
    yield trips


def test_an_as_exchange_costs_three_round_trips(warm: Realm, round_trips: RoundTrips) -> None:
    login_alice(warm)  # reads and counters, the replay claim, the audit record
    assert round_trips.count == 3


def test_a_tgs_exchange_costs_four_round_trips(warm: Realm, round_trips: RoundTrips) -> None:
    tgt = login_alice(warm)
    round_trips.count = 0
    get_ticket(warm.http, tgt, warm.api, now=warm.clock.now)  # + counter and reads after the claim
    assert round_trips.count == 4


def test_a_limited_address_hears_429_whatever_its_body(fake_redis: redis.Redis, master_key: MasterKey,
                                                        clock: FixedClock, tmp_path: Any) -> None:
    r = make_realm(fake_redis, master_key, clock, tmp_path, TALLY_RATE_LIMIT_REQUESTS=1)
    assert post(r.http, "/v1/tgs", {"tgs_req": "!!"}).status_code == 400
    assert error(post(r.http, "/v1/tgs", {"tgs_req": "!!"})) == "RATE_LIMITED"
    assert error(post(r.http, "/v1/as", {})) == "RATE_LIMITED"


def test_a_success_after_no_failure_writes_no_lockout_key(warm: Realm, real_redis: redis.Redis) -> None:
    login_alice(warm)
    assert real_redis.keys("tally:lock:*") == []


def test_the_store_reads_records_as_stored(fake_redis: redis.Redis, master_key: MasterKey,
                                           clock: FixedClock) -> None:
    db = PrincipalDB(fake_redis, REALM, master_key, clock)
    db.init_realm()
    db.add_service("api")
    first = db.get("api")
    assert db.get("api") is first  # decoded once
    db.disable("api")
    assert db.get("api").disabled and not first.disabled
