"""The requests plug-in on a plain requests.Session: signs, verifies, retries once."""

from __future__ import annotations

import pytest
import requests

from client_sdk import Client, TallyAuth
from tally_protocol.binding import RequestBinding
from tally_protocol.errors import ClockSkew, InvalidRequest, MutualAuthFailed
from tests.client_sdk.realm import SERVICE_URL, Realm

HOST = "127.0.0.1:8751"


def test_plugin_signs_a_binding_the_service_verifies(client: Client, realm: Realm) -> None:
    response = requests.get(f"{SERVICE_URL}/whoami?x=1", auth=client.auth("api"), timeout=5)
    assert response.json() == {"principal": "alice@EXAMPLE.TEST"}
    assert realm.accepted == [RequestBinding.for_http("GET", HOST, "/whoami?x=1", b"")]


def test_plugin_binds_the_post_body(client: Client, realm: Realm) -> None:
    with requests.Session() as session:
        response = session.post(f"{SERVICE_URL}/echo", data=b"pay 5", auth=client.auth("api"), timeout=5)
    assert response.content == b"pay 5"
    assert realm.accepted == [RequestBinding.for_http("POST", HOST, "/echo", b"pay 5")]


def test_plugin_without_a_service_uses_the_clients_map(client: Client) -> None:
    auth = client.auth()
    assert isinstance(auth, TallyAuth)
    assert requests.get(f"{SERVICE_URL}/whoami", auth=auth, timeout=5).status_code == 200


def test_plugin_raises_instead_of_returning_an_unproven_response(client: Client, realm: Realm) -> None:
    realm.drop_proof = True
    with pytest.raises(MutualAuthFailed):
        requests.get(f"{SERVICE_URL}/whoami", auth=client.auth("api"), timeout=5)


def test_plugin_detects_an_altered_body(client: Client, realm: Realm) -> None:
    realm.alter_body = True
    with pytest.raises(MutualAuthFailed, match="altered"):
        requests.get(f"{SERVICE_URL}/whoami", auth=client.auth("api"), timeout=5)


def test_plugin_resends_once_with_a_fresh_authenticator_after_clock_skew(client: Client, realm: Realm) -> None:
    client.service_ticket("api")  # synced with the KDC, then the realm's clock moves on
    realm.kdc_offset = 1000.0
    realm.service_offsets = [1000.0]
    response = requests.get(f"{SERVICE_URL}/whoami", auth=client.auth("api"), timeout=5)
    assert response.status_code == 200 and [r.status_code for r in response.history] == [401]
    assert response.request.headers["Authorization"] != response.history[0].request.headers["Authorization"]


def test_plugin_gives_up_after_one_retry(client: Client, realm: Realm) -> None:
    client.service_ticket("api")
    realm.kdc_offset = 1000.0
    realm.service_offsets = [1000.0, 2000.0]
    with pytest.raises(ClockSkew):
        requests.get(f"{SERVICE_URL}/whoami", auth=client.auth("api"), timeout=5)
    assert realm.calls["service"] == 2


def test_followed_redirect_is_refused_as_unauthenticated(client: Client) -> None:
    with pytest.raises(MutualAuthFailed, match="redirect"):
        requests.get(f"{SERVICE_URL}/moved", auth=client.auth("api"), timeout=5)


def test_generator_body_is_refused(client: Client, realm: Realm) -> None:
    with pytest.raises(InvalidRequest, match="cannot be bound"):
        requests.post(f"{SERVICE_URL}/echo", data=(c for c in [b"a"]), auth=client.auth("api"), timeout=5)
    assert realm.calls["service"] == 0


def test_plugin_repr_holds_no_secrets(client: Client) -> None:
    assert repr(client.auth("api")) == "TallyAuth(service='api')"
