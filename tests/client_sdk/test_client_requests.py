"""Client.request: signing, mutual authentication, and the bounded retry policy."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
import responses

from client_sdk import Client
from kdc.exchange import TicketPolicy
from tally_protocol.binding import RequestBinding
from tally_protocol.errors import (
    BindingMismatch,
    ClockSkew,
    ConfigurationError,
    InvalidRequest,
    MutualAuthFailed,
    ReplayDetected,
    StoreUnavailable,
    TicketExpired,
)
from tally_protocol.keys import Key, Keyset
from tests.client_sdk.realm import API, KDC_URL, SERVICE_URL, Answer, FakeClock, Realm

HOST = "127.0.0.1:8751"


def test_get_returns_the_verified_response(client: Client) -> None:
    response = client.get(f"{SERVICE_URL}/whoami")
    assert response.status_code == 200 and response.json() == {"principal": "alice@EXAMPLE.TEST"}


def test_request_is_bound_to_method_host_path_query_and_body(client: Client, realm: Realm) -> None:
    client.post(f"{SERVICE_URL}/echo?to=bob", data=b'{"amount": 5}')
    assert realm.accepted == [RequestBinding.for_http("POST", HOST, "/echo?to=bob", b'{"amount": 5}')]


def test_post_body_comes_back_verified(client: Client) -> None:
    response = client.post(f"{SERVICE_URL}/echo", json={"amount": 5})
    assert response.json() == {"amount": 5}


def test_text_body_is_sent_and_bound_as_utf8(client: Client, realm: Realm) -> None:
    response = client.post(f"{SERVICE_URL}/echo", data="grüße")
    assert response.content == "grüße".encode()
    assert realm.accepted[0].body == RequestBinding.for_http("POST", HOST, "/", "grüße".encode()).body


def test_streaming_body_is_refused_before_sending(client: Client, realm: Realm) -> None:
    with pytest.raises(InvalidRequest, match="streaming request body"):
        client.post(f"{SERVICE_URL}/echo", data=iter([b"chunk"]))
    assert realm.calls["service"] == 0


def test_explicit_service_overrides_the_map(realm: Realm, mocked: responses.RequestsMock, alice_key_file: Path,
                                            clock: FakeClock) -> None:
    client = Client(KDC_URL, key_file=alice_key_file, clock=clock)
    assert client.get(f"{SERVICE_URL}/whoami", service="api@EXAMPLE.TEST").status_code == 200


def test_services_map_matches_canonical_origins(realm: Realm, mocked: responses.RequestsMock,
                                                alice_key_file: Path, clock: FakeClock) -> None:
    client = Client(KDC_URL, key_file=alice_key_file, clock=clock, services={"HTTP://127.0.0.1:8751/": "api"})
    assert client.get(f"{SERVICE_URL}/whoami").status_code == 200


def test_without_a_service_name_the_request_is_refused_clearly(client: Client, realm: Realm) -> None:
    with pytest.raises(ConfigurationError, match="no service principal for http://127.0.0.1:9000"):
        client.get("http://127.0.0.1:9000/whoami")
    assert realm.calls["tgs"] == 0


def test_app_error_with_a_proof_is_returned(client: Client) -> None:
    assert client.get(f"{SERVICE_URL}/nothing-here").status_code == 404


def test_redirect_is_returned_verified_not_followed(client: Client, realm: Realm) -> None:
    response = client.get(f"{SERVICE_URL}/moved")
    assert response.status_code == 302 and realm.calls["service"] == 1


def test_missing_proof_raises_mutual_auth_failed(client: Client, realm: Realm) -> None:
    realm.drop_proof = True
    with pytest.raises(MutualAuthFailed, match="no mutual-authentication proof"):
        client.get(f"{SERVICE_URL}/whoami")


def test_altered_body_raises_mutual_auth_failed(client: Client, realm: Realm) -> None:
    realm.alter_body = True
    with pytest.raises(MutualAuthFailed, match="altered"):
        client.get(f"{SERVICE_URL}/whoami")


def test_proof_replayed_from_an_earlier_response_raises_mutual_auth_failed(
        client: Client, realm: Realm, monkeypatch: pytest.MonkeyPatch) -> None:
    captured = client.get(f"{SERVICE_URL}/whoami").headers["Authentication-Info"]
    serve = realm.serve

    def attacker(method: str, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        status, answer_headers, answer = serve(method, url, headers, body)
        return status, {**answer_headers, "Authentication-Info": captured}, answer

    monkeypatch.setattr(realm, "serve", attacker)
    with pytest.raises(MutualAuthFailed, match="another request"):
        client.get(f"{SERVICE_URL}/whoami")


def test_expired_service_ticket_is_replaced_and_the_request_retried_once(client: Client, realm: Realm,
                                                                          clock: FakeClock) -> None:
    realm.policy = TicketPolicy(service_ticket_lifetime_s=600)
    first = client.service_ticket("api")
    clock.now = first.endtime - 100  # still good for the client...
    realm.service_offsets = [150.0]  # ...but past its end on the service's clock (within skew)
    assert client.get(f"{SERVICE_URL}/whoami").status_code == 200
    assert client.service_ticket("api") is not first
    assert (realm.calls["service"], realm.calls["tgs"]) == (2, 2)


def test_unknown_key_version_gets_a_new_ticket_and_retries_once(client: Client, realm: Realm) -> None:
    client.service_ticket("api")
    realm.service_keys[API] = Keyset([Key(b"\x05" * 32, 2)])  # rotated, old version dropped
    assert client.get(f"{SERVICE_URL}/whoami").status_code == 200
    assert realm.calls["service"] == 2


def test_ticket_refused_again_after_the_retry_raises(client: Client, realm: Realm) -> None:
    realm.service_offsets = [11 * 3600.0]  # the service's clock is past every ticket's end
    with pytest.raises(TicketExpired):
        client.get(f"{SERVICE_URL}/whoami")
    assert realm.calls["service"] == 2


def _realm_clock_moves(client: Client, realm: Realm, *service_offsets: float) -> None:
    """The client synced with the KDC, then its own clock fell 1000 s behind the realm's."""
    client.service_ticket("api")
    realm.kdc_offset = 1000.0
    realm.service_offsets = list(service_offsets)


def test_service_clock_skew_is_corrected_and_retried_once(client: Client, realm: Realm) -> None:
    _realm_clock_moves(client, realm, 1000.0)
    assert client.get(f"{SERVICE_URL}/whoami").status_code == 200
    assert client.offset == pytest.approx(1000) and realm.calls["service"] == 2


def test_second_clock_skew_raises_clock_skew(client: Client, realm: Realm) -> None:
    _realm_clock_moves(client, realm, 1000.0, 2000.0)
    with pytest.raises(ClockSkew):
        client.get(f"{SERVICE_URL}/whoami")
    assert realm.calls["service"] == 2


def test_forged_time_hint_far_from_the_kdcs_authenticated_time_is_not_adopted(client: Client, realm: Realm) -> None:
    # An attacker answers CLOCK_SKEW with a time an hour ahead, hoping the client
    # signs requests it can hold back; the KDC's sealed time says otherwise.
    realm.service_offsets = [3000.0]
    with pytest.raises(ClockSkew, match="disagrees with the KDC"):
        client.get(f"{SERVICE_URL}/whoami")
    assert client.offset == pytest.approx(0) and realm.calls["service"] == 1


def test_replayed_authenticator_surfaces_as_replay_detected(realm: Realm, mocked: responses.RequestsMock,
                                                            alice_key_file: Path, clock: FakeClock) -> None:
    # A broken random source repeats the authenticator: the service must refuse the second use.
    client = Client(KDC_URL, key_file=alice_key_file, clock=clock, services={SERVICE_URL: "api"},
                    rng=lambda n: b"\x01" * n)
    client.login()
    clock.advance(1)  # so the KDC sees distinct AS and TGS timestamps
    client.get(f"{SERVICE_URL}/whoami")
    with pytest.raises(ReplayDetected):
        client.get(f"{SERVICE_URL}/whoami")
    assert realm.calls["service"] == 2  # no retry: the same request cannot succeed


def test_binding_mismatch_is_raised_without_retry(client: Client, realm: Realm,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    serve = realm.serve

    def rewriting_proxy(method: str, url: str, headers: Mapping[str, str], body: bytes) -> Answer:
        return serve(method, url.replace("/whoami", "/admin"), headers, body)

    monkeypatch.setattr(realm, "serve", rewriting_proxy)
    with pytest.raises(BindingMismatch):
        client.get(f"{SERVICE_URL}/whoami")
    assert realm.calls["service"] == 1


def test_store_unavailable_is_raised_with_retry_after(client: Client, realm: Realm) -> None:
    realm.store_down = True
    with pytest.raises(StoreUnavailable) as caught:
        client.get(f"{SERVICE_URL}/whoami")
    assert caught.value.data["retry_after"] == 30


def test_app_error_stripped_of_its_proof_is_mutual_auth_failed(client: Client, realm: Realm) -> None:
    realm.drop_proof = True  # a 404 whose JSON body carries no tallystick code
    with pytest.raises(MutualAuthFailed, match="no mutual-authentication proof"):
        client.get(f"{SERVICE_URL}/nothing-here")
