from __future__ import annotations

import pytest
import redis

from kdc.master_key import MasterKey
from kdc.principal_db import PrincipalDB
from kdc.records import PrincipalKind
from tally_protocol.crypto import derive_password_key
from tally_protocol.errors import (
    AlreadyExists,
    ConfigurationError,
    InvalidPrincipal,
    InvalidRequest,
    NotFound,
    PolicyRefused,
    StoreUnavailable,
)
from tally_protocol.keys import PasswordParams
from tally_protocol.principal import Principal
from tests.kdc.conftest import REALM, FixedClock, cheap_params


@pytest.fixture
def db(any_redis: redis.Redis, master_key: MasterKey, clock: FixedClock) -> PrincipalDB:
    db = PrincipalDB(any_redis, REALM, master_key, clock, password_params=cheap_params)
    db.init_realm()
    return db


def test_init_realm_creates_the_ticket_granting_principal(db: PrincipalDB) -> None:
    record = db.get(f"krbtgt/{REALM}")
    assert record.kind is PrincipalKind.TGS and record.kvnos == [1] and not record.disabled
    assert db.realm_exists()
    assert PrincipalDB.known_realms(db._redis) == [REALM]


def test_init_realm_twice_is_refused(db: PrincipalDB) -> None:
    with pytest.raises(AlreadyExists):
        db.init_realm()


def test_added_client_key_round_trips_through_the_store(db: PrincipalDB) -> None:
    keys = db.add_client("alice")
    assert keys is not None
    assert db.current_key("alice@EXAMPLE.TEST").material == keys.current.material


def test_stored_record_holds_no_plaintext_key(db: PrincipalDB, any_redis: redis.Redis) -> None:
    keys = db.add_service("api")
    raw = any_redis.get(f"tally:{{{REALM}}}:p:api")
    assert raw is not None and keys.current.material not in raw
    assert keys.current.material.hex().encode() not in raw


def test_record_copied_to_another_name_does_not_unwrap(db: PrincipalDB, any_redis: redis.Redis) -> None:
    db.add_service("api")
    db.add_service("other")
    raw = any_redis.get(f"tally:{{{REALM}}}:p:api")
    assert isinstance(raw, bytes)
    any_redis.set(f"tally:{{{REALM}}}:p:other", raw.replace(b'"api"', b'"other"'))
    with pytest.raises(ConfigurationError):
        db.keyset("other")


def test_adding_an_existing_name_is_refused(db: PrincipalDB) -> None:
    db.add_client("alice")
    with pytest.raises(AlreadyExists):
        db.add_service("alice")


def test_krbtgt_names_are_reserved(db: PrincipalDB) -> None:
    with pytest.raises(PolicyRefused):
        db.add_service("krbtgt/OTHER.TEST")


@pytest.mark.parametrize("name", ["", "-x", "a b", "bob@lower.case", "é"])
def test_invalid_names_are_refused(db: PrincipalDB, name: str) -> None:
    with pytest.raises(InvalidPrincipal):
        db.add_client(name)


def test_names_of_another_realm_are_not_found(db: PrincipalDB) -> None:
    with pytest.raises(NotFound):
        db.get("alice@OTHER.TEST")


def test_unknown_principal_is_not_found(db: PrincipalDB) -> None:
    with pytest.raises(NotFound):
        db.get("nobody")


def test_adding_to_an_uninitialised_realm_is_refused(any_redis: redis.Redis, master_key: MasterKey) -> None:
    with pytest.raises(NotFound, match="kdc init"):
        PrincipalDB(any_redis, "NEW.TEST", master_key).add_client("alice")


def test_password_client_key_is_argon2id_of_the_password_with_its_own_salt(db: PrincipalDB) -> None:
    assert db.add_client("bob", password="correct horse") is None
    params = db.password_params("bob")
    assert len(params.salt) == 16
    assert db.current_key("bob").material == derive_password_key("correct horse", params)
    db.add_client("carol", password="correct horse")
    assert db.password_params("carol").salt != params.salt


def test_decoy_params_for_unknown_and_key_file_names_look_like_real_ones(db: PrincipalDB) -> None:
    db.add_client("bob", password="pw")
    db.add_client("alice")
    real, key_file, unknown = (db.password_params(n).to_dict() for n in ("bob", "alice", "nobody"))
    assert real.keys() == key_file.keys() == unknown.keys()
    assert {k: v for k, v in real.items() if k != "salt"} == {k: v for k, v in unknown.items() if k != "salt"}
    assert len(set(map(str, (real["salt"], key_file["salt"], unknown["salt"])))) == 3
    assert len(PasswordParams.from_dict(unknown).salt) == len(PasswordParams.from_dict(real).salt)


def test_decoy_params_are_stable_per_name_across_instances(db: PrincipalDB, master_key: MasterKey) -> None:
    other_replica = PrincipalDB(db._redis, REALM, master_key, password_params=cheap_params)
    assert db.password_params("nobody") == other_replica.password_params("nobody")
    assert db.password_params("nobody") != db.password_params("someone")


def test_list_is_ordered_filtered_and_paged(db: PrincipalDB) -> None:
    for name in ("carol", "alice", "bob", "api", "app"):
        db.add_client(name)
    assert [r.principal.name for r in db.list()] == ["alice", "api", "app", "bob", "carol", f"krbtgt/{REALM}"]
    assert [r.principal.name for r in db.list(prefix="ap")] == ["api", "app"]
    first = db.list(limit=2)
    assert [r.principal.name for r in db.list(start=first[-1].principal.name, limit=2)] == ["app", "bob"]


def test_disable_and_enable(db: PrincipalDB, clock: FixedClock) -> None:
    db.add_client("alice")
    clock.advance(10)
    db.disable("alice")
    record = db.get("alice")
    assert record.disabled and record.updated == record.created + 10
    db.enable("alice")
    assert not db.get("alice").disabled


def test_the_ticket_granting_principal_cannot_be_disabled_or_deleted(db: PrincipalDB) -> None:
    with pytest.raises(PolicyRefused):
        db.disable(f"krbtgt/{REALM}")
    with pytest.raises(PolicyRefused):
        db.delete(f"krbtgt/{REALM}")


def test_service_rotation_keeps_old_versions_while_tickets_may_use_them(db: PrincipalDB) -> None:
    first = db.add_service("api").current
    for _ in range(2):
        db.rotate("api")
    keys = db.keyset("api")
    assert keys.versions == [1, 2, 3] and keys.get(1).material == first.material


def test_rotation_beyond_the_version_cap_is_refused(any_redis: redis.Redis, master_key: MasterKey) -> None:
    db = PrincipalDB(any_redis, REALM, master_key, max_versions=3)
    db.init_realm()
    db.add_service("api")
    db.rotate("api")
    db.rotate("api")
    with pytest.raises(PolicyRefused, match="key versions"):
        db.rotate("api")
    assert db.get("api").kvnos == [1, 2, 3]


def test_client_rotation_keeps_only_the_new_key(db: PrincipalDB) -> None:
    db.add_client("alice")
    new = db.rotate("alice")
    assert new.versions == [2]
    assert db.get("alice").kvnos == [2]
    assert db.current_key("alice").material == new.current.material


def test_password_client_rotation_requires_a_new_password(db: PrincipalDB) -> None:
    db.add_client("bob", password="old")
    with pytest.raises(InvalidRequest, match="new password"):
        db.rotate("bob")
    old_salt = db.password_params("bob").salt
    db.rotate("bob", password="new")
    params = db.password_params("bob")
    assert params.salt != old_salt
    assert db.current_key("bob").material == derive_password_key("new", params)


def test_services_cannot_have_passwords(db: PrincipalDB) -> None:
    db.add_service("api")
    with pytest.raises(InvalidRequest):
        db.rotate("api", password="pw")


def test_delete_removes_record_and_index_entry(db: PrincipalDB) -> None:
    db.add_client("alice")
    db.delete("alice")
    with pytest.raises(NotFound):
        db.get("alice")
    assert [r.principal.name for r in db.list()] == [f"krbtgt/{REALM}"]
    with pytest.raises(NotFound):
        db.delete("alice")


def test_decoy_key_is_stable_and_distinct_per_name(db: PrincipalDB) -> None:
    a, b = Principal("ghost", REALM), Principal("phantom", REALM)
    assert db.decoy_key(a).material == db.decoy_key(a).material != db.decoy_key(b).material


def test_wrong_master_key_is_detected_by_its_check_value(db: PrincipalDB) -> None:
    db.check_master_key()
    with pytest.raises(ConfigurationError, match="does not belong"):
        PrincipalDB(db._redis, REALM, MasterKey.generate()).check_master_key()


def test_unreachable_store_is_store_unavailable(down_redis: redis.Redis, master_key: MasterKey) -> None:
    db = PrincipalDB(down_redis, REALM, master_key)
    for call in (db.realm_exists, lambda: db.get("alice"), lambda: db.add_client("alice"), db.init_realm,
                 lambda: db.password_params("alice")):
        with pytest.raises(StoreUnavailable):
            call()


def test_each_client_key_is_fresh_randomness(db: PrincipalDB) -> None:
    a, b = db.add_client("a"), db.add_client("b")
    assert a is not None and b is not None and a.current.material != b.current.material
    assert len(a.current.material) == 32  # 256-bit keys
