"""The httpx plug-in, sync and async: signs, verifies, retries once."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from client_sdk import Client, Credential, TallyHttpxAuth
from tally_protocol.binding import RequestBinding
from tally_protocol.errors import ClockSkew, MutualAuthFailed
from tally_protocol.principal import Principal
from tests.client_sdk.realm import SERVICE_URL, Realm, httpx_transport

HOST = "127.0.0.1:8751"


def _sync(realm: Realm, client: Client) -> httpx.Client:
    return httpx.Client(transport=httpx_transport(realm), auth=client.httpx_auth("api"))


def _async(realm: Realm, client: Client) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx_transport(realm), auth=client.httpx_auth("api"))


def test_sync_plugin_signs_a_binding_the_service_verifies(client: Client, realm: Realm) -> None:
    with _sync(realm, client) as http:
        response = http.get(f"{SERVICE_URL}/whoami?x=1")
    assert response.json() == {"principal": "alice@EXAMPLE.TEST"}
    assert realm.accepted == [RequestBinding.for_http("GET", HOST, "/whoami?x=1", b"")]


def test_sync_plugin_binds_a_streamed_body(client: Client, realm: Realm) -> None:
    with _sync(realm, client) as http:
        response = http.post(f"{SERVICE_URL}/echo", content=iter([b"pay ", b"5"]))
    assert response.content == b"pay 5"
    assert realm.accepted == [RequestBinding.for_http("POST", HOST, "/echo", b"pay 5")]


def test_sync_plugin_raises_on_a_missing_proof(client: Client, realm: Realm) -> None:
    realm.drop_proof = True
    with _sync(realm, client) as http, pytest.raises(MutualAuthFailed):
        http.get(f"{SERVICE_URL}/whoami")


def test_sync_plugin_raises_on_an_altered_body(client: Client, realm: Realm) -> None:
    realm.alter_body = True
    with _sync(realm, client) as http, pytest.raises(MutualAuthFailed, match="altered"):
        http.get(f"{SERVICE_URL}/whoami")


def test_sync_plugin_retries_once_after_clock_skew(client: Client, realm: Realm) -> None:
    client.service_ticket("api")  # synced with the KDC, then the realm's clock moves on
    realm.kdc_offset = 1000.0
    realm.service_offsets = [1000.0]
    with _sync(realm, client) as http:
        response = http.get(f"{SERVICE_URL}/whoami")
    assert response.status_code == 200 and [r.status_code for r in response.history] == [401]


def test_sync_plugin_gives_up_after_one_retry(client: Client, realm: Realm) -> None:
    client.service_ticket("api")
    realm.kdc_offset = 1000.0
    realm.service_offsets = [1000.0, 2000.0]
    with _sync(realm, client) as http, pytest.raises(ClockSkew):
        http.get(f"{SERVICE_URL}/whoami")
    assert realm.calls["service"] == 2


def test_sync_plugin_refuses_an_answer_reached_through_a_followed_redirect(client: Client, realm: Realm) -> None:
    with _sync(realm, client) as http, pytest.raises(MutualAuthFailed, match="redirect"):
        http.get(f"{SERVICE_URL}/moved", follow_redirects=True)


def test_sync_plugin_returns_a_verified_redirect_when_not_following(client: Client, realm: Realm) -> None:
    with _sync(realm, client) as http:
        assert http.get(f"{SERVICE_URL}/moved").status_code == 302


def test_async_plugin_signs_and_verifies(client: Client, realm: Realm) -> None:
    async def main() -> httpx.Response:
        async with _async(realm, client) as http:
            return await http.post(f"{SERVICE_URL}/echo?to=bob", content=b"pay 5")

    response = asyncio.run(main())
    assert response.content == b"pay 5"
    assert realm.accepted == [RequestBinding.for_http("POST", HOST, "/echo?to=bob", b"pay 5")]


def test_async_plugin_fetches_tickets_off_the_event_loop(client: Client, realm: Realm,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[threading.Thread] = []
    fetch = client.service_ticket

    def recording_fetch(service: str | Principal) -> Credential:
        threads.append(threading.current_thread())
        return fetch(service)

    monkeypatch.setattr(client, "service_ticket", recording_fetch)

    async def main() -> None:
        async with _async(realm, client) as http:
            await http.get(f"{SERVICE_URL}/whoami")

    asyncio.run(main())
    assert threads and threading.main_thread() not in threads


def test_async_plugin_raises_on_an_altered_body(client: Client, realm: Realm) -> None:
    realm.alter_body = True

    async def main() -> None:
        async with _async(realm, client) as http:
            await http.get(f"{SERVICE_URL}/whoami")

    with pytest.raises(MutualAuthFailed):
        asyncio.run(main())


def test_async_plugin_retries_once_after_an_expired_ticket(client: Client, realm: Realm) -> None:
    realm.service_offsets = [11 * 3600.0, 0.0]  # the first ticket looks expired to the service

    async def main() -> httpx.Response:
        async with _async(realm, client) as http:
            return await http.get(f"{SERVICE_URL}/whoami")

    assert asyncio.run(main()).status_code == 200
    assert (realm.calls["service"], realm.calls["tgs"]) == (2, 2)


def test_httpx_auth_is_the_plugin_class(client: Client) -> None:
    assert isinstance(client.httpx_auth("api"), TallyHttpxAuth)
