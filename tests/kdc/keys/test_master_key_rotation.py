"""Master key rotation without downtime: add a version, re-wrap every record, finish; interrupted and re-run."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from kdc.master_key import create_master_key_file, load_master_key_file
from kdc.master_key_file import MasterKeyFile
from kdc.master_key_rotation import (
    announce,
    finish_master_key_rotation,
    master_versions_in_use,
    rotate_master_key,
)
from kdc.principal_db import PrincipalDB
from tally_protocol.errors import ConfigurationError, PolicyRefused
from tests.kdc.conftest import REALM, T0, FixedClock, cheap_params, make_realm
from tests.kdc.wire import get_ticket, login


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    return path


@pytest.fixture
def db(any_redis: redis.Redis, path: Path, clock: FixedClock) -> PrincipalDB:
    db = PrincipalDB(any_redis, REALM, load_master_key_file(path), clock, password_params=cheap_params)
    db.init_realm()
    db.add_client("alice")
    db.add_service("api")
    db.rotate("api")
    return db


def _materials(db: PrincipalDB) -> dict[str, list[bytes]]:
    return {r.name: [k.material for k in db.unwrap_keys(r)] for r in db.all_records()}


def test_rotation_adds_a_version_and_rewraps_every_record_without_changing_keys(db: PrincipalDB, path: Path) -> None:
    before = _materials(db)
    result = rotate_master_key(db, path, now=T0)
    assert (result.kvno, result.added, result.rewrapped, result.records) == (2, True, 3, 3)
    assert load_master_key_file(path).kvnos == [1, 2]
    assert master_versions_in_use(db) == {2: 4}  # krbtgt, alice, api twice
    assert _materials(db.with_master_key(load_master_key_file(path))) == before


def test_records_stay_readable_with_either_file_during_the_rotation(db: PrincipalDB, path: Path) -> None:
    old_ring = load_master_key_file(path)
    rotate_master_key(db, path, now=T0, prepare=True)
    assert db.with_master_key(old_ring).current_key("api")  # nothing re-wrapped yet: the old file suffices
    rotate_master_key(db, path, now=T0)
    assert db.with_master_key(load_master_key_file(path)).current_key("api")


def test_an_interrupted_rotation_continues_with_the_same_version(db: PrincipalDB, path: Path) -> None:
    rotate_master_key(db, path, now=T0, prepare=True)
    ring = load_master_key_file(path)
    announce(db.with_master_key(ring), ring, T0)
    db.with_master_key(ring).rewrap("api")  # the sweep stopped after one record
    assert master_versions_in_use(db) == {1: 2, 2: 2}
    result = rotate_master_key(db, path, now=T0)
    assert (result.kvno, result.added, result.announced, result.rewrapped) == (2, False, False, 2)
    assert master_versions_in_use(db) == {2: 4}


def test_rerunning_a_finished_sweep_rewraps_nothing(db: PrincipalDB, path: Path) -> None:
    rotate_master_key(db, path, now=T0)
    assert rotate_master_key(db, path, now=T0).rewrapped == 0


def test_writes_wrap_under_the_announced_version_only(db: PrincipalDB, path: Path) -> None:
    rotate_master_key(db, path, now=T0, prepare=True)  # the file has version 2, the realm has not announced it
    writer = db.with_master_key(load_master_key_file(path))
    writer.add_service("new")
    assert writer.get("new").current.master_kvno == 1
    rotate_master_key(db, path, now=T0)
    writer.add_service("newer")
    assert writer.get("newer").current.master_kvno == 2


def test_finish_is_refused_while_a_record_uses_the_old_version(db: PrincipalDB, path: Path) -> None:
    rotate_master_key(db, path, now=T0, prepare=True)
    ring = load_master_key_file(path)
    announce(db.with_master_key(ring), ring, T0)
    with pytest.raises(PolicyRefused, match="4 under version 1"):
        finish_master_key_rotation(db, path)
    assert load_master_key_file(path).kvnos == [1, 2]


def test_finish_is_refused_before_the_new_version_is_announced(db: PrincipalDB, path: Path) -> None:
    rotate_master_key(db, path, now=T0, prepare=True)
    with pytest.raises(PolicyRefused, match="not in use yet"):
        finish_master_key_rotation(db, path)


def test_finish_drops_the_old_version_and_its_check_value(db: PrincipalDB, path: Path) -> None:
    old_ring = load_master_key_file(path)
    rotate_master_key(db, path, now=T0)
    assert finish_master_key_rotation(db, path) == [1]
    ring = load_master_key_file(path)
    assert ring.kvnos == [2]
    assert db.with_master_key(ring).current_key("api")
    assert "master_check:1" not in db.meta()
    with pytest.raises(ConfigurationError, match="does not belong"):
        db.with_master_key(old_ring).check_master_key()
    assert finish_master_key_rotation(db, path) == []  # nothing left to finish


def test_a_file_lacking_the_announced_version_is_refused_at_start(db: PrincipalDB, path: Path) -> None:
    old_ring = load_master_key_file(path)
    rotate_master_key(db, path, now=T0)
    with pytest.raises(ConfigurationError, match="lacks"):
        db.with_master_key(old_ring).check_master_key()


def test_a_running_kdc_reads_the_rotated_file_when_it_meets_the_new_version(
        fake_redis: redis.Redis, path: Path, clock: FixedClock, tmp_path: Path) -> None:
    kdc_file = MasterKeyFile(path, min_interval_s=0)
    realm = make_realm(fake_redis, kdc_file, clock, tmp_path)  # type: ignore[arg-type]
    admin_db = PrincipalDB(fake_redis, REALM, load_master_key_file(path), clock)
    rotate_master_key(admin_db, path, now=T0)
    assert kdc_file.keyring.kvnos == [1]  # not read yet
    tgt = login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    assert get_ticket(realm.http, tgt, realm.api, now=T0).service == realm.api
    assert kdc_file.keyring.kvnos == [1, 2]


def test_rotation_of_a_realm_created_before_numbered_check_values(db: PrincipalDB, path: Path,
                                                                  any_redis: redis.Redis) -> None:
    meta_key = f"tally:{{{REALM}}}:meta"
    legacy = bytes.fromhex(any_redis.hget(meta_key, "master_check:1").decode())  # type: ignore[union-attr]
    any_redis.hdel(meta_key, "master_check:1")
    any_redis.hset(meta_key, "master_check", legacy)  # the raw bytes realms used to store
    db.check_master_key()
    rotate_master_key(db, path, now=T0)
    meta = db.meta()
    assert "master_check" not in meta and {"master_check:1", "master_check:2"} <= set(meta)
    assert meta["master_rotated"] == str(int(T0))
