"""Fixtures for the KDC tests: a fixed clock, cheap Argon2id, a provisioned realm and its Flask app."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import flask
import pytest
import redis
from flask.testing import FlaskClient

from kdc.app import create_app
from kdc.master_key import MasterKey
from kdc.principal_db import PrincipalDB
from tally_protocol.keys import Keyset, PasswordParams
from tally_protocol.principal import Principal
from tally_runtime.logs import AUDIT_LOGGER
from tally_runtime.redis_settings import RedisSettings
from tally_runtime.settings import Settings

REALM = "EXAMPLE.TEST"
T0 = 1_700_000_000.0


class FixedClock:
    """A clock tests move by hand: expiry and lockout without sleeping."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def cheap_params(salt: bytes) -> PasswordParams:
    """Argon2id at its minimum cost, so password tests take milliseconds."""
    return PasswordParams(salt, iterations=1, memory_kib=8, lanes=1)


def settings_for(tmp: Any) -> Settings:
    return Settings(redis=RedisSettings(), realm=REALM, kdc_url=None, ccache=tmp / "ccache.json",
                    master_key_file=tmp / "master.key")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def master_key() -> MasterKey:
    return MasterKey.generate()


@pytest.fixture(params=["fakeredis", "real-redis"])
def any_redis(request: pytest.FixtureRequest) -> redis.Redis:
    """Runs a test against fakeredis and against the real redis-server."""
    name = "fake_redis" if request.param == "fakeredis" else "real_redis"
    client = request.getfixturevalue(name)
    assert isinstance(client, redis.Redis)
    return client


@dataclass
class Realm:
    """A provisioned realm: a client ``alice`` (key file), a service ``api``, and the KDC app on it."""

    db: PrincipalDB
    app: flask.Flask
    http: FlaskClient
    clock: FixedClock
    alice: Principal
    alice_keys: Keyset
    api: Principal
    api_keys: Keyset


def make_realm(store: redis.Redis, master_key: MasterKey, clock: FixedClock, tmp: Any,
               **config: Any) -> Realm:
    db = PrincipalDB(store, REALM, master_key, clock, password_params=cheap_params)
    db.init_realm()
    alice_keys = db.add_client("alice")
    assert alice_keys is not None
    api_keys = db.add_service("api")
    test_config = {"TESTING": True, "TALLY_RATE_LIMIT_REQUESTS": 10_000, "TALLY_PASSWORD_PARAMS": cheap_params,
                   **config}
    app = create_app(test_config, settings=settings_for(tmp), redis_client=store, master_key=master_key,
                     clock=clock)
    return Realm(db, app, app.test_client(), clock, Principal("alice", REALM), alice_keys,
                 Principal("api", REALM), api_keys)


@pytest.fixture
def realm(fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock, tmp_path: Any) -> Realm:
    return make_realm(fake_redis, master_key, clock, tmp_path, TALLY_LOCKOUT_THRESHOLD=3)


class AuditCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", {})
        self.events.append(dict(fields))
        self.lines.append(self.format(record))


@pytest.fixture
def audit_events() -> Iterator[AuditCapture]:
    from tally_runtime.logs import JsonFormatter

    handler = AuditCapture()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(AUDIT_LOGGER)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture
def down_redis() -> redis.Redis:
    """A client for a loopback port nobody listens on; no retries, so failures are immediate."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from tests.support.redis_proc import free_port

    return redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
