"""Serving a WSGI app under gunicorn, the production server (never Flask's development server).

The app comes from a zero-argument factory that gunicorn calls in each
worker after fork (``preload_app`` off), so every worker opens its own Redis
connection: sockets shared across a fork corrupt each other's replies.
Used by ``tally kdc serve`` and ``tally service serve`` alike.

SIGHUP to the server is forwarded to every worker, which reloads its key
files in place (the keytab, or the KDC's master key file): gunicorn's own
HUP handling would replace every worker, and there is no configuration to
re-read here.

With ``PROMETHEUS_MULTIPROC_DIR`` set, the directory is emptied before the
workers start and a dead worker is marked so, so ``/metrics`` on any worker
reports the whole server (``tally_runtime.metrics``).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from tally_protocol.errors import ConfigurationError
from tally_runtime.metrics import mark_worker_dead, reset_multiprocess_dir

WsgiFactory = Callable[[], Any]
#: Settings only newer gunicorn versions know; skipped on older ones.
_OPTIONAL = frozenset({"control_socket_disable"})


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


def _child_exit(server: Any, worker: Any) -> None:
    mark_worker_dead(worker.pid)


def gunicorn_options(*, host: str, port: int, workers: int = 2, threads: int = 4,
                     access_log: bool = False, timeout_s: int = 30) -> dict[str, Any]:
    """The gunicorn settings ``serve_wsgi`` uses (exposed so they can be checked without a server)."""
    if not 0 < port < 65536:
        raise ConfigurationError(f"port {port} is out of range")
    if not 1 <= workers <= 64 or not 1 <= threads <= 256:
        raise ConfigurationError("workers must be 1-64 and threads 1-256")
    bind = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
    return {
        "bind": [bind],
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "preload_app": False,  # the factory runs in each worker, after fork
        "timeout": timeout_s,
        "graceful_timeout": 10,
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "tally",
        # gunicorn >= 25.1 opens a control socket at one fixed per-user path, so a KDC and a
        # service on one host would take each other's; nothing here uses it.
        "control_socket_disable": True,
        "child_exit": _child_exit,  # multiprocess metrics: a dead worker's live gauges are dropped
    }


def serve_wsgi(factory: WsgiFactory, *, host: str, port: int, workers: int = 2, threads: int = 4,
               access_log: bool = False) -> None:
    """Run ``factory()``'s app under gunicorn on ``host:port`` until stopped (SIGTERM/SIGINT)."""
    reset_multiprocess_dir()  # a previous run's metric files would be added to this run's
    _FactoryApplication(factory, gunicorn_options(host=host, port=port, workers=workers, threads=threads,
                                                  access_log=access_log)).run()
