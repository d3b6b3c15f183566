"""The gunicorn worker the KDC and relying services run in: gthread, made to stop listening at SIGTERM.

On SIGTERM (``systemctl stop``, ``docker stop``, a rolling restart) gunicorn
lets a worker finish the requests it holds, up to ``graceful_timeout``.  Its
threaded worker, though, keeps its copy of the listening socket open until
the very end, so during that grace the kernel still completes handshakes of
new connections that nobody will ever serve: they hang, then are reset.
Closing the worker's copy as soon as it stops accepting lets the socket close
once the arbiter and every worker have let go, so new connections are refused
at once and a load balancer moves on to another replica.  Each process only
closes its own descriptor: a single worker stopped alone (``TTOU``) leaves
the others listening.
"""

from __future__ import annotations

import signal

from gunicorn.workers.gthread import ThreadWorker


class GracefulThreadWorker(ThreadWorker):  # type: ignore[misc]
    """``gthread``, closing its listening sockets when a graceful stop begins (not when it ends)."""

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:  # the graceful stop, not a full connection pool
            for listener in self.sockets:
                listener.close()  # idempotent: gthread closes them again when it exits

    def init_signals(self) -> None:
        super().init_signals()
        # Ctrl-C in a terminal signals the whole process group: the arbiter answers SIGINT by sending
        # every worker SIGQUIT, so a worker that also acted on SIGINT ran gunicorn's quick exit twice,
        # the second time from inside the first one's handler, and now and then hung until SIGKILL.
        signal.signal(signal.SIGINT, signal.SIG_IGN)

