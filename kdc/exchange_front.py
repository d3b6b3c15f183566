"""The exchange front: ``POST /v1/as`` and ``POST /v1/tgs`` answered in plain WSGI, in front of the Flask app.

The two exchanges are nearly all of a KDC's traffic, and Flask's request
dispatch (request context, URL matching, hooks, response object) cost as
much CPU as the exchange itself.  The front answers them as the Flask app
did, byte for byte, with the same code where it matters:

* the body is read within ``MAX_CONTENT_LENGTH`` by the plain-WSGI reader
  (``relying_service.request_body``): 413 ``REQUEST_TOO_LARGE`` from
  ``Content-Length`` before a byte is read, a chunked body read one byte
  past the limit at most;
* answers and errors are JSON written by ``tally_runtime.http_errors``, the
  code the Flask error handlers use (status, ``Retry-After``, ``request_id``);
  an unexpected exception is a 500 that says nothing, logged with its trace;
* requests are counted and timed by ``request_metrics.record``, as the Flask
  hooks count every other route;
* audit events go to the realm's stream as from a Flask request
  (``auditing_for``), with the client address from ``REMOTE_ADDR``.

It sits inside ``ProxyFix`` (a trusted ``X-Forwarded-For`` is the address)
and the request-id middleware (the id is bound, echoed and in every error
body).  Any other method or path falls through to Flask unchanged, which
still routes both paths: a GET is its 405, an OPTIONS its ``Allow``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from relying_service.request_body import read_body
from tally_protocol.errors import TallyError
from tally_runtime.http_errors import JSON_TYPE, ErrorReply, json_body, tally_error_reply, unexpected_error_reply

from .admin.extension import AdminState, auditing_for
from .admin.policies import PolicyStore
from .exchange_handlers import answer_as, answer_tgs
from .request_metrics import record
from .state import KdcState

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

Handler = Callable[[KdcState, PolicyStore, str, bytes], dict[str, str]]
#: The paths the front answers (POST only), and who answers each.
ROUTES: dict[str, Handler] = {"/v1/as": answer_as, "/v1/tgs": answer_tgs}


class ExchangeFront:
    """WSGI: the AS and TGS exchanges of one KDC app; everything else goes to ``app``."""

    def __init__(self, app: WSGIApplication, kdc: KdcState, admin: AdminState, *, max_body: int) -> None:
        self.app = app
        self._kdc, self._admin, self._max_body = kdc, admin, max_body

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        handler = ROUTES.get(path)
        if handler is None or str(environ.get("REQUEST_METHOD", "")).upper() != "POST":
            return self.app(environ, start_response)
        try:
            with auditing_for(self._admin):
                body = read_body(environ, self._max_body)
                start = time.perf_counter()
                answer = handler(self._kdc, self._admin.policies, environ.get("REMOTE_ADDR") or "unknown", body)
        except TallyError as err:
            return self._refuse(start_response, path, tally_error_reply(err))
        except Exception as err:  # noqa: BLE001 - answered as Flask's handler did: a 500 without detail, logged
            return self._refuse(start_response, path, unexpected_error_reply(err))
        payload = json_body(answer)
        record(path, 200, start=start)
        start_response("200 OK", [("Content-Type", JSON_TYPE), ("Content-Length", str(len(payload)))])
        return [payload]

    @staticmethod
    def _refuse(start_response: StartResponse, path: str, reply: ErrorReply) -> Iterable[bytes]:
        record(path, reply.status, reply.document.get("error"))  # the body's code, as the Flask hook reads it
        status, headers, payload = reply.wsgi()
        start_response(status, headers)
        return [payload]
