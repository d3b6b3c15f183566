"""A 503 with a short Retry-After (a store outage, a replay cache recovering from a loss,
RFC 4120 §3.2.3) is waited out once, then retried with a fresh authenticator.

The realm runs a 5 s skew window so a recovering cache asks for 5 s, under the
client's 10 s bound; the client's sleep is the fake clock's ``advance``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import responses

from client_sdk import Client
from tally_protocol.errors import LockedOut, RateLimited, ReplayCacheRecovering, StoreUnavailable
from tally_protocol.verify import VerifyPolicy
from tally_runtime.replay_cache import InMemoryReplayCache
from tests.client_sdk.realm import KDC_URL, SERVICE_URL, FakeClock, Realm, httpx_transport

SKEW = 5


@pytest.fixture
def realm(clock: FakeClock) -> Realm:
    return Realm(clock, verify=VerifyPolicy(max_skew_s=SKEW))


@pytest.fixture
def slept(clock: FakeClock) -> list[float]:
    return []


@pytest.fixture
def client(realm: Realm, mocked: responses.RequestsMock, alice_key_file: Path, clock: FakeClock,
           slept: list[float]) -> Client:
    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    return Client(KDC_URL, "alice@EXAMPLE.TEST", key_file=alice_key_file, clock=clock,
                  services={SERVICE_URL: "api"}, sleep=sleep)


def lose_service_cache(realm: Realm) -> None:
    realm.service_replay = InMemoryReplayCache(realm.clock)  # a restart without persistence: born now


def test_service_recovering_its_replay_cache_is_waited_out_and_retried(client: Client, realm: Realm,
                                                                        slept: list[float]) -> None:
    client.service_ticket("api")
    lose_service_cache(realm)
    assert client.get(f"{SERVICE_URL}/whoami").json() == {"principal": "alice@EXAMPLE.TEST"}
    assert slept == [SKEW]
    assert realm.calls["service"] == 2


def test_recovering_longer_than_the_bound_is_raised_with_retry_after(client: Client, realm: Realm,
                                                                   slept: list[float]) -> None:
    client.max_retry_wait_s = SKEW - 1
    client.service_ticket("api")
    lose_service_cache(realm)
    with pytest.raises(ReplayCacheRecovering) as caught:
        client.get(f"{SERVICE_URL}/whoami")
    assert caught.value.data["retry_after"] == SKEW
    assert slept == []


def test_store_outage_with_a_short_retry_after_is_retried_only_once(client: Client, realm: Realm,
                                                                   slept: list[float]) -> None:
    client.service_ticket("api")
    realm.store_down, realm.store_retry_after = True, 2
    with pytest.raises(StoreUnavailable):
        client.get(f"{SERVICE_URL}/whoami")
    assert slept == [2]
    assert realm.calls["service"] == 2


def test_kdc_recovering_its_replay_cache_is_waited_out_at_login(client: Client, realm: Realm,
                                                                 slept: list[float]) -> None:
    realm.kdc_replay = InMemoryReplayCache(realm.clock)
    client.login()
    assert slept == [SKEW]
    assert realm.calls["as"] == 2


def test_kdc_recovering_is_waited_out_for_a_service_ticket(client: Client, realm: Realm,
                                                           slept: list[float]) -> None:
    client.login()
    realm.kdc_replay = InMemoryReplayCache(realm.clock)
    client.service_ticket("api")
    assert slept == [SKEW]


def test_httpx_plugin_waits_out_a_recovering_service(client: Client, realm: Realm, slept: list[float]) -> None:
    client.service_ticket("api")
    lose_service_cache(realm)
    with httpx.Client(transport=httpx_transport(realm), auth=client.httpx_auth("api")) as http:
        assert http.get(f"{SERVICE_URL}/whoami").status_code == 200
    assert slept == [SKEW]


def test_async_httpx_plugin_waits_out_a_recovering_service(client: Client, realm: Realm,
                                                           slept: list[float]) -> None:
    client.service_ticket("api")
    lose_service_cache(realm)

    async def main() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx_transport(realm), auth=client.httpx_auth("api")) as http:
            return await http.get(f"{SERVICE_URL}/whoami")

    assert asyncio.run(main()).status_code == 200
    assert slept == [SKEW]


# -- 429 RATE_LIMITED: the same rule as a 503 (LOCKED_OUT, also 429, is never waited out)


def test_kdc_rate_limit_with_a_short_retry_after_is_waited_out_with_the_same_request_id(
        client: Client, realm: Realm, slept: list[float]) -> None:
    realm.kdc_refusals.append(RateLimited(retry_after=3, limit="as_principal"))
    client.login()
    assert slept == [3]
    assert [path for path, _ in realm.request_ids] == ["/v1/as", "/v1/as"]
    assert len({request_id for _, request_id in realm.request_ids}) == 1


def test_kdc_rate_limit_longer_than_the_bound_is_raised(client: Client, realm: Realm, slept: list[float]) -> None:
    realm.kdc_refusals.append(RateLimited(retry_after=60))
    with pytest.raises(RateLimited) as caught:
        client.login()
    assert (caught.value.data["retry_after"], slept) == (60, [])


def test_a_locked_out_principal_is_not_retried(client: Client, realm: Realm, slept: list[float]) -> None:
    realm.kdc_refusals.append(LockedOut(retry_after=1))
    with pytest.raises(LockedOut):
        client.login()
    assert (slept, realm.calls["as"]) == ([], 0)


def test_a_rate_limited_service_request_is_retried_once(client: Client, realm: Realm, slept: list[float]) -> None:
    client.service_ticket("api")
    realm.service_refusals += [RateLimited(retry_after=1), RateLimited(retry_after=1)]
    with pytest.raises(RateLimited):
        client.get(f"{SERVICE_URL}/whoami")
    assert slept == [1] and realm.calls["service"] == 2
