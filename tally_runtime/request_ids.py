"""Request ids: one id per logical request, from the SDK through the KDC and the services, in every log line.

Rules this file keeps:

* the id of the work in hand lives in a ``ContextVar`` (never a global), so
  threads and greenlets of one server each see their own request's id;
* an incoming ``X-Request-Id`` is taken only when it is well formed (1-64
  characters of ``A-Za-z0-9._-``); anything else is replaced by a fresh id,
  so a peer can never put line breaks, quotes or megabytes into our logs;
* the id is an identifier, not a secret or a capability: it is echoed in the
  response header and in JSON error bodies so a user can quote it.

``RequestIdMiddleware`` is the WSGI layer the KDC, ``TicketAuth`` and
``TicketAuthMiddleware`` put in front of their apps; clients bind an id with
``request_id_scope`` and send ``current_request_id()``.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

REQUEST_ID_HEADER = "X-Request-Id"
#: Where the accepted id is kept in the WSGI environ, so stacked layers agree on one id.
ENVIRON_KEY = "tally.request_id"
MAX_LENGTH = 64
_WELL_FORMED = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_LENGTH}}}")
_CURRENT: ContextVar[str | None] = ContextVar("tally_request_id", default=None)


def new_request_id() -> str:
    """A fresh random id (128 bits, hex): unguessable, so ids of other users' requests cannot be predicted."""
    return secrets.token_hex(16)


def is_well_formed(value: object) -> bool:
    return isinstance(value, str) and _WELL_FORMED.fullmatch(value) is not None


def accept_request_id(value: str | None) -> str:
    """The peer's id when well formed, else a fresh one (never the peer's junk)."""
    return value if value is not None and is_well_formed(value) else new_request_id()


def current_request_id() -> str | None:
    """The id of the request being handled (server) or sent (client), if one is bound."""
    return _CURRENT.get()


@contextlib.contextmanager
def request_id_scope(request_id: str | None = None) -> Iterator[str]:
    """Bind ``request_id`` (default: the id already bound, else a fresh one) for the block.

    Clients use it so that every HTTP request of one logical operation (a TGS
    exchange and the service request it was for, a retry after Retry-After)
    carries the same id; ``ValueError`` for an id the servers would refuse.
    """
    if request_id is None:
        request_id = current_request_id() or new_request_id()
    elif not is_well_formed(request_id):
        raise ValueError(f"a request id is 1-{MAX_LENGTH} characters of A-Z a-z 0-9 . _ -")
    token = _CURRENT.set(request_id)
    try:
        yield request_id
    finally:
        _CURRENT.reset(token)


class RequestIdMiddleware:
    """WSGI: accept or mint the request's id, bind it while the app runs, echo it in ``X-Request-Id``.

    The id stays bound until the app returns its iterable; a streamed body
    produced after that logs without it (tallystick's own apps buffer).
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        outer = environ.get(ENVIRON_KEY)  # the outermost layer decides; inner ones agree
        request_id = outer if isinstance(outer, str) and is_well_formed(outer) else accept_request_id(
            environ.get("HTTP_X_REQUEST_ID"))
        environ[ENVIRON_KEY] = request_id

        def echoing_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers = [(k, v) for k, v in headers if k.lower() != REQUEST_ID_HEADER.lower()]
            headers.append((REQUEST_ID_HEADER, request_id))
            return start_response(status, headers, exc_info)

        token = _CURRENT.set(request_id)
        try:
            return self.app(environ, echoing_start_response)
        finally:
            _CURRENT.reset(token)


def with_request_ids(app: WSGIApplication) -> WSGIApplication:
    """``app`` behind a ``RequestIdMiddleware`` (once: wrapping twice changes nothing)."""
    return app if isinstance(app, RequestIdMiddleware) else RequestIdMiddleware(app)
