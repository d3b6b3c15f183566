"""Client.login: key file, password, credential cache; clock correction on the AS exchange."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses

from client_sdk import Client, CredentialCache
from tally_protocol.codes import TicketFlags
from tally_protocol.errors import AuthenticationRequired, ClockSkew, ConfigurationError, PreauthFailed
from tally_protocol.principal import Principal
from tests.client_sdk.realm import ALICE, BOB, BOB_PASSWORD, KDC_URL, START, TGS, FakeClock, Realm


def test_login_with_key_file_gets_a_tgt_for_the_principal(client: Client, realm: Realm) -> None:
    tgt = client.login()
    assert (tgt.client, tgt.service) == (ALICE, TGS)
    assert tgt.flags & TicketFlags.INITIAL and tgt.endtime == START + realm.policy.tgt_lifetime_s


def test_key_file_alone_names_the_principal(realm: Realm, mocked: responses.RequestsMock,
                                            alice_key_file: Path, clock: FakeClock) -> None:
    assert Client(KDC_URL, key_file=alice_key_file, clock=clock).login().client == ALICE


def test_bare_name_takes_the_key_files_realm(realm: Realm, alice_key_file: Path) -> None:
    assert Client(KDC_URL, "alice", key_file=alice_key_file).principal == ALICE


def test_key_file_of_another_principal_is_refused(alice_key_file: Path) -> None:
    with pytest.raises(ConfigurationError, match="holds the key of alice@EXAMPLE.TEST, not bob@EXAMPLE.TEST"):
        Client(KDC_URL, "bob@EXAMPLE.TEST", key_file=alice_key_file)


def test_login_with_password_derives_the_key_from_the_kdc_params(realm: Realm, mocked: responses.RequestsMock,
                                                                  clock: FakeClock) -> None:
    tgt = Client(KDC_URL, "bob@EXAMPLE.TEST", password=BOB_PASSWORD, clock=clock).login()
    assert tgt.client == BOB
    assert realm.calls["params"] == 1


def test_wrong_password_is_preauth_failed(realm: Realm, mocked: responses.RequestsMock, clock: FakeClock) -> None:
    with pytest.raises(PreauthFailed):
        Client(KDC_URL, "bob@EXAMPLE.TEST", password="wrong", clock=clock).login()


def test_unknown_principal_fails_like_a_wrong_password(realm: Realm, mocked: responses.RequestsMock,
                                                       clock: FakeClock) -> None:
    with pytest.raises(PreauthFailed):
        Client(KDC_URL, "carol@EXAMPLE.TEST", password="anything", clock=clock).login()


def test_client_needs_a_key_a_password_or_a_cache() -> None:
    with pytest.raises(ConfigurationError, match="no credentials"):
        Client(KDC_URL, "alice@EXAMPLE.TEST")


def test_key_file_and_password_together_are_refused(alice_key_file: Path) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        Client(KDC_URL, "alice@EXAMPLE.TEST", key_file=alice_key_file, password="x")


def test_login_stores_the_tgt_in_the_credential_cache(realm: Realm, mocked: responses.RequestsMock,
                                                      alice_key_file: Path, ccache_path: Path,
                                                      clock: FakeClock) -> None:
    tgt = Client(KDC_URL, key_file=alice_key_file, ccache=ccache_path, clock=clock).login()
    cache = CredentialCache(ccache_path)
    assert (cache.client, cache.kdc_url, cache.get(TGS)) == (ALICE, KDC_URL, tgt)


def test_cache_alone_gives_principal_kdc_and_tgt_without_a_new_login(
        realm: Realm, mocked: responses.RequestsMock, alice_key_file: Path, ccache_path: Path,
        clock: FakeClock) -> None:
    Client(KDC_URL, key_file=alice_key_file, ccache=ccache_path, clock=clock).login()
    from_cache = Client(ccache=ccache_path, clock=clock)
    assert (from_cache.principal, from_cache.kdc_url) == (ALICE, KDC_URL)
    assert from_cache.service_ticket("api").client == ALICE
    assert realm.calls["as"] == 1


def test_login_replaces_another_principals_cache(realm: Realm, mocked: responses.RequestsMock,
                                                 alice_key_file: Path, ccache_path: Path, clock: FakeClock) -> None:
    Client(KDC_URL, key_file=alice_key_file, ccache=ccache_path, clock=clock).login()
    Client(KDC_URL, "bob@EXAMPLE.TEST", password=BOB_PASSWORD, ccache=ccache_path, clock=clock).login()
    cache = CredentialCache(ccache_path)
    assert cache.client == BOB and [c.client for c in cache.entries()] == [BOB]


def test_empty_cache_without_a_principal_asks_for_tally_login(ccache_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="tally login"):
        Client(KDC_URL, ccache=ccache_path)


def test_cache_without_tgt_asks_for_tally_login(realm: Realm, mocked: responses.RequestsMock,
                                                ccache_path: Path, clock: FakeClock) -> None:
    client = Client(KDC_URL, "alice@EXAMPLE.TEST", ccache=ccache_path, clock=clock)
    with pytest.raises(AuthenticationRequired, match="run `tally login`"):
        client.service_ticket("api")


def test_kdc_clock_skew_on_login_is_corrected_and_retried_once(client: Client, realm: Realm) -> None:
    realm.kdc_offset = 1000
    tgt = client.login()
    assert client.offset == pytest.approx(1000)
    assert realm.calls["as"] == 2 and tgt.authtime == START + 1000


def test_kdc_clock_skew_twice_raises_clock_skew(client: Client, realm: Realm, clock: FakeClock) -> None:
    realm.kdc_offset = 1000
    original = realm.kdc_now

    def drifting() -> float:  # the KDC's clock jumps between the two attempts
        realm.kdc_offset += 1000
        return original()

    realm.kdc_now = drifting  # type: ignore[method-assign]
    with pytest.raises(ClockSkew):
        client.login()
    assert realm.calls["as"] == 2


def test_principal_object_is_accepted(alice_key_file: Path) -> None:
    assert Client(KDC_URL, Principal("alice", "EXAMPLE.TEST"), key_file=alice_key_file).principal == ALICE


def test_login_with_the_key_replaces_a_corrupt_cache(realm: Realm, mocked: responses.RequestsMock,
                                                     alice_key_file: Path, ccache_path: Path,
                                                     clock: FakeClock) -> None:
    ccache_path.parent.mkdir(parents=True)
    ccache_path.write_text("{ damaged")
    ccache_path.chmod(0o600)
    tgt = Client(KDC_URL, key_file=alice_key_file, ccache=ccache_path, clock=clock).login()
    assert CredentialCache(ccache_path).get(TGS) == tgt


def test_corrupt_cache_without_a_key_is_a_configuration_error(ccache_path: Path) -> None:
    ccache_path.parent.mkdir(parents=True)
    ccache_path.write_text("{ damaged")
    ccache_path.chmod(0o600)
    with pytest.raises(ConfigurationError, match="corrupt"):
        Client(KDC_URL, ccache=ccache_path)
