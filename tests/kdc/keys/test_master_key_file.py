"""Master key files with several versions, and a running KDC picking a new file up without a restart."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kdc.master_key import (
    FILE_SIZE,
    MasterKey,
    MasterKeyring,
    UnknownMasterKeyVersion,
    create_master_key_file,
    load_master_key_file,
    replace_master_key_file,
)
from kdc.master_key_file import MasterKeyFile
from tally_protocol.errors import ConfigurationError
from tally_protocol.keys import Key
from tests.kdc.conftest import REALM, FixedClock
from tests.kdc.keys.conftest import LogCapture


def _two_versions() -> MasterKeyring:
    return MasterKeyring([MasterKey.generate()]).with_new_version()


def test_newest_version_wraps_and_every_version_unwraps() -> None:
    old = MasterKey.generate()
    ring = MasterKeyring([old]).with_new_version()
    key = Key(os.urandom(32), 4)
    by_old = old.wrap(REALM, "api", key, os.urandom)
    by_new = ring.current.wrap(REALM, "api", key, os.urandom)
    assert ring.kvno == 2
    assert ring.unwrap(REALM, "api", 4, by_old).material == ring.unwrap(REALM, "api", 4, by_new).material


def test_a_version_the_ring_lacks_is_unknown_master_key_version() -> None:
    blob = MasterKey.generate(kvno=7).wrap(REALM, "api", Key(os.urandom(32), 1), os.urandom)
    with pytest.raises(UnknownMasterKeyVersion, match="version 7"):
        MasterKeyring([MasterKey.generate()]).unwrap(REALM, "api", 1, blob)


def test_several_versions_round_trip_through_the_file_format() -> None:
    ring = _two_versions().with_new_version()
    again = MasterKeyring.from_bytes(ring.to_bytes())
    assert again.kvnos == [1, 2, 3]
    assert [m.key.material for m in again] == [m.key.material for m in ring]


def test_a_single_version_keeps_the_original_file_format() -> None:
    master = MasterKey.generate()
    assert MasterKeyring([master]).to_bytes() == master.to_bytes()
    assert len(master.to_bytes()) == FILE_SIZE


@given(st.integers(min_value=0), st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_in_a_multi_version_file_is_refused(position: int, bit: int) -> None:
    ring = MasterKeyring([MasterKey(Key(b"\x01" * 32, 1)), MasterKey(Key(b"\x02" * 32, 2))])
    data = bytearray(ring.to_bytes())
    data[position % len(data)] ^= 1 << bit
    with pytest.raises(ConfigurationError):
        MasterKeyring.from_bytes(bytes(data))


def test_replacing_the_file_is_atomic_and_0600(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    ring = load_master_key_file(path).with_new_version()
    replace_master_key_file(path, ring)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key_file(path).kvnos == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["master.key"]  # no temporary file left


def test_the_keyring_repr_shows_versions_only() -> None:
    ring = MasterKeyring([MasterKey(Key(b"\xab" * 32, 1))])
    assert repr(ring) == "MasterKeyring(versions=[1])"


def test_file_is_read_again_for_an_unknown_version(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    clock = FixedClock(0.0)
    source = MasterKeyFile(path, clock=clock)
    replace_master_key_file(path, source.keyring.with_new_version())
    clock.advance(1)
    assert source.reload_for(2) and source.keyring.kvnos == [1, 2]


def test_reloads_for_unknown_versions_are_rate_limited(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    clock = FixedClock(0.0)
    source = MasterKeyFile(path, min_interval_s=1.0, clock=clock)
    clock.advance(1)
    assert not source.reload_for(2)  # reads the file: version 2 is not there yet
    replace_master_key_file(path, source.keyring.with_new_version())
    clock.advance(0.5)
    assert not source.reload_for(2)  # within the interval: no read
    clock.advance(0.5)
    assert source.reload_for(2)


def test_sighup_makes_the_next_use_read_the_file(tmp_path: Path, hangup: None) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    source = MasterKeyFile(path)
    assert source.reload_on_sighup()
    replace_master_key_file(path, source.keyring.with_new_version())
    os.kill(os.getpid(), signal.SIGHUP)
    assert source.keyring.kvnos == [1, 2]


def test_a_failed_reload_keeps_the_loaded_versions(tmp_path: Path, tally_logs: LogCapture) -> None:
    path = tmp_path / "master.key"
    create_master_key_file(path)
    source = MasterKeyFile(path)
    path.write_bytes(b"TMK garbage")
    assert not source.reload("test")
    assert source.keyring.kvnos == [1]
    assert any("reload failed" in m for m in tally_logs.messages)
