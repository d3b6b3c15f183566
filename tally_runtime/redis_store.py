"""Connecting to Redis (standalone, Sentinel or Cluster), and turning its failures into ``StoreUnavailable``.

An embedded settings object (no ``TALLY_REDIS_URL``) means the in-process
store (fakeredis): one shared server per process, so a KDC and a service
started in the same process (``tally demo``, tests) see the same data.  It is
not persistent and says so.

Every client has bounded connect and command timeouts; timeouts are never
retried, so a hung Redis is a 503 in about one command timeout, never a hung
worker.  Standalone and Sentinel clients retry a broken connection once at
once (it heals a pooled connection that Redis closed after a restart or a
failover).  The Cluster client retries nothing: it reads the slot map again
after a failure instead, so the next request goes to the right node
(docs/operations.md "Redis topologies" gives the bounds).
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import fakeredis
import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from tally_protocol.errors import ConfigurationError, StoreUnavailable

from .metrics import redis_operation
from .redis_settings import Durability, RedisSettings, RedisUrl, Topology

T = TypeVar("T")

#: A pooled connection idle this long is PINGed before use, so a dead one is found before a request needs it.
HEALTH_CHECK_INTERVAL_S = 15

_EMBEDDED_SERVER: fakeredis.FakeServer | None = None

#: Every failure the standalone, Sentinel and Cluster clients raise for an unreachable or
#: misbehaving store: RedisError covers ConnectionError, TimeoutError, MasterNotFoundError,
#: ClusterDownError, TryAgainError, MovedError/AskError left over after the redirect budget and
#: ResponseError; RedisClusterException (not a RedisError) covers SlotNotCoveredError and a
#: cluster none of whose nodes answers; OSError covers sockets and TLS below redis-py.
STORE_ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, RedisClusterException, OSError)

EMBEDDED_NOTICE = "using the embedded in-process store: nothing is persisted (set TALLY_REDIS_URL for Redis)"


def connect(settings: RedisSettings) -> redis.Redis:
    """A client for ``settings``' topology, or for the process's embedded store when no URL is set.

    A Cluster client is returned typed as ``redis.Redis``: it has the same
    command methods and pipelines, and the stores' keys are laid out so every
    multi-key operation stays in one slot (``is_cluster`` tells them apart).
    A Cluster is asked for its slot map here, so an unreachable one is
    ``StoreUnavailable`` at start; standalone and Sentinel clients connect on
    first use.
    """
    target = settings.target
    if target is None:
        global _EMBEDDED_SERVER
        if _EMBEDDED_SERVER is None:
            _EMBEDDED_SERVER = fakeredis.FakeServer()
        return fakeredis.FakeRedis(server=_EMBEDDED_SERVER)
    if target.topology is Topology.SENTINEL:
        return _sentinel_master(settings, target)
    if target.topology is Topology.CLUSTER:
        return _cluster(settings, target)
    if target.unix_path is not None:
        return redis.Redis(unix_socket_path=target.unix_path, db=target.db, **_client_kwargs(settings, target))
    (host, port), = target.endpoints
    return redis.Redis(host=host, port=port, db=target.db, **_client_kwargs(settings, target), **_tls_kwargs(settings))


def _timeouts(settings: RedisSettings) -> dict[str, Any]:
    return {"socket_connect_timeout": settings.connect_timeout_ms / 1000,
            "socket_timeout": settings.command_timeout_ms / 1000}


def _client_kwargs(settings: RedisSettings, target: RedisUrl) -> dict[str, Any]:
    return {**_timeouts(settings), "username": target.username, "password": target.password,
            "max_connections": settings.pool_size, "health_check_interval": HEALTH_CHECK_INTERVAL_S,
            # One immediate retry on a broken connection, none on a timeout: a slow Redis must not get twice as slow.
            "retry": Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))}


def _tls_kwargs(settings: RedisSettings) -> dict[str, Any]:
    if settings.target is None or not settings.target.tls:
        return {}
    # The server's certificate must chain to the CA (or the system's) and name the host we dialled.
    return {"ssl": True, "ssl_cert_reqs": "required", "ssl_check_hostname": True,
            "ssl_ca_certs": str(settings.tls_ca_file) if settings.tls_ca_file else None,
            "ssl_certfile": str(settings.tls_cert_file) if settings.tls_cert_file else None,
            "ssl_keyfile": str(settings.tls_key_file) if settings.tls_key_file else None}


def _sentinel_master(settings: RedisSettings, target: RedisUrl) -> redis.Redis:
    sentinel_kwargs = {**_timeouts(settings), **_tls_kwargs(settings), "username": settings.sentinel_username,
                       "password": settings.sentinel_password,
                       # No retry (redis-py's default backs off for seconds): a sentinel that fails is skipped for the next.
                       "retry": Retry(NoBackoff(), 0)}
    # A sentinel that sees no peer may be partitioned away with a stale view of who the master is.
    sentinels = Sentinel(list(target.endpoints),  # type: ignore[no-untyped-call]
                         min_other_sentinels=min(1, len(target.endpoints) - 1), sentinel_kwargs=sentinel_kwargs)
    if target.master_name is None:  # parse_url never lets one through; typed as optional for the other forms
        raise ConfigurationError("a Sentinel URL needs the master's name")
    master: redis.Redis = sentinels.master_for(  # type: ignore[no-untyped-call]
        target.master_name, db=target.db, **_client_kwargs(settings, target), **_tls_kwargs(settings))
    return master


def _cluster(settings: RedisSettings, target: RedisUrl) -> redis.Redis:
    kwargs = _client_kwargs(settings, target)
    del kwargs["retry"]
    # No retry at all: redis-py's cluster client would retry timeouts too (twice the wait), and would
    # retry a transaction's EXEC after a connection error on a new connection that no longer holds its
    # WATCH, applying it unchecked.  It re-reads the slot map after a failure, so the next try is right.
    try:
        nodes = [ClusterNode(h, p) for h, p in target.endpoints]  # type: ignore[no-untyped-call]
        client = RedisCluster(startup_nodes=nodes, retry=Retry(NoBackoff(), 0),
                              require_full_coverage=True, **kwargs, **_tls_kwargs(settings))
    except STORE_ERRORS as e:
        raise StoreUnavailable(f"no node of the Redis Cluster answered ({settings.redacted_url})") from e
    return cast(redis.Redis, client)


def is_embedded(client: redis.Redis) -> bool:
    return type(client).__module__.startswith("fakeredis")


def is_cluster(client: redis.Redis) -> bool:
    return isinstance(client, RedisCluster)


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Translate Redis failures into ``StoreUnavailable`` (fail closed)."""
    try:
        with redis_operation(STORE_ERRORS):  # one place that sees every guarded Redis call: latency, errors
            yield
    except STORE_ERRORS as e:
        raise StoreUnavailable() from e


def ping(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except STORE_ERRORS:
        return False


def round_trip(client: redis.Redis, route_key: bytes, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send ``commands`` in one write on one connection and read every reply (raw: no response callbacks).

    For what redis-py's pipelines cannot express, such as ``WAIT`` right
    after ``EXEC`` on the connection that wrote (WAIT counts that connection's
    writes), and for the hot paths' batches.  On a single server or Sentinel
    the connection is the calling thread's own (``HeldConnection``: no pool
    checkout per round trip); on a Cluster, a pooled connection to the master
    of ``route_key``'s slot.  An error reply is raised after every reply has
    been read.  When the write itself fails (a connection Redis closed), or a
    Cluster answers MOVED/ASK (the queued commands were refused, EXECABORT),
    the commands are sent once more (on a Cluster after reading the slot map
    again); a failure while reading is not retried, since the commands may
    have run.
    """
    return _first_error_raised(round_trip_replies(client, route_key, commands))


def round_trip_replies(client: redis.Redis, route_key: bytes, commands: list[tuple[Any, ...]]) -> list[Any]:
    """As ``round_trip``, with each error reply left in its place (a ``ResponseError``) instead of raised."""
    if not is_cluster(client):
        return thread_connection(client).replies(commands)
    cluster = cast(RedisCluster, client)
    try:
        return _cluster_send_and_read(cluster, route_key, commands, may_resend=True)
    except _SendAgain:
        cluster.nodes_manager.initialize()  # the slot map again: the next try goes to the slot's master now
        return _cluster_send_and_read(cluster, route_key, commands, may_resend=False)


def confirm_replicated(client: redis.Redis, ack_key: str, durability: Durability, *, what: str) -> None:
    """Make sure a write just made (on any connection) reached ``durability.min_replicas`` replicas.

    ``WAIT`` counts only the writes of the connection it runs on, so one more
    write (``ack_key``, which must share the slot of the data written) goes
    first on the same connection: a replica that acknowledges it has every
    earlier write of that master too, since replication is one ordered
    stream.  Fewer acknowledgements fail closed: the write may be lost in a
    failover, and the caller must say so rather than report success.
    """
    wanted = durability.min_replicas
    if not wanted:
        return
    with store_errors():
        replies = round_trip(client, ack_key.encode(), [("SET", ack_key, "1", "PX", 60_000),
                                                         ("WAIT", wanted, durability.replica_ack_timeout_ms)])
    if replies[-1] < wanted:
        raise StoreUnavailable(f"{what} was written but reached {replies[-1]} of the {wanted} replicas it needs, "
                               "so a failover could lose it; run it again")


class _SendAgain(Exception):
    """Nothing ran (the write failed, or a Cluster node refused the slot): read the slot map and resend."""


def _cluster_send_and_read(cluster: RedisCluster, route_key: bytes, commands: list[tuple[Any, ...]], *,
                           may_resend: bool) -> list[Any]:
    node = cluster.get_node_from_key(route_key)  # type: ignore[no-untyped-call]
    pool = cluster.get_redis_connection(node).connection_pool
    conn = pool.get_connection()
    try:
        replies = _write_and_read(conn, commands, may_resend=may_resend)
    finally:
        pool.release(conn)
    if may_resend and any(isinstance(e, redis.exceptions.AskError) for e in replies):  # MovedError is an AskError
        raise _SendAgain()
    return replies


def _first_error_raised(replies: list[Any]) -> list[Any]:
    """``replies`` when none is an error reply; else the first error, raised."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def _write_and_read(conn: Any, commands: list[tuple[Any, ...]], *, may_resend: bool) -> list[Any]:
    """``commands`` in one write, then every reply (error replies included, as exceptions, in their places).

    A failed write raises ``_SendAgain`` when ``may_resend`` (nothing ran); any
    failure while reading disconnects, so no unread reply is taken for a later
    command's."""
    try:
        try:
            conn.send_packed_command(conn.pack_commands(commands))
        except redis.exceptions.ConnectionError:
            conn.disconnect()
            if may_resend:
                raise _SendAgain() from None
            raise
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except redis.exceptions.ResponseError as e:  # the other replies must still be read off the socket
                replies.append(e)
    except BaseException:
        conn.disconnect()  # unread replies would be taken for the next command's
        raise
    return replies


class HeldConnection:
    """One connection kept out of a standalone or Sentinel client's pool, for a caller that never sends from two
    threads at once: ``thread_connection`` gives each thread its own.

    A pool checkout and release cost lock and observability bookkeeping on
    every round trip; keeping the connection saves them.  What they check is
    kept, in the pool's order (redis-py ``ConnectionPool.get_connection``):
    ``connect()`` (a no-op on a live connection; Sentinel asks for the master
    there), then the readiness test (a connection the server closed, or one
    holding unexpected data, is replaced once, and a second failure raises).
    A Sentinel connection to an address that is no longer the master the
    pool last learnt of is dropped first, as the pool's release would drop
    it.  A failed read disconnects, so no unread reply is ever taken for a
    later command's; a failed write is sent once more on a new connection
    (nothing ran); a forked child makes its own.  The connection is made as
    the pool makes its own but not counted against its ``max_connections``,
    so the pool keeps the size ``TALLY_REDIS_POOL_SIZE`` gives it.
    """

    def __init__(self, client: redis.Redis) -> None:
        if is_cluster(client):
            raise TypeError("a Cluster client routes each command to its node: use round_trip")
        self._pool: Any = client.connection_pool
        self._sentinel = isinstance(self._pool, SentinelConnectionPool)
        self._conn: Any = None
        self._pid = 0

    def round_trip(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """As ``round_trip``, on the held connection (raw replies; the first error reply raised)."""
        return _first_error_raised(self.replies(commands))

    def replies(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """As ``round_trip_replies``, on the held connection."""
        conn = self._checked_out()
        try:
            return _write_and_read(conn, commands, may_resend=True)
        except _SendAgain:
            conn.connect()  # the failed write disconnected it: a new connection (on Sentinel, to the master)
            return _write_and_read(conn, commands, may_resend=False)

    def _checked_out(self) -> Any:
        pid = os.getpid()
        if self._conn is None or self._pid != pid:  # first use, or a fork: the parent's socket is not ours
            self._conn, self._pid = self._pool.connection_class(**self._pool.connection_kwargs), pid
        conn = self._conn
        if self._sentinel and self._pool.master_address not in (None, (conn.host, conn.port)):
            conn.disconnect()  # a master the sentinels have replaced, whether or not it still answers
        conn.connect()
        if _stale(conn):
            conn.disconnect()
            conn.connect()
            if _stale(conn):
                raise redis.exceptions.ConnectionError("the Redis connection is not ready")
        return conn


def _stale(conn: Any) -> bool:
    """The pool's checkout test: anything to read between round trips (or a closed socket) means it is unusable."""
    try:
        return bool(conn.can_read())
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
        return True


#: Per pool, each thread's own ``HeldConnection`` (closed when the thread, or the pool, is gone).
_THREAD_CONNECTIONS: weakref.WeakKeyDictionary[Any, threading.local] = weakref.WeakKeyDictionary()
_THREAD_CONNECTIONS_LOCK = threading.Lock()


def _reset_thread_connections_lock() -> None:
    global _THREAD_CONNECTIONS_LOCK
    _THREAD_CONNECTIONS_LOCK = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_reset_thread_connections_lock)


def thread_connection(client: redis.Redis) -> HeldConnection:
    """The calling thread's connection to a single server's or Sentinel master's ``client``.

    Each thread that makes round trips keeps one connection, outside the
    pool's ``max_connections``: a gthread worker has as many as threads
    that used it.  Its round trips then pay no pool checkout and release."""
    pool = client.connection_pool
    local = _THREAD_CONNECTIONS.get(pool)
    if local is None:
        with _THREAD_CONNECTIONS_LOCK:
            local = _THREAD_CONNECTIONS.setdefault(pool, threading.local())
    held: HeldConnection | None = getattr(local, "held", None)
    if held is None:
        held = local.held = HeldConnection(client)
    return held


#: Optimistic transactions retried this often before answering 503.
TX_RETRIES = 16


def transact(client: redis.Redis, keys: list[str], fn: Callable[[Any], T], *, contended: str) -> T:
    """Run ``fn`` under WATCH ``keys`` and retry when another writer got there first.

    ``fn`` reads through the pipeline, calls ``pipe.multi()`` and queues its
    writes; its return value is returned once EXEC succeeds.  After
    ``TX_RETRIES`` lost races the caller gets ``StoreUnavailable(contended)``.
    On a Cluster every key ``fn`` touches must hash to the slot of ``keys``
    (the stores use one hash tag per transaction).
    """
    with store_errors():
        for _ in range(TX_RETRIES):
            pipe: Any
            with client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(*keys)
                    result = fn(pipe)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue
    raise StoreUnavailable(contended)
