"""The stores' own test suites, rerun on a real Cluster (3 masters + 3 replicas), Sentinel and TLS + ACL standalone.

Not copies: the suites of the principal database, revocation list, admin
accounts and audit log, enrollment and pairing, the KDC's AS + TGS flow (a
service verifying the ticket: AP) and the replay-cache contract are imported
here, and the Redis client they are given (``fake_redis``, ``real_redis``,
``any_redis``) becomes the topology's, flushed before every test.  A
multi-key operation that spans two slots fails them on the Cluster
(CROSSSLOT): every suite runs there.  Sentinel and TLS + ACL change how the
client connects, not where keys live, so the KDC flow and the replay
contract run there too, not every suite.  Each topology starts once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType

import pytest
import redis

import tests.kdc.admin.test_accounts as admin_accounts_suite
import tests.kdc.admin.test_audit_log as audit_log_suite
import tests.kdc.conftest as kdc_fixtures
import tests.kdc.keys.test_revocation as revocation_suite
import tests.kdc.onboarding.conftest as onboarding_fixtures
import tests.kdc.onboarding.test_enrollment as enrollment_suite
import tests.kdc.onboarding.test_pairing as pairing_suite
import tests.kdc.test_principal_db as principal_db_suite
import tests.kdc.test_tgs as tgs_suite
from client_sdk.flow import make_ap_request
from kdc.revocation import RevocationList
from relying_service.verifier import Verifier
from tally_protocol.binding import RequestBinding
from tally_protocol.errors import ReplayDetected
from tally_protocol.replay import ReplayCache
from tally_runtime.redis_settings import Durability, RedisSettings
from tally_runtime.redis_store import connect
from tally_runtime.replay_cache import RedisReplayCache
from tests.kdc.conftest import REALM, T0, Realm
from tests.kdc.wire import get_ticket, login
from tests.runtime.test_replay_cache_contract import NOW, SKEW, FakeClock, RedisContract
from tests.support.redis_topologies import RedisCluster3x3, SentinelGroup, TlsAclRedis

pytestmark = pytest.mark.e2e

TOPOLOGIES = ("cluster", "sentinel", "tls-acl")
#: Suites that run on every topology; the others run on the Cluster.
EVERY_TOPOLOGY = (tgs_suite.__name__, RedisContract.__module__, __name__)

#: Tests that are about one client library or one process, not about the store's layout.
NOT_TOPOLOGY_TESTS = frozenset({
    "test_record_forged_in_the_store_is_refused",  # builds a second, embedded store by design
    "test_wrong_code_and_unknown_principal_cost_the_same_store_commands",  # counts commands of a standalone client
})


def _adopt(*suites: ModuleType) -> None:
    """Make every test and fixture of ``suites`` this module's, so they run on the topology clients."""
    for suite in suites:
        for name, value in vars(suite).items():
            is_fixture = type(value).__name__ == "FixtureFunctionDefinition" or hasattr(value, "_pytestfixturefunction")
            if (name.startswith("test_") and callable(value) and name not in NOT_TOPOLOGY_TESTS) or (
                    is_fixture and name not in globals()):
                globals()[name] = value


_adopt(kdc_fixtures, onboarding_fixtures, principal_db_suite, revocation_suite, admin_accounts_suite, audit_log_suite, enrollment_suite,
       pairing_suite, tgs_suite)


@pytest.fixture(scope="module")
def topologies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RedisSettings]]:
    cluster = RedisCluster3x3(tmp_path_factory.mktemp("cluster"))
    sentinel = SentinelGroup(tmp_path_factory.mktemp("sentinel"), password="data-pass")
    tls = TlsAclRedis(tmp_path_factory.mktemp("tls"))
    started: list[RedisCluster3x3 | SentinelGroup | TlsAclRedis] = []
    try:
        for topology in (cluster, sentinel, tls):
            topology.start()
            started.append(topology)
        yield {"cluster": RedisSettings.from_env(cluster.env()), "sentinel": RedisSettings.from_env(sentinel.env()),
               "tls-acl": RedisSettings.from_env(tls.env())}
    finally:
        for topology in started:
            topology.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "topology_client" in metafunc.fixturenames:
        every = metafunc.function.__module__ in EVERY_TOPOLOGY
        metafunc.parametrize("topology", TOPOLOGIES if every else ("cluster",), indirect=True)


@pytest.fixture
def topology(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def topology_client(topology: str, topologies: dict[str, RedisSettings]) -> Iterator[redis.Redis]:
    client = connect(topologies[topology])
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def fake_redis(topology_client: redis.Redis) -> redis.Redis:
    return topology_client


@pytest.fixture
def real_redis(topology_client: redis.Redis) -> redis.Redis:
    return topology_client


@pytest.fixture
def any_redis(topology_client: redis.Redis) -> redis.Redis:
    return topology_client


class TestReplayCacheContractOnTopologies(RedisContract):
    @pytest.fixture
    def client(self, topology_client: redis.Redis) -> redis.Redis:
        return topology_client


class TestDurableReplayCacheContractOnTopologies(RedisContract):
    """The same contract with each claim WAITed for the topology's replicas (§9.5.1): 1 on Cluster and Sentinel."""

    @pytest.fixture
    def client(self, topology_client: redis.Redis) -> redis.Redis:
        return topology_client

    @pytest.fixture
    def durability(self, topology: str, topologies: dict[str, RedisSettings]) -> Durability:
        return topologies[topology].durability

    @pytest.fixture
    def cache(self, client: redis.Redis, durability: Durability) -> ReplayCache:
        cache = RedisReplayCache(client, clock=FakeClock(), durability=durability)
        cache.seed(birth=NOW - 10 * SKEW)
        return cache

    @pytest.fixture
    def fresh_cache(self, client: redis.Redis, durability: Durability) -> ReplayCache:
        return RedisReplayCache(client, clock=FakeClock(), durability=durability)


def test_as_tgs_and_ap_with_the_shared_replay_cache_and_revocation_list(realm: Realm,
                                                                       topology_client: redis.Redis) -> None:
    tgt = login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    ticket = get_ticket(realm.http, tgt, realm.api, now=T0)
    verifier = Verifier(realm.api, realm.api_keys, RedisReplayCache(topology_client, clock=realm.clock),
                        revocation=RevocationList(topology_client, REALM, realm.clock), clock=realm.clock)
    binding = RequestBinding.for_http("GET", "api.example.test", "/whoami", b"")
    header = make_ap_request(ticket, binding, now=T0, rng=os.urandom).authorization
    assert verifier.verify(header, binding).client == realm.alice
    with pytest.raises(ReplayDetected):
        verifier.verify(header, binding)
