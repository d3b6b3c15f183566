"""Serving a WSGI app under gunicorn, the production server (never Flask's development server).

One set of production settings (``server_settings``) serves ``tally kdc
serve``, ``tally service serve`` and ``deploy/gunicorn.conf.py`` for running
gunicorn directly: the same worker, timeouts, request limits, JSON access
log and metrics hooks everywhere.

The app comes from a zero-argument factory that gunicorn calls in each
worker after fork (``preload_app`` off), so every worker opens its own Redis
connection: sockets shared across a fork corrupt each other's replies.

Signals: SIGTERM stops gracefully (new connections refused at once, requests
in flight get ``graceful_timeout`` to finish, exit 0); SIGINT (Ctrl-C) and
SIGQUIT stop at once.  SIGHUP is forwarded to every worker, which reloads
its key files in place (the keytab, or the KDC's master key file): gunicorn's
own HUP handling would replace every worker, and there is no configuration
to re-read here.

Metrics: every worker writes its values to ``PROMETHEUS_MULTIPROC_DIR`` so
``/metrics`` on any worker reports the whole server.  Unset, the server makes
a private temporary directory for the run and removes it at exit.  The
directory is emptied before the workers start, and a dead worker is marked so
(``prometheus_client.multiprocess.mark_process_dead``).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from tally_protocol.errors import ConfigurationError
from tally_runtime.metrics import MULTIPROC_ENV, mark_worker_dead, multiprocess_dir, reset_multiprocess_dir

WsgiFactory = Callable[[], Any]
#: Settings only newer gunicorn versions know; skipped on older ones.
_OPTIONAL = frozenset({"control_socket_disable"})

#: After SIGTERM, requests in flight get this long; below systemd's TimeoutStopSec and compose's stop_grace_period.
GRACEFUL_TIMEOUT_S = 25
#: A worker silent this long (stuck, not merely slow: Redis waits are bounded far below it) is killed and replaced.
TIMEOUT_S = 30
#: Idle keep-alive connections are closed after this; a reverse proxy in front keeps its own pool.
KEEPALIVE_S = 5
#: Request line and header limits: a Tally Authorization header is a few kilobytes at most.
LIMIT_REQUEST_LINE = 8190
LIMIT_REQUEST_FIELDS = 100
LIMIT_REQUEST_FIELD_SIZE = 16384
WORKER_CLASS = "kdc.server_worker.GracefulThreadWorker"
LOGGER_CLASS = "kdc.server_log.JsonServerLogger"

#: The metrics directory this process made for itself (removed at exit), if it made one.
_private_metrics_dir: str | None = None


def on_starting(server: Any) -> None:
    """gunicorn hook, in the arbiter before any worker: a fresh PROMETHEUS_MULTIPROC_DIR for this run."""
    global _private_metrics_dir
    if multiprocess_dir() is None:
        _private_metrics_dir = tempfile.mkdtemp(prefix="tally-metrics-")
        os.environ[MULTIPROC_ENV] = _private_metrics_dir  # inherited by the workers forked from here
        _use_multiprocess_values()
        # on_exit is skipped when the start fails (a port in use): remove it at any exit of this process.
        atexit.register(_remove_private_dir, os.getpid())
    reset_multiprocess_dir()  # a previous run's metric files would be added to this run's


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook: a dead worker's live gauges stop counting (its counters are kept)."""
    mark_worker_dead(worker.pid)


def on_exit(server: Any) -> None:
    """gunicorn hook: remove the private metrics directory, if this run made one."""
    _remove_private_dir(os.getpid())


def _remove_private_dir(owner_pid: int) -> None:
    global _private_metrics_dir
    if _private_metrics_dir is not None and os.getpid() == owner_pid:  # workers inherit atexit handlers
        shutil.rmtree(_private_metrics_dir, ignore_errors=True)
        _private_metrics_dir = None


def _use_multiprocess_values() -> None:
    """Make metrics already defined store their values in the multiprocess directory.

    prometheus-client picks its value storage when it is imported, and ``tally``
    imports it long before ``serve`` runs; the choice is made again here, in the
    arbiter before any worker forks, and every metric of the default registry
    is given values of the new kind (labelled ones lose only children not yet used).
    """
    from prometheus_client import REGISTRY, values
    from prometheus_client.metrics import MetricWrapperBase

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    for collector in list(REGISTRY._collector_to_names):
        if not isinstance(collector, MetricWrapperBase):
            continue
        if collector._is_parent():  # type: ignore[no-untyped-call]
            with collector._lock:
                collector._metrics.clear()
        else:
            collector._metric_init()  # type: ignore[no-untyped-call]


def server_settings(*, workers: int = 2, threads: int = 4, access_log: bool = True,
                    timeout_s: int = TIMEOUT_S, graceful_timeout_s: int = GRACEFUL_TIMEOUT_S) -> dict[str, Any]:
    """The production gunicorn settings, without the address to listen on."""
    if not 1 <= workers <= 64 or not 1 <= threads <= 256:
        raise ConfigurationError("workers must be 1-64 and threads 1-256")
    return {
        "workers": workers,
        "threads": threads,
        "worker_class": WORKER_CLASS,
        "preload_app": False,  # the factory runs in each worker, after fork
        "timeout": timeout_s,
        "graceful_timeout": graceful_timeout_s,
        "keepalive": KEEPALIVE_S,
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_fields": LIMIT_REQUEST_FIELDS,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        "accesslog": "-" if access_log else None,
        "logger_class": LOGGER_CLASS,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "tally",
        # gunicorn >= 25.1 opens a control socket at one fixed per-user path, so a KDC and a
        # service on one host would take each other's; nothing here uses it.
        "control_socket_disable": True,
        "on_starting": on_starting,
        "child_exit": child_exit,
        "on_exit": on_exit,
    }


def gunicorn_options(*, host: str, port: int, workers: int = 2, threads: int = 4, access_log: bool = True,
                     timeout_s: int = TIMEOUT_S, graceful_timeout_s: int = GRACEFUL_TIMEOUT_S) -> dict[str, Any]:
    """The gunicorn settings ``serve_wsgi`` uses (exposed so they can be checked without a server)."""
    if not 0 < port < 65536:
        raise ConfigurationError(f"port {port} is out of range")
    bind = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    return {"bind": [bind], **server_settings(workers=workers, threads=threads, access_log=access_log,
                                              timeout_s=timeout_s, graceful_timeout_s=graceful_timeout_s)}


class _ForwardingArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's arbiter, except that SIGHUP goes to the workers (key reload) instead of replacing them."""

    def handle_hup(self) -> None:
        self.log.info("Hang up: forwarding to the workers (key files reload in place)")
        self.kill_workers(signal.SIGHUP)


class _FactoryApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn's embedding interface: options from a dict, the app from a factory."""

    def __init__(self, factory: WsgiFactory, options: Mapping[str, Any]) -> None:
        self._factory = factory
        self._options = dict(options)
        super().__init__()

    def load_config(self) -> None:
        for name, value in self._options.items():
            if name in _OPTIONAL and name not in self.cfg.settings:
                continue
            self.cfg.set(name, value)

    def load(self) -> Any:
        return self._factory()

    def run(self) -> None:
        try:
            _ForwardingArbiter(self).run()
        except RuntimeError as e:  # gunicorn's own reporting of a failed start
            print(f"\nError: {e}\n", file=sys.stderr)
            sys.stderr.flush()
            sys.exit(1)


def serve_wsgi(factory: WsgiFactory, *, host: str, port: int, workers: int = 2, threads: int = 4,
               access_log: bool = True) -> None:
    """Run ``factory()``'s app under gunicorn on ``host:port`` until stopped (SIGTERM: gracefully)."""
    _FactoryApplication(factory, gunicorn_options(host=host, port=port, workers=workers, threads=threads,
                                                  access_log=access_log)).run()
