"""The gunicorn worker the KDC and relying services run in: gthread, made to share connections fairly and to
stop listening at SIGTERM.

Every worker polls the one listening socket, and gthread accepts whatever
arrives while it is awake, whether or not a thread is free to serve it.  A
client that opens its keep-alive connections in a burst (a load balancer's
pool, wrk) can therefore land all of them on one worker, which then queues
their requests on its own threads for as long as the connections live, one
core's worth under the GIL, while the other workers idle: the KDC's AS
exchange ran at 1.07 of 2 cores that way (issue 5).  A worker here stops
accepting when it hands its last free thread a request, until one of its
requests finishes: meanwhile new connections stay in the kernel's queue for
a worker with a thread free.  Connections already accepted are served as
before, busy or not, and a busy worker still takes one new connection per
finished request, so none waits for ever behind kept-alive ones.

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
from typing import Any

from gunicorn.workers.gthread import ThreadWorker


class GracefulThreadWorker(ThreadWorker):  # type: ignore[misc]
    """``gthread`` that leaves new connections to less busy workers, and closes its listening sockets when a
    graceful stop begins (not when it ends)."""

    #: Requests handed to the thread pool and not yet finished (counted on the main thread, like all below).
    _in_pool = 0
    #: Every thread was busy when the last request was handed over, and none has finished since.
    _saturated = False

    def enqueue_req(self, conn: Any) -> None:
        self._in_pool += 1
        super().enqueue_req(conn)
        if self._in_pool >= self.cfg.threads and not self._saturated:
            self._saturated = True
            self.set_accept_enabled(False)

    def finish_request(self, *args: Any) -> None:
        self._in_pool -= 1
        self._saturated = False  # one more connection may be taken, even with requests queued
        super().finish_request(*args)

    def set_accept_enabled(self, enabled: bool) -> None:
        # gthread's loop asks on every turn while the answer differs from its own condition.  Refusing only
        # until a request finishes, not until a thread is free: kept-alive connections can keep every thread
        # busy for as long as they last, and a connection still in the kernel's queue must not wait that long.
        if enabled and self.alive and self._saturated:
            enabled = False
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

