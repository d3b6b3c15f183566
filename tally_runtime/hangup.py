"""SIGHUP as "reload your key files": one process-wide handler, many listeners.

A signal handler is process-wide by nature, so the registry is too.  The
handler only calls each listener, and a listener must only set a flag (the
reload itself happens on the next request, in ordinary code): a handler
runs between two bytecodes of whatever the main thread was doing, possibly
inside a lock the reload would need, or halfway through a log line.

Listeners that are bound methods are held weakly, so a verifier or a KDC
app that goes away does not stay alive for the signal's sake.  A handler
that was installed before ours (by the application) is still called.
"""

from __future__ import annotations

import logging
import signal
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any

Listener = Callable[[], None]

_log = logging.getLogger("tally.runtime")
_listeners: list[Callable[[], Listener | None]] = []
_previous: Any = None
_installed = False


def _ref(listener: Listener) -> Callable[[], Listener | None]:
    if hasattr(listener, "__self__") and hasattr(listener, "__func__"):
        return weakref.WeakMethod(listener)
    return lambda: listener


def _handle(signum: int, frame: FrameType | None) -> None:
    for ref in _listeners[:]:  # a copy: on_hangup may run in between
        listener = ref()
        if listener is not None:
            listener()
    if callable(_previous):
        _previous(signum, frame)


def on_hangup(listener: Listener) -> bool:
    """Call ``listener`` (which must only set a flag) on every SIGHUP to this process.

    Returns False, and logs why, when the handler cannot be installed: Python
    installs signal handlers only from the main thread, and some servers
    load applications elsewhere.
    """
    global _installed, _previous
    if not hasattr(signal, "SIGHUP"):
        _log.warning("this platform has no SIGHUP; key files reload only on an unknown key version")
        return False
    # Checked against the live handler, not a flag: a server may reset signals after a fork (gunicorn does).
    if signal.getsignal(signal.SIGHUP) is not _handle:
        if threading.current_thread() is not threading.main_thread():
            _log.warning("SIGHUP reload not installed: applications loaded outside the main thread cannot "
                         "install signal handlers; key files reload only on an unknown key version")
            return False
        current = signal.getsignal(signal.SIGHUP)
        _previous = current if callable(current) and current is not _handle else None
        signal.signal(signal.SIGHUP, _handle)
        signal.siginterrupt(signal.SIGHUP, False)  # never cut a request's system call short
        _installed = True
    _listeners[:] = [ref for ref in _listeners if ref() is not None]
    _listeners.append(_ref(listener))
    return True


def remove_hangup_listeners() -> None:
    """Forget every listener and restore the handler found at installation (tests, embedding programs)."""
    global _installed, _previous
    _listeners.clear()
    if _installed:
        signal.signal(signal.SIGHUP, _previous if _previous is not None else signal.SIG_DFL)
        _installed, _previous = False, None
