"""The credential cache file: 0600, atomic, round-trips, fails clearly, never holds the long-term key."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from client_sdk import CredentialCache
from tally_protocol.encoding import b64encode
from tally_protocol.errors import ConfigurationError
from tests.client_sdk.realm import ALICE, BOB, KDC_URL, TGS, Realm


def _filled(path: Path, realm: Realm) -> CredentialCache:
    cache = CredentialCache(path)
    cache.initialize(ALICE, KDC_URL)
    cache.put(realm.login_directly())
    return cache


def test_cache_file_is_written_with_mode_0600(ccache_path: Path, realm: Realm) -> None:
    _filled(ccache_path, realm)
    assert stat.S_IMODE(ccache_path.stat().st_mode) == 0o600


def test_cache_directory_is_created_private(ccache_path: Path, realm: Realm) -> None:
    _filled(ccache_path, realm)
    assert stat.S_IMODE(ccache_path.parent.stat().st_mode) == 0o700


def test_credentials_round_trip_through_the_file(ccache_path: Path, realm: Realm) -> None:
    tgt = realm.login_directly()
    cache = CredentialCache(ccache_path)
    cache.initialize(ALICE, KDC_URL)
    cache.put(tgt)
    reread = CredentialCache(ccache_path)
    assert (reread.client, reread.kdc_url, reread.get(TGS)) == (ALICE, KDC_URL, tgt)


def test_missing_cache_file_is_an_empty_cache(ccache_path: Path) -> None:
    cache = CredentialCache(ccache_path)
    assert (cache.entries(), cache.client, cache.kdc_url) == ([], None, None)


@pytest.mark.parametrize("content", [
    b"{not json", b"\xff\xfe", b"[]", b'{"version": 2, "credentials": {}}',
    b'{"version": 1, "client": "alice@EXAMPLE.TEST", "credentials": {"krbtgt/EXAMPLE.TEST@EXAMPLE.TEST": {}}}',
    b'{"version": 1, "client": "not a principal", "credentials": {}}',
    b'{"version": 1, "client": null}',
])
def test_corrupt_cache_is_a_configuration_error_naming_the_fix(ccache_path: Path, content: bytes) -> None:
    ccache_path.parent.mkdir(parents=True)
    ccache_path.write_bytes(content)
    ccache_path.chmod(0o600)
    with pytest.raises(ConfigurationError, match="corrupt; run `tally logout`"):
        CredentialCache(ccache_path).load()


def test_entry_filed_under_another_service_is_corrupt(ccache_path: Path, realm: Realm) -> None:
    _filled(ccache_path, realm)
    doc = json.loads(ccache_path.read_text())
    doc["credentials"]["api@EXAMPLE.TEST"] = doc["credentials"].pop(str(TGS))
    ccache_path.write_text(json.dumps(doc))
    with pytest.raises(ConfigurationError, match="corrupt"):
        CredentialCache(ccache_path).load()


def test_cache_readable_by_others_is_refused(ccache_path: Path, realm: Realm) -> None:
    _filled(ccache_path, realm)
    ccache_path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        CredentialCache(ccache_path).load()


def test_remove_forgets_one_service_in_the_file(ccache_path: Path, realm: Realm) -> None:
    cache = _filled(ccache_path, realm)
    assert cache.remove(TGS) is True
    assert CredentialCache(ccache_path).get(TGS) is None


def test_remove_of_an_absent_service_reports_false(ccache_path: Path, realm: Realm) -> None:
    assert _filled(ccache_path, realm).remove("api@EXAMPLE.TEST") is False


def test_destroy_deletes_the_file_and_returns_what_it_held(ccache_path: Path, realm: Realm) -> None:
    cache = _filled(ccache_path, realm)
    removed = cache.destroy()
    assert [str(c.service) for c in removed] == [str(TGS)]
    assert not ccache_path.exists()


def test_destroy_removes_a_corrupt_cache(ccache_path: Path) -> None:
    ccache_path.parent.mkdir(parents=True)
    ccache_path.write_bytes(b"garbage")
    ccache_path.chmod(0o600)
    assert CredentialCache(ccache_path).destroy() == []
    assert not ccache_path.exists()


def test_put_for_another_client_is_refused(ccache_path: Path, realm: Realm) -> None:
    cache = _filled(ccache_path, realm)
    with pytest.raises(ConfigurationError, match="belongs to alice@EXAMPLE.TEST"):
        cache.put(realm.login_directly(BOB))


def test_cache_never_holds_the_long_term_key(ccache_path: Path, realm: Realm) -> None:
    _filled(ccache_path, realm)
    content = ccache_path.read_text()
    assert b64encode(realm.client_keys[ALICE].material) not in content
    assert realm.client_keys[ALICE].material.hex() not in content


def test_writes_leave_no_temporary_files(ccache_path: Path, realm: Realm) -> None:
    cache = _filled(ccache_path, realm)
    cache.remove(TGS)
    assert [p.name for p in ccache_path.parent.iterdir()] == [ccache_path.name]


def test_repr_shows_no_session_keys(ccache_path: Path, realm: Realm) -> None:
    cache = _filled(ccache_path, realm)
    tgt = cache.get(TGS)
    assert tgt is not None
    assert b64encode(tgt.session_key) not in repr(cache) + repr(cache.entries())
