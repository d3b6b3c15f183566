"""Fixtures: a realm on a fixed clock, mocked HTTP in front of it, and a client for alice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

from client_sdk import Client
from tests.client_sdk.realm import KDC_URL, SERVICE_URL, FakeClock, Realm, install_responses


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def realm(clock: FakeClock) -> Realm:
    return Realm(clock)


@pytest.fixture
def mocked(realm: Realm) -> Iterator[responses.RequestsMock]:
    """Every ``requests`` call goes to the realm; anything else is refused."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        install_responses(rsps, realm)
        yield rsps


@pytest.fixture
def alice_key_file(tmp_path: Path, realm: Realm) -> Path:
    return realm.write_key_file(tmp_path / "alice.key")


@pytest.fixture
def ccache_path(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "ccache.json"


@pytest.fixture
def client(realm: Realm, mocked: responses.RequestsMock, alice_key_file: Path, clock: FakeClock) -> Client:
    """alice with her key file, the api service mapped to the service URL."""
    return Client(KDC_URL, "alice@EXAMPLE.TEST", key_file=alice_key_file, clock=clock,
                  services={SERVICE_URL: "api"}, sleep=clock.advance)
