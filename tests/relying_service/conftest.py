"""Fixtures for the relying-service tests: an in-memory realm, verifiers on a fixed clock."""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from client_sdk.flow import Credential
from relying_service.verifier import Verifier
from tally_protocol.keys import Keyset
from tally_protocol.replay import ReplayCache
from tests.relying_service.memory_realm import NOW, MakeVerifier, MemoryRealm
from tests.relying_service.recording_cache import RecordingCache
from tests.support.redis_proc import free_port


@pytest.fixture
def realm() -> MemoryRealm:
    return MemoryRealm.create()


@pytest.fixture
def cred(realm: MemoryRealm) -> Credential:
    """A service ticket for alice to api@EXAMPLE.TEST, from the real AS and TGS exchanges."""
    return realm.service_ticket()


@pytest.fixture
def make_verifier(realm: MemoryRealm) -> MakeVerifier:
    def make(cache: ReplayCache | None = None, *, keyset: Keyset | None = None, now: float = NOW) -> Verifier:
        return Verifier(realm.service, keyset or realm.service_keys, cache or RecordingCache(),
                        clock=lambda: now)
    return make


@pytest.fixture
def dead_redis() -> redis.Redis:
    """A client for a loopback port where nothing listens: every command fails to connect."""
    return redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, socket_timeout=1,
                       retry=Retry(NoBackoff(), 0))  # fail at once, no backoff
