"""connect() on real topologies: standalone, TLS + ACL, Sentinel and a 3x3 Cluster, and every failure a 503.

Each topology is started once for the module (tests/support/redis_topologies.py);
tests that break one (pausing a node) use their own server.  Bounds on time
are fail-closed guarantees (a hung Redis must not hang a worker), not speed
targets: they allow one command timeout per attempt the client makes.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from client_sdk.flow import make_ap_request
from kdc.master_key import MasterKey
from kdc.revocation import RevocationList
from relying_service.verifier import Verifier
from tally_protocol.binding import RequestBinding
from tally_protocol.errors import StoreUnavailable
from tally_protocol.principal import Principal
from tally_runtime.redis_settings import RedisSettings
from tally_runtime.redis_store import STORE_ERRORS, connect, is_cluster, is_embedded, store_errors, transact
from tally_runtime.replay_cache import RedisReplayCache
from tests.kdc.conftest import REALM, T0, FixedClock, make_realm
from tests.kdc.wire import get_ticket, login
from tests.support.redis_proc import RedisProcess, free_port
from tests.support.redis_topologies import (
    RedisCluster3x3,
    SentinelGroup,
    ServerProcess,
    TlsAclRedis,
    make_certificates,
    wait_until,
)

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 500


def settings(env: dict[str, str], **extra: str) -> RedisSettings:
    return RedisSettings.from_env({**env, **{f"TALLY_REDIS_{k}": v for k, v in extra.items()}})


def unavailable_within(seconds: float, operation: Callable[[], object]) -> float:
    """Run ``operation`` under store_errors; it must raise StoreUnavailable within ``seconds``."""
    start = time.monotonic()
    with pytest.raises(StoreUnavailable), store_errors():
        operation()
    elapsed = time.monotonic() - start
    assert elapsed < seconds
    return elapsed


@pytest.fixture(scope="module")
def sentinel_group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path_factory.mktemp("sentinel"), password="data-pass", sentinel_password="watch-pass")
    yield group.start()
    group.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster3x3]:
    c = RedisCluster3x3(tmp_path_factory.mktemp("cluster"))
    yield c.start()
    c.stop()


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsAclRedis]:
    server = TlsAclRedis(tmp_path_factory.mktemp("tls"), require_client_cert=True)
    yield server.start()
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A server of its own, for tests that pause it."""
    proc = RedisProcess(tmp_path)
    proc.start()
    yield proc
    proc.stop()


def test_no_url_is_the_embedded_store() -> None:
    assert is_embedded(connect(RedisSettings()))


def test_standalone_client_has_bounded_timeouts_and_pool(redis_server: RedisProcess) -> None:
    client = connect(settings({"TALLY_REDIS_URL": redis_server.url}, CONNECT_TIMEOUT_MS="300",
                              COMMAND_TIMEOUT_MS="700", POOL_SIZE="5"))
    pool = client.connection_pool
    assert (pool.connection_kwargs["socket_connect_timeout"], pool.connection_kwargs["socket_timeout"]) == (0.3, 0.7)
    assert pool.max_connections == 5
    assert client.ping()
    client.close()


def test_a_silent_server_is_a_503_within_one_command_timeout() -> None:
    with socket.socket() as listener:  # accepts connections (the kernel does) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
        client = connect(settings({"TALLY_REDIS_URL": url}, COMMAND_TIMEOUT_MS=str(TIMEOUT_MS)))
        unavailable_within(2 * TIMEOUT_MS / 1000, lambda: client.get("k"))  # a timeout is not retried
        client.close()


def test_a_paused_server_is_a_503_within_one_command_timeout(own_redis: RedisProcess) -> None:
    client = connect(settings({"TALLY_REDIS_URL": own_redis.url}, COMMAND_TIMEOUT_MS=str(TIMEOUT_MS)))
    client.set("k", "1")
    with redis.Redis.from_url(own_redis.url) as admin:
        admin.execute_command("CLIENT", "PAUSE", "3000", "ALL")
    unavailable_within(2 * TIMEOUT_MS / 1000, lambda: client.get("k"))
    client.close()


def test_nothing_listening_is_a_503() -> None:
    client = connect(settings({"TALLY_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}))
    unavailable_within(5, client.ping)
    client.close()


@pytest.mark.parametrize("error", [
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.AuthenticationError,
    redis.sentinel.MasterNotFoundError, redis.exceptions.ClusterDownError, redis.exceptions.TryAgainError,
    redis.exceptions.ClusterError, redis.exceptions.SlotNotCoveredError, redis.exceptions.ReadOnlyError,
    redis.exceptions.RedisClusterException, ssl.SSLError, ConnectionResetError])
def test_every_client_failure_is_store_unavailable(error: type[Exception]) -> None:
    assert issubclass(error, STORE_ERRORS)
    with pytest.raises(StoreUnavailable), store_errors():
        raise error("store trouble")


def test_moved_and_ask_left_after_the_redirect_budget_are_store_unavailable() -> None:
    for error in (redis.exceptions.MovedError("3999 127.0.0.1:6381"), redis.exceptions.AskError("3999 127.0.0.1:6381")):
        with pytest.raises(StoreUnavailable), store_errors():
            raise error


# --- TLS and ACL -----------------------------------------------------------------------------------------

def test_tls_with_client_certificate_and_acl_user(tls_redis: TlsAclRedis) -> None:
    client = connect(settings(tls_redis.env()))
    assert client.acl_whoami() == "tally"
    assert client.set("k", "v") and client.get("k") == b"v"
    client.close()


def test_tls_without_the_client_certificate_the_server_demands_is_a_503(tls_redis: TlsAclRedis) -> None:
    client = connect(settings(tls_redis.env(client_cert=False)))
    unavailable_within(5, client.ping)
    client.close()


def test_a_server_certificate_from_another_ca_is_a_503(tls_redis: TlsAclRedis, tmp_path: Path) -> None:
    other_ca = make_certificates(tmp_path)[0]
    client = connect(settings({**tls_redis.env(), "TALLY_REDIS_TLS_CA_FILE": str(other_ca)}))
    unavailable_within(5, client.ping)
    client.close()


def test_a_wrong_acl_password_is_a_503(tls_redis: TlsAclRedis, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.password"
    wrong.write_text("not-it")
    wrong.chmod(0o600)
    client = connect(settings({**tls_redis.env(), "TALLY_REDIS_PASSWORD_FILE": str(wrong)}))
    unavailable_within(5, client.ping)
    client.close()


def test_the_disabled_default_user_cannot_connect(tls_redis: TlsAclRedis) -> None:
    env = {k: v for k, v in tls_redis.env().items() if k not in ("TALLY_REDIS_USERNAME", "TALLY_REDIS_PASSWORD_FILE")}
    client = connect(settings(env))
    unavailable_within(5, lambda: client.set("k", "v"))
    client.close()


# --- Sentinel ------------------------------------------------------------------------------------------------

def test_sentinel_client_writes_to_the_master_the_sentinels_name(sentinel_group: SentinelGroup) -> None:
    client = connect(settings(sentinel_group.env()))
    client.set("sentinel-k", "v")
    with sentinel_group.master().client() as master:
        assert master.get("sentinel-k") == b"v"
    client.close()


def test_sentinel_credentials_are_needed_to_ask_the_sentinels(sentinel_group: SentinelGroup) -> None:
    env = {k: v for k, v in sentinel_group.env().items() if k != "TALLY_REDIS_SENTINEL_PASSWORD_FILE"}
    client = connect(settings(env))
    unavailable_within(5, client.ping)
    client.close()


def test_an_unknown_master_name_is_a_503(sentinel_group: SentinelGroup) -> None:
    env = {**sentinel_group.env(), "TALLY_REDIS_URL": sentinel_group.url.rsplit("/", 1)[0] + "/nosuchmaster"}
    client = connect(settings(env))
    unavailable_within(5, client.ping)
    client.close()


def test_no_sentinel_answering_is_a_503() -> None:
    url = f"redis+sentinel://127.0.0.1:{free_port()},127.0.0.1:{free_port()}/tally"
    client = connect(settings({"TALLY_REDIS_URL": url}))
    unavailable_within(5, client.ping)
    client.close()


def test_a_paused_sentinel_master_is_a_503_within_one_command_timeout(sentinel_group: SentinelGroup) -> None:
    client = connect(settings(sentinel_group.env(), COMMAND_TIMEOUT_MS=str(TIMEOUT_MS), MIN_REPLICAS="0"))
    client.set("k", "1")
    with sentinel_group.master().client() as master:
        master.execute_command("CLIENT", "PAUSE", "5000", "WRITE")  # writes hang; CLIENT UNPAUSE still gets through
        try:
            unavailable_within(2 * TIMEOUT_MS / 1000, lambda: client.set("k", "2"))
        finally:
            master.execute_command("CLIENT", "UNPAUSE")
    client.close()


# --- Cluster -------------------------------------------------------------------------------------------------

@pytest.fixture
def cluster_client(cluster: RedisCluster3x3) -> Iterator[redis.Redis]:
    client = connect(settings(cluster.env(), COMMAND_TIMEOUT_MS=str(TIMEOUT_MS), MIN_REPLICAS="0"))
    yield client
    client.close()


def test_cluster_client_reaches_every_master(cluster: RedisCluster3x3, cluster_client: redis.Redis) -> None:
    keys = {cluster.master_of_slot(key_slot(k.encode())): k for k in (f"spread-{i}" for i in range(64))}
    assert len(keys) == 3 and is_cluster(cluster_client)
    for key in keys.values():
        cluster_client.set(key, key)
    assert [cluster_client.get(k) for k in keys.values()] == [k.encode() for k in keys.values()]


def test_transact_runs_watch_multi_on_a_cluster(cluster_client: redis.Redis) -> None:
    def bump(pipe: redis.client.Pipeline) -> int:
        value = int(pipe.get("{p:alice}counter") or 0) + 1
        pipe.multi()
        pipe.set("{p:alice}counter", value)
        pipe.set("{p:alice}mirror", value)
        return value

    results = [transact(cluster_client, ["{p:alice}counter"], bump, contended="busy") for _ in range(3)]
    assert results[-1] - results[0] == 2 and cluster_client.get("{p:alice}mirror") == str(results[-1]).encode()


def test_a_cross_slot_transaction_is_refused_not_half_applied(cluster_client: redis.Redis) -> None:
    def both(pipe: redis.client.Pipeline) -> None:
        pipe.multi()
        pipe.set("{a}x", 1)
        pipe.set("{b}x", 1)

    with pytest.raises(StoreUnavailable):
        transact(cluster_client, ["{a}x"], both, contended="busy")
    assert cluster_client.exists("{a}x") == 0 and cluster_client.exists("{b}x") == 0


def test_a_cluster_none_of_whose_nodes_answers_is_a_503_at_connect() -> None:
    with pytest.raises(StoreUnavailable):
        connect(settings({"TALLY_REDIS_URL": f"redis+cluster://127.0.0.1:{free_port()}"}, CONNECT_TIMEOUT_MS="300"))


def test_a_paused_cluster_master_is_a_503_within_one_command_timeout(cluster: RedisCluster3x3,
                                                                     cluster_client: redis.Redis) -> None:
    cluster_client.set("paused-k", "1")
    with cluster.node(cluster.master_of_slot(key_slot(b"paused-k"))).client() as master:
        master.execute_command("CLIENT", "PAUSE", "5000", "WRITE")  # writes hang; CLIENT UNPAUSE still gets through
        try:
            unavailable_within(2 * TIMEOUT_MS / 1000, lambda: cluster_client.set("paused-k", "2"))
        finally:
            master.execute_command("CLIENT", "UNPAUSE")
    assert cluster_client.set("paused-k", "3")


# --- Durability: WAIT after every replay claim (docs/protocol.md §9.5.1) -----------------------------------

#: The authenticators' time: fixed, so a test can find the set its claim went to (``cache.entry(key, CTIME)``).
CTIME = int(time.time())


def claim(cache: RedisReplayCache, key: bytes) -> bool:
    return cache.claim(key, 60_000, ctime=CTIME, max_skew_s=300)


def durable_cache(env: dict[str, str], **extra: str) -> tuple[RedisReplayCache, redis.Redis]:
    redis_settings = settings(env, **extra)
    client = connect(redis_settings)
    cache = RedisReplayCache(client, durability=redis_settings.durability)
    cache.seed(birth=0)  # a long-running store: no recovery window in the way
    return cache, client


def replica_acknowledges(master_port: int) -> bool:
    """A write on the master is acknowledged: Redis 7 streams to a linked replica only after its first ack."""
    with redis.Redis(port=master_port) as master:
        master.set("tally-test:settled", "1")
        return int(master.execute_command("WAIT", 1, 200)) >= 1


def test_a_claim_that_no_replica_acknowledged_is_a_503(own_redis: RedisProcess) -> None:
    cache, client = durable_cache({"TALLY_REDIS_URL": own_redis.url}, MIN_REPLICAS="1", REPLICA_ACK_TIMEOUT_MS="100")
    with pytest.raises(StoreUnavailable, match="reached 0 of the 1 replicas"):
        claim(cache, os.urandom(16))
    client.close()


def test_a_claim_is_accepted_once_a_replica_holds_it_and_refused_when_the_replica_is_gone(
        own_redis: RedisProcess, tmp_path: Path) -> None:
    replica = ServerProcess(tmp_path / "replica", free_port(), [f"replicaof 127.0.0.1 {own_redis.port}"])
    replica.start()
    try:
        wait_until(lambda: replica_acknowledges(own_redis.port), 10, "the replica did not sync")
        cache, client = durable_cache({"TALLY_REDIS_URL": own_redis.url}, MIN_REPLICAS="1",
                                      REPLICA_ACK_TIMEOUT_MS="200")
        key = os.urandom(16)
        assert claim(cache, key) is True
        with replica.client() as on_replica:
            assert on_replica.sismember(*cache.entry(key, CTIME)) == 1  # WAIT returned: the replica has it
        replica.kill()
        with pytest.raises(StoreUnavailable):
            claim(cache, os.urandom(16))
        client.close()
    finally:
        replica.stop()


def test_sentinel_claims_are_on_the_replica_when_accepted(sentinel_group: SentinelGroup) -> None:
    cache, client = durable_cache(sentinel_group.env())  # min replicas defaults to 1 for Sentinel
    key = os.urandom(16)
    assert claim(cache, key) is True
    with sentinel_group.replica().client() as replica:
        assert replica.sismember(*cache.entry(key, CTIME)) == 1
    client.close()


def test_cluster_claims_wait_on_the_master_of_their_slot(cluster: RedisCluster3x3) -> None:
    cache, client = durable_cache(cluster.env())  # min replicas defaults to 1 for a Cluster
    for _ in range(6):  # keys on several masters: each WAIT goes to the node that wrote
        key = os.urandom(16)
        assert claim(cache, key) is True
        with cluster.replica_of(cluster.master_of_slot(key_slot(cache.entry(key, CTIME)[0]))).client() as replica:
            replica.execute_command("READONLY")  # a cluster replica answers reads of its master's slots only so
            assert replica.sismember(*cache.entry(key, CTIME)) == 1
    client.close()


def durable_revocations(env: dict[str, str], **extra: str) -> tuple[RevocationList, redis.Redis]:
    redis_settings = settings(env, **extra)
    client = connect(redis_settings)
    return RevocationList(client, "EXAMPLE.TEST", durability=redis_settings.durability), client


def test_a_revocation_no_replica_acknowledged_is_a_503_not_a_success(own_redis: RedisProcess) -> None:
    revocations, client = durable_revocations({"TALLY_REDIS_URL": own_redis.url}, MIN_REPLICAS="1",
                                              REPLICA_ACK_TIMEOUT_MS="100")
    with pytest.raises(StoreUnavailable, match="revocation was written but reached 0 of the 1 replicas"):
        revocations.revoke_principal(Principal("mallory", "EXAMPLE.TEST"))
    client.close()


def test_a_sentinel_revocation_is_on_the_replica_when_it_returns(sentinel_group: SentinelGroup) -> None:
    revocations, client = durable_revocations(sentinel_group.env())
    mallory = Principal("mallory", "EXAMPLE.TEST")
    revocations.revoke_principal(mallory)
    with sentinel_group.replica().client() as replica:
        assert replica.hget("tally:{EXAMPLE.TEST:rev}:p", str(mallory)) is not None
    client.close()


# --- The ACL rule docs/operations.md recommends is enough for the KDC and the services --------------------------

def documented_acl(password: str) -> list[str]:
    """The rule of the ``user tally on ...`` line in docs/operations.md, with ``password``."""
    docs = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
    line = next(ln for ln in docs.read_text().splitlines() if ln.startswith("user tally on "))
    return [f">{password}" if word == ">CHANGE-ME" else word for word in line.split()[2:]]


def run_the_flow_as(store: redis.Redis, redis_settings: RedisSettings, tmp_path: Path) -> None:
    """Realm setup, AS + TGS over HTTP, the service's AP check with replay cache and revocation list."""
    realm = make_realm(store, MasterKey.generate(), FixedClock(T0), tmp_path)
    tgt = login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    ticket = get_ticket(realm.http, tgt, realm.api, now=T0)
    revocation = RevocationList(store, REALM, realm.clock)
    verifier = Verifier(realm.api, realm.api_keys,
                        RedisReplayCache(store, clock=realm.clock, durability=redis_settings.durability),
                        revocation=revocation, clock=realm.clock)
    binding = RequestBinding.for_http("GET", "api.example.test", "/whoami", b"")
    header = make_ap_request(ticket, binding, now=T0, rng=os.urandom).authorization
    assert verifier.verify(header, binding).client == realm.alice
    revocation.revoke_principal(realm.alice)


def test_the_documented_acl_serves_a_single_server(own_redis: RedisProcess, tmp_path: Path) -> None:
    with redis.Redis.from_url(own_redis.url) as admin:
        admin.execute_command("ACL", "SETUSER", "tally", *documented_acl("acl-pass"))
        admin.execute_command("ACL", "SETUSER", "default", "off")
    password_file = tmp_path / "redis.password"
    password_file.write_text("acl-pass")
    password_file.chmod(0o600)
    redis_settings = settings({"TALLY_REDIS_URL": own_redis.url}, USERNAME="tally",
                              PASSWORD_FILE=str(password_file))
    store = connect(redis_settings)
    run_the_flow_as(store, redis_settings, tmp_path)
    with pytest.raises(redis.exceptions.NoPermissionError):
        store.config_get("*")  # administrative commands stay out of reach
    store.close()


def test_the_documented_acl_serves_a_cluster(cluster: RedisCluster3x3, tmp_path: Path) -> None:
    for node in cluster.nodes:  # ACL users are per node on a Cluster
        with node.client() as admin:
            admin.execute_command("ACL", "SETUSER", "tally", *documented_acl("acl-pass"))
    password_file = tmp_path / "redis.password"
    password_file.write_text("acl-pass")
    password_file.chmod(0o600)
    redis_settings = settings(cluster.env(), USERNAME="tally", PASSWORD_FILE=str(password_file))
    store = connect(redis_settings)
    run_the_flow_as(store, redis_settings, tmp_path)
    store.close()
