"""Service tickets and the TGT over time: caching, renewal, re-login, expiry."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses

from client_sdk import Client, CredentialCache
from kdc.exchange import TicketPolicy
from tally_protocol.codes import TicketFlags
from tally_protocol.errors import TicketExpired
from tally_protocol.keys import Key, Keyset
from tests.client_sdk.realm import API, KDC_URL, START, TGS, FakeClock, Realm


@pytest.fixture
def cached_client(realm: Realm, mocked: responses.RequestsMock, alice_key_file: Path, ccache_path: Path,
                  clock: FakeClock) -> Client:
    """alice after `tally login`: only the credential cache, no key."""
    Client(KDC_URL, key_file=alice_key_file, ccache=ccache_path, clock=clock).login()
    realm.calls.clear()
    return Client(ccache=ccache_path, clock=clock)


def test_service_ticket_is_fetched_once_and_reused(client: Client, realm: Realm, clock: FakeClock) -> None:
    first = client.service_ticket("api")
    clock.advance(3600)
    assert client.service_ticket("api@EXAMPLE.TEST") is first
    assert (realm.calls["as"], realm.calls["tgs"]) == (1, 1)


def test_service_ticket_names_the_service_and_client(client: Client) -> None:
    cred = client.service_ticket("api")
    assert (cred.service, cred.client, str(cred.ticket.service)) == (API, client.principal, "api@EXAMPLE.TEST")


def test_service_ticket_near_its_end_is_replaced(client: Client, realm: Realm, clock: FakeClock) -> None:
    first = client.service_ticket("api")
    clock.now = first.endtime - 30  # inside the 60 s renew margin
    second = client.service_ticket("api")
    assert second.endtime > first.endtime and realm.calls["tgs"] >= 2


def test_service_ticket_never_outlives_its_tgt(realm: Realm, client: Client, clock: FakeClock) -> None:
    realm.policy = TicketPolicy(tgt_lifetime_s=3600, renewable_lifetime_s=0, service_ticket_lifetime_s=36000)
    tgt = client.login()
    clock.advance(1000)
    assert client.service_ticket("api").endtime == tgt.endtime


def test_service_tickets_are_kept_in_the_credential_cache(cached_client: Client, ccache_path: Path) -> None:
    cred = cached_client.service_ticket("api")
    assert CredentialCache(ccache_path).get(API) == cred


def test_tgt_is_renewed_before_it_expires_without_the_key(cached_client: Client, realm: Realm,
                                                           ccache_path: Path, clock: FakeClock) -> None:
    old = cached_client.tgt()
    clock.now = old.endtime - 30
    cached_client.service_ticket("api")
    new = CredentialCache(ccache_path).get(TGS)
    assert new is not None and new.endtime > old.endtime
    assert new.renew_till == old.renew_till and not new.flags & TicketFlags.INITIAL
    assert (realm.calls["renew"], realm.calls["as"]) == (1, 0)


def test_expired_tgt_with_the_key_logs_in_again(client: Client, realm: Realm, clock: FakeClock) -> None:
    old = client.login()
    clock.now = old.endtime + 1
    assert client.service_ticket("api").endtime > old.endtime
    assert realm.calls["as"] == 2


def test_unrenewable_tgt_near_its_end_with_the_key_logs_in_again(client: Client, realm: Realm,
                                                                  clock: FakeClock) -> None:
    realm.policy = TicketPolicy(renewable_lifetime_s=0)
    old = client.login()
    clock.now = old.endtime - 30
    assert client.tgt().endtime > old.endtime and realm.calls["as"] == 2


def test_unrenewable_tgt_near_its_end_without_the_key_is_used_while_valid(
        realm: Realm, mocked: responses.RequestsMock, alice_key_file: Path, ccache_path: Path,
        clock: FakeClock) -> None:
    realm.policy = TicketPolicy(renewable_lifetime_s=0)
    tgt = Client(KDC_URL, key_file=alice_key_file, ccache=ccache_path, clock=clock).login()
    clock.now = tgt.endtime - 30
    assert Client(ccache=ccache_path, clock=clock).service_ticket("api").endtime == tgt.endtime


def test_expired_tgt_with_only_the_cache_says_run_tally_login(cached_client: Client, clock: FakeClock) -> None:
    clock.now = cached_client.tgt().endtime + 1
    with pytest.raises(TicketExpired, match="run `tally login` again"):
        cached_client.service_ticket("api")


def test_tgt_refused_by_the_kdc_with_only_the_cache_says_run_tally_login(cached_client: Client, realm: Realm,
                                                                         clock: FakeClock) -> None:
    tgt = cached_client.tgt()
    realm.kdc_offset = tgt.endtime - clock() + 10  # the KDC thinks the TGT has expired
    with pytest.raises(TicketExpired, match="run `tally login` again"):
        cached_client.service_ticket("api")


def test_tgt_refused_by_the_kdc_with_the_key_logs_in_again(client: Client, realm: Realm, clock: FakeClock) -> None:
    client.login()
    realm.tgs_keys = Keyset([Key(b"\x07" * 32, 2)])  # TGS key rotated, old version dropped
    assert client.service_ticket("api").client == client.principal
    assert realm.calls["as"] == 2


def test_tgs_clock_skew_is_corrected_and_retried_once(client: Client, realm: Realm) -> None:
    client.login()
    realm.kdc_offset = 1000
    client.service_ticket("api")
    assert client.offset == pytest.approx(1000) and realm.calls["tgs"] == 2


def test_start_time_is_the_kdcs(client: Client) -> None:
    assert client.service_ticket("api").starttime == START
