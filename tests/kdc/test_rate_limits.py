"""Per-principal rate limits on AS and TGS: shared by every KDC replica through Redis, fixed windows, 429s."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from kdc.app import create_app
from kdc.lockout import RateLimitPolicy
from kdc.master_key import MasterKey
from kdc.rate_limits import Exchange, PrincipalRateLimitPolicy, RateLimits
from tally_protocol.encoding import b64encode
from tally_protocol.errors import ConfigurationError, RateLimited, StoreUnavailable
from tally_protocol.principal import Principal
from tests.kdc.conftest import REALM, T0, FixedClock, Realm, cheap_params, make_realm, settings_for
from tests.kdc.wire import answer, get_ticket, login, post, send_as, send_tgs
from tests.support.redis_proc import RedisProcess

WRONG = bytes(32)
WINDOW = 10
LIMITS = {"TALLY_AS_RATE_LIMIT": 3, "TALLY_TGS_RATE_LIMIT": 2, "TALLY_PRINCIPAL_RATE_WINDOW_S": WINDOW}


def refused(limit: str) -> float:
    return REGISTRY.get_sample_value("tally_kdc_rate_limited_total", {"limit": limit}) or 0.0


@pytest.fixture
def realm(real_redis: redis.Redis, master_key: MasterKey, clock: FixedClock, tmp_path: Any) -> Realm:
    return make_realm(real_redis, master_key, clock, tmp_path, **LIMITS)


@pytest.fixture
def replica(realm: Realm, redis_server: RedisProcess, master_key: MasterKey, tmp_path: Any) -> Iterator[FlaskClient]:
    """A second KDC app on the same realm and redis-server, with its own connection."""
    store = redis.Redis.from_url(redis_server.url)
    app = create_app({"TESTING": True, "TALLY_RATE_LIMIT_REQUESTS": 10_000, "TALLY_PASSWORD_PARAMS": cheap_params,
                      **LIMITS}, settings=settings_for(tmp_path), redis_client=store, master_key=master_key,
                     clock=realm.clock)
    yield app.test_client()
    store.close()


def alice_as(realm: Realm, http: FlaskClient | None = None, material: bytes = WRONG) -> Any:
    return send_as(http or realm.http, realm.alice, material, now=realm.clock.now)[1]


def test_as_requests_are_counted_per_principal_across_replicas(realm: Realm, replica: FlaskClient) -> None:
    codes = [alice_as(realm).status_code, alice_as(realm, replica).status_code, alice_as(realm).status_code]
    assert codes == [401, 401, 401]
    limited = alice_as(realm, replica)
    assert limited.status_code == 429


def test_rate_limited_answer_is_429_json_with_retry_after_the_rest_of_the_window(realm: Realm) -> None:
    realm.clock.now = T0 + 3  # T0 is a window boundary (T0 % 10 == 0): 7 s of this window remain
    for _ in range(3):
        alice_as(realm)
    limited = alice_as(realm)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    body = limited.get_json()
    assert (body["error"], body["limit"], body["retry_after"]) == ("RATE_LIMITED", "as_principal", 7)
    assert body["message"] == "too many AS requests for this principal; retry in 7 s"
    assert body["request_id"] == limited.headers["X-Request-Id"]


def test_the_limit_lifts_when_the_window_ends(realm: Realm) -> None:
    for _ in range(3):
        alice_as(realm)
    assert alice_as(realm).status_code == 429
    realm.clock.advance(WINDOW)
    login(realm.http, realm.alice, realm.alice_keys.current.material, now=realm.clock.now)


def test_principals_are_limited_independently(realm: Realm) -> None:
    for _ in range(4):
        alice_as(realm)
    assert alice_as(realm).status_code == 429
    realm.db.add_client("bob")
    assert send_as(realm.http, Principal("bob", REALM), WRONG, now=T0)[1].status_code == 401


def test_an_unknown_name_is_limited_like_a_real_one(realm: Realm) -> None:
    ghost = Principal("ghost", REALM)
    answers = [[send_as(realm.http, who, WRONG, now=T0)[1] for _ in range(4)] for who in (realm.alice, ghost)]
    real, unknown = ([(r.status_code, answer(r)) for r in run] for run in answers)
    assert real == unknown and real[-1][0] == 429


def test_a_limited_as_request_is_refused_before_preauthentication(realm: Realm) -> None:
    for _ in range(3):
        alice_as(realm)
    # The right key, but refused before anything is opened.
    assert alice_as(realm, material=realm.alice_keys.current.material).get_json()["error"] == "RATE_LIMITED"


def test_tgs_requests_are_counted_per_authenticated_client_across_replicas(realm: Realm,
                                                                          replica: FlaskClient) -> None:
    tgt = login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    get_ticket(realm.http, tgt, realm.api, now=T0)
    get_ticket(replica, tgt, realm.api, now=T0)
    _, limited = send_tgs(realm.http, tgt, realm.api, now=T0)
    assert (limited.status_code, limited.get_json()["error"], limited.get_json()["limit"]) == (
        429, "RATE_LIMITED", "tgs_principal")


def test_a_replayed_tgs_request_does_not_spend_the_clients_budget(realm: Realm) -> None:
    tgt = login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    pending, first = send_tgs(realm.http, tgt, realm.api, now=T0)
    assert first.status_code == 200
    for _ in range(3):  # an eavesdropper replays the captured request
        replayed = post(realm.http, "/v1/tgs", {"tgs_req": b64encode(pending.request_bytes)})
        assert replayed.get_json()["error"] == "REPLAY_DETECTED"
    get_ticket(realm.http, tgt, realm.api, now=T0)  # the second of alice's two


def test_rate_limited_refusals_are_counted_by_limit(realm: Realm) -> None:
    before = refused("as_principal"), refused("tgs_principal")
    for _ in range(5):
        alice_as(realm)
    assert (refused("as_principal"), refused("tgs_principal")) == (before[0] + 2, before[1])


def test_address_limited_refusals_are_counted_and_named(fake_redis: redis.Redis, master_key: MasterKey,
                                                        clock: FixedClock, tmp_path: Any) -> None:
    r = make_realm(fake_redis, master_key, clock, tmp_path, TALLY_RATE_LIMIT_REQUESTS=1)
    before = refused("address")
    r.http.post("/v1/as/params", json={"principal": "bob"})
    limited = r.http.post("/v1/as/params", json={"principal": "bob"})
    assert (limited.status_code, limited.get_json()["limit"]) == (429, "address")
    assert refused("address") == before + 1


def test_limits_come_from_settings(fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock,
                                   tmp_path: Any) -> None:
    from dataclasses import replace

    settings = replace(settings_for(tmp_path), as_rate_limit=1, tgs_rate_limit=7, principal_rate_window_s=60)
    app = create_app({"TESTING": True}, settings=settings, redis_client=fake_redis, master_key=master_key,
                     clock=clock)
    assert app.extensions["tally_kdc"].rate_limiter.principal == PrincipalRateLimitPolicy(1, 7, 60)


def test_limiter_fails_closed_when_the_store_is_down(down_redis: redis.Redis, clock: FixedClock) -> None:
    with pytest.raises(StoreUnavailable):
        RateLimits(down_redis, clock=clock).hit_principal(Exchange.AS, Principal("alice", REALM))


def test_limiter_counts_each_exchange_separately(fake_redis: redis.Redis, clock: FixedClock) -> None:
    limits = RateLimits(fake_redis, RateLimitPolicy(), PrincipalRateLimitPolicy(1, 1, WINDOW), clock)
    alice = Principal("alice", REALM)
    limits.hit_principal(Exchange.AS, alice)
    limits.hit_principal(Exchange.TGS, alice)
    with pytest.raises(RateLimited) as err:
        limits.hit_principal(Exchange.TGS, alice)
    assert err.value.data == {"retry_after": WINDOW, "limit": "tgs_principal"}


def test_limits_must_be_positive() -> None:
    with pytest.raises(ConfigurationError):
        PrincipalRateLimitPolicy(as_requests=0)
