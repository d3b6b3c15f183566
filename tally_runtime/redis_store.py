"""Connecting to Redis, and turning its failures into ``StoreUnavailable``.

``TALLY_REDIS_URL`` unset means the embedded in-process store (fakeredis): one
shared server per process, so a KDC and a service started in the same process
(``tally demo``, tests) see the same data.  It is not persistent and says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import fakeredis
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tally_protocol.errors import StoreUnavailable

from .metrics import redis_operation

T = TypeVar("T")

#: Bounded waits: a slow or hung Redis becomes a 503, never a hung worker.
CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 2.0

_EMBEDDED_SERVER: fakeredis.FakeServer | None = None

#: Every failure redis-py raises for an unreachable or misbehaving server.
STORE_ERRORS: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)

EMBEDDED_NOTICE = "using the embedded in-process store: nothing is persisted (set TALLY_REDIS_URL for Redis)"


def connect(url: str | None) -> redis.Redis:
    """A client for ``url``, or for the process's embedded store when ``url`` is None."""
    if url is None:
        global _EMBEDDED_SERVER
        if _EMBEDDED_SERVER is None:
            _EMBEDDED_SERVER = fakeredis.FakeServer()
        return fakeredis.FakeRedis(server=_EMBEDDED_SERVER)
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=COMMAND_TIMEOUT_S,
        health_check_interval=15,
        # One immediate retry heals a pooled connection that Redis closed (restart,
        # failover); no backoff loop, so an outage is a 503 within bounded time.
        retry=Retry(NoBackoff(), 1),
    )


def is_embedded(client: redis.Redis) -> bool:
    return type(client).__module__.startswith("fakeredis")


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


#: Optimistic transactions retried this often before answering 503.
TX_RETRIES = 16


def transact(client: redis.Redis, keys: list[str], fn: Callable[[Any], T], *, contended: str) -> T:
    """Run ``fn`` under WATCH ``keys`` and retry when another writer got there first.

    ``fn`` reads through the pipeline, calls ``pipe.multi()`` and queues its
    writes; its return value is returned once EXEC succeeds.  After
    ``TX_RETRIES`` lost races the caller gets ``StoreUnavailable(contended)``.
    """
    with store_errors():
        for _ in range(TX_RETRIES):
            pipe: Any
            with client.pipeline() as pipe:
                try:
                    pipe.watch(*keys)
                    result = fn(pipe)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue
    raise StoreUnavailable(contended)
