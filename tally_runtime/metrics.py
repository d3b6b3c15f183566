"""Prometheus metric families for the KDC, relying services and the Redis store, defined once.

Labels are low-cardinality by rule: endpoint (a route pattern, never a raw
path), outcome, error code, exchange and service principal.  A client's name
or address never becomes a label: it would leak who uses the realm to anyone
who can scrape, and one series per client would grow without bound.

Under gunicorn each worker is a process with its own counters.  When
``PROMETHEUS_MULTIPROC_DIR`` is set in the environment *before the server
starts* (prometheus-client chooses its storage at import), every worker
writes its values to files there and ``/metrics`` on any worker aggregates
them all; the directory must be emptied at each start (``tally kdc serve``
and ``tally service serve`` do so).  Unset, each process reports its own.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Bucket bounds (seconds): an issuance is ~ms (X25519, AEAD); a Redis call sub-ms on a LAN.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

KDC_REQUESTS = Counter("tally_kdc_requests", "KDC HTTP requests by route and status class.",
                       ["endpoint", "outcome"])
KDC_REFUSALS = Counter("tally_kdc_refusals", "KDC requests refused, by route and error code.",
                       ["endpoint", "code"])
KDC_RATE_LIMITED = Counter("tally_kdc_rate_limited", "KDC requests refused by a rate limit (RATE_LIMITED), by limit.",
                           ["limit"])
KDC_ISSUE_SECONDS = Histogram("tally_kdc_issue_seconds", "Time to answer a successful AS or TGS exchange.",
                              ["exchange"], buckets=LATENCY_BUCKETS)

SERVICE_VERIFICATIONS = Counter("tally_service_verifications", "Tally Authorization headers checked, by outcome.",
                                ["service", "outcome"])
SERVICE_REFUSALS = Counter("tally_service_refusals", "Tally Authorization headers refused, by error code.",
                           ["service", "code"])
SERVICE_REPLAYS = Counter("tally_service_replays", "Authenticators refused as replays (REPLAY).", ["service"])
SERVICE_VERIFY_SECONDS = Histogram("tally_service_verify_seconds", "Time to verify one Authorization header.",
                                   ["service"], buckets=LATENCY_BUCKETS)

REDIS_SECONDS = Histogram("tally_redis_operation_seconds", "Time of one guarded Redis operation (store_errors block).",
                          buckets=LATENCY_BUCKETS)
REDIS_ERRORS = Counter("tally_redis_errors", "Redis operations that failed (answered as STORE_UNAVAILABLE).")


@contextlib.contextmanager
def redis_operation(errors: tuple[type[BaseException], ...]) -> Iterator[None]:
    """Time one Redis operation and count it as an error when it raises one of ``errors``."""
    start = time.perf_counter()
    try:
        yield
    except errors:
        REDIS_ERRORS.inc()
        raise
    finally:
        REDIS_SECONDS.observe(time.perf_counter() - start)


def multiprocess_dir() -> str | None:
    """The directory workers share their values through, or None for per-process metrics."""
    return os.environ.get(MULTIPROC_ENV) or None


def reset_multiprocess_dir() -> None:
    """Empty the shared directory at server start: files of a previous run would be added to this one's."""
    directory = multiprocess_dir()
    if directory is None:
        return
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))


def mark_worker_dead(pid: int) -> None:
    """gunicorn ``child_exit`` hook: a dead worker's gauges stop counting (its counters are kept)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def scrape_registry() -> CollectorRegistry:
    """What ``/metrics`` reports: every worker's values in multiprocess mode, else this process's."""
    if multiprocess_dir() is None:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def exposition() -> tuple[bytes, str]:
    """The Prometheus text format body and its content type."""
    return generate_latest(scrape_registry()), CONTENT_TYPE_LATEST


StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def metrics_wsgi_app() -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """A WSGI app answering every request with the metrics, for mounting at ``/metrics``.

    For example ``DispatcherMiddleware(app, {"/metrics": metrics_wsgi_app()})``; serve it
    on a private interface or firewall it: it holds no secrets, but it is not for the public.
    """

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body, content_type = exposition()
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                  ("Cache-Control", "no-store")])
        return [body]

    return app
