from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kdc.master_key import FILE_SIZE, MasterKey, create_master_key_file, load_master_key_file
from tally_protocol.errors import AlreadyExists, ConfigurationError
from tally_protocol.keys import Key

REALM = "EXAMPLE.TEST"


def test_wrapped_key_unwraps_to_the_same_material() -> None:
    master = MasterKey.generate()
    key = Key(os.urandom(32), 3)
    unwrapped = master.unwrap(REALM, "alice", 3, master.wrap(REALM, "alice", key, os.urandom))
    assert unwrapped.material == key.material and unwrapped.kvno == 3


@pytest.mark.parametrize(("realm", "name", "kvno"), [
    (REALM, "mallory", 1),  # copied onto another principal
    (REALM, "alice", 2),  # relabelled as another version
    ("OTHER.TEST", "alice", 1),  # moved to another realm
])
def test_wrapped_key_is_bound_to_realm_name_and_version(realm: str, name: str, kvno: int) -> None:
    master = MasterKey.generate()
    blob = master.wrap(REALM, "alice", Key(os.urandom(32), 1), os.urandom)
    with pytest.raises(ConfigurationError):
        master.unwrap(realm, name, kvno, blob)


def test_another_master_key_cannot_unwrap() -> None:
    blob = MasterKey.generate().wrap(REALM, "alice", Key(os.urandom(32), 1), os.urandom)
    with pytest.raises(ConfigurationError, match="wrong master key"):
        MasterKey.generate().unwrap(REALM, "alice", 1, blob)


@given(st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_any_bit_flip_in_a_wrapped_key_is_refused(position: int, bit: int) -> None:
    master = MasterKey(Key(b"\x01" * 32, 1))
    blob = bytearray(master.wrap(REALM, "alice", Key(b"\x02" * 32, 1), lambda n: b"\x03" * n))
    blob[position % len(blob)] ^= 1 << bit
    with pytest.raises(ConfigurationError):
        master.unwrap(REALM, "alice", 1, bytes(blob))


def test_master_key_file_is_created_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "kdc" / "master.key"
    master = create_master_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key_file(path).key.material == master.key.material


def test_master_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    before = path.read_bytes()
    with pytest.raises(AlreadyExists):
        create_master_key_file(path)
    assert path.read_bytes() == before


def test_group_readable_master_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    path.chmod(0o640)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_master_key_file(path)


@pytest.mark.parametrize("damage", [
    lambda data: data[:-1],  # truncated
    lambda data: b"XYZ" + data[3:],  # wrong magic
    lambda data: data[:3] + b"\x09" + data[4:],  # unknown format version
    lambda data: data[:10] + bytes([data[10] ^ 1]) + data[11:],  # a flipped key bit
])
def test_corrupt_master_key_file_is_a_clear_configuration_error(tmp_path: Path, damage: object) -> None:
    path = tmp_path / "master.key"
    data = create_master_key_file(path).to_bytes()
    assert len(data) == FILE_SIZE
    path.write_bytes(damage(data))  # type: ignore[operator]
    with pytest.raises(ConfigurationError, match="master key file"):
        load_master_key_file(path)


def test_master_key_repr_shows_no_material() -> None:
    master = MasterKey(Key(b"\xab" * 32, 1))
    assert "ab" * 4 not in repr(master) and "\\xab" not in repr(master)
