"""The SDK's X-Request-Id: one id per logical request, from the KDC exchanges it needs to the service request.

Every request the realm receives is recorded with its id (``Realm.request_ids``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import requests
import responses

from client_sdk import Client, KdcClient
from tally_protocol.errors import InvalidRequest, KdcUnreachable, PreauthFailed, StoreUnavailable
from tally_runtime.cli_errors import command_error
from tally_runtime.request_ids import is_well_formed, request_id_scope
from tests.client_sdk.realm import KDC_URL, SERVICE_URL, Realm, httpx_transport


def ids(realm: Realm) -> list[str | None]:
    return [request_id for _, request_id in realm.request_ids]


def test_a_service_request_and_the_kdc_exchanges_it_needed_share_one_id(client: Client, realm: Realm) -> None:
    response = client.get(f"{SERVICE_URL}/whoami")
    paths = [path for path, _ in realm.request_ids]
    assert paths == ["/v1/as", "/v1/tgs", "/whoami"]
    (request_id,) = set(ids(realm))
    assert request_id is not None and is_well_formed(request_id) and len(request_id) == 32
    assert response.request.headers["X-Request-Id"] == request_id


def test_each_logical_request_gets_a_fresh_id(client: Client, realm: Realm) -> None:
    client.get(f"{SERVICE_URL}/whoami")
    client.get(f"{SERVICE_URL}/whoami")
    first, second = realm.request_ids[-2][1], realm.request_ids[-1][1]
    assert first != second


def test_the_callers_id_is_kept_end_to_end(client: Client, realm: Realm) -> None:
    requests.get(f"{SERVICE_URL}/whoami", auth=client.auth("api"), headers={"X-Request-Id": "mine-1"}, timeout=5)
    assert ids(realm) == ["mine-1"] * 3


def test_an_id_bound_by_the_caller_names_its_kdc_exchanges(client: Client, realm: Realm) -> None:
    with request_id_scope("batch-9"):
        client.login()
        client.service_ticket("api")
    assert ids(realm) == ["batch-9", "batch-9"]


def test_a_malformed_caller_id_is_refused_before_anything_is_sent(client: Client, realm: Realm) -> None:
    with pytest.raises(InvalidRequest, match="X-Request-Id"):
        client.get(f"{SERVICE_URL}/whoami", headers={"X-Request-Id": "two words"})
    assert realm.request_ids == []


def test_a_retry_after_retry_after_keeps_the_id(client: Client, realm: Realm) -> None:
    client.service_ticket("api")
    realm.request_ids.clear()
    realm.store_down, realm.store_retry_after = True, 2
    with pytest.raises(StoreUnavailable) as refused:
        client.get(f"{SERVICE_URL}/whoami", headers={"X-Request-Id": "retry-me"})
    assert ids(realm) == ["retry-me", "retry-me"]
    assert refused.value.data["retry_after"] == 2


def test_the_httpx_plugin_sends_one_id_for_the_exchange_and_the_request(client: Client, realm: Realm) -> None:
    with httpx.Client(transport=httpx_transport(realm), auth=client.httpx_auth("api")) as http:
        response = http.get(f"{SERVICE_URL}/whoami")
    (request_id,) = set(ids(realm))
    assert response.request.headers["X-Request-Id"] == request_id


def test_the_async_httpx_plugin_binds_the_id_in_its_worker_thread(client: Client, realm: Realm) -> None:
    async def main() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx_transport(realm), auth=client.httpx_auth("api")) as http:
            return await http.get(f"{SERVICE_URL}/whoami", headers={"X-Request-Id": "async-1"})

    assert asyncio.run(main()).status_code == 200
    assert ids(realm) == ["async-1"] * 3


def test_a_kdc_refusal_carries_the_kdcs_request_id(realm: Realm, mocked: responses.RequestsMock, tmp_path: Path,
                                                   alice_key_file: Path) -> None:
    mocked.replace(responses.POST, f"{KDC_URL}/v1/as", status=401, json={
        "error": "PREAUTH_FAILED", "message": "pre-authentication failed", "request_id": "kdc-side-1"})
    with pytest.raises(PreauthFailed) as refused:
        Client(KDC_URL, "alice@EXAMPLE.TEST", key_file=alice_key_file).login()
    assert refused.value.data["request_id"] == "kdc-side-1"
    assert str(command_error(refused.value).message).endswith("(PREAUTH_FAILED) [request id kdc-side-1]")


def test_an_answer_that_is_no_tallystick_error_names_the_request_id(mocked: responses.RequestsMock) -> None:
    mocked.replace(responses.POST, f"{KDC_URL}/v1/tgs", status=502, body=b"<html>bad gateway</html>")
    with request_id_scope("proxy-trouble"), pytest.raises(KdcUnreachable, match="request id proxy-trouble"):
        KdcClient(KDC_URL).tgs_exchange(b"x")


def test_a_service_calling_on_through_the_sdk_passes_its_requests_id_on(client: Client, realm: Realm) -> None:
    with request_id_scope("incoming-7"):  # what RequestIdMiddleware binds while a service handles a request
        client.get(f"{SERVICE_URL}/whoami")
    assert ids(realm) == ["incoming-7"] * 3
