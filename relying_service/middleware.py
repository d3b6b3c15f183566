"""Framework-free WSGI middleware: ticket authentication for any WSGI application.

Per request: read and buffer the body (bounded), rebuild the binding, verify,
hand the application ``environ["tally.principal"]`` (the client's name) and
``environ["tally.verified"]`` (the ``Verified``), then buffer the response and
add ``Authentication-Info`` bound to its final status and body.  The whole
response is buffered because the proof covers a digest of the body and must
be sent as a header, before the body; streaming responses are therefore
collected in memory.  Refusals are JSON with ``WWW-Authenticate`` (401) or
``Retry-After`` (503), the same as the Flask extension's (``wsgi_refusal``).
A body beyond ``max_body_bytes`` is refused with 413 ``REQUEST_TOO_LARGE``
from its ``Content-Length``, or as soon as a chunked body passes the bound.

Every request, exempt paths included, goes through ``RequestIdMiddleware``:
a well-formed ``X-Request-Id`` is kept (else a fresh id), named on every log
line and in refusals, and echoed in the response.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tally_protocol.errors import TallyError
from tally_protocol.messages.ap_rep import HEADER_NAME
from tally_protocol.verify import Verified
from tally_runtime.request_ids import RequestIdMiddleware

from .request_binding import BindingConfig, PublicUrl, binding_from_environ
from .request_body import MAX_BODY_BYTES, read_body
from .verifier import Verifier
from .wsgi_refusal import refusal

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

PRINCIPAL_KEY = "tally.principal"
VERIFIED_KEY = "tally.verified"

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]


class TicketAuthMiddleware:
    def __init__(
        self,
        wsgi_app: WSGIApplication,
        verifier: Verifier,
        *,
        public_url: PublicUrl | str | None = None,
        trust_forwarded: bool = False,
        exempt_paths: Iterable[str] = ("/healthz",),
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.wsgi_app = wsgi_app
        self.verifier = verifier
        self.binding_config = BindingConfig.create(public_url, trust_forwarded)
        self.exempt_paths = frozenset(exempt_paths)
        self.max_body_bytes = max_body_bytes
        self._with_request_id = RequestIdMiddleware(self._authenticate)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._with_request_id(environ, start_response)

    def _authenticate(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in self.exempt_paths:
            return self.wsgi_app(environ, start_response)
        environ.pop(PRINCIPAL_KEY, None)  # never let an outer layer's value pass as ours
        environ.pop(VERIFIED_KEY, None)
        try:
            body = read_body(environ, self.max_body_bytes)
            binding = binding_from_environ(environ, body, self.binding_config)
            verified = self.verifier.verify(environ.get("HTTP_AUTHORIZATION"), binding)
        except TallyError as err:
            return self._refuse(err, start_response)
        environ[PRINCIPAL_KEY] = str(verified.client)
        environ[VERIFIED_KEY] = verified
        return self._call_and_prove(environ, start_response, verified)

    def _call_and_prove(self, environ: WSGIEnvironment, start_response: StartResponse,
                        verified: Verified) -> list[bytes]:
        captured: dict[str, Any] = {}
        written: list[bytes] = []

        def buffering_start_response(status: str, headers: list[tuple[str, str]],
                                     exc_info: _ExcInfo | None = None) -> Callable[[bytes], object]:
            # Nothing is sent before the app returns, so a later call (with
            # exc_info, PEP 3333) may always replace the status and headers.
            captured["status"], captured["headers"] = status, headers
            return written.append

        result = self.wsgi_app(environ, buffering_start_response)
        try:
            written.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status: str = captured["status"]
        # A HEAD response's body never reaches the client: bind what it receives.
        body = b"" if environ.get("REQUEST_METHOD") == "HEAD" else b"".join(written)
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != HEADER_NAME.lower()]
        headers.append((HEADER_NAME, self.verifier.reply_header(verified, int(status[:3]), body)))
        start_response(status, headers)
        return [b"".join(written)]

    def _refuse(self, err: TallyError, start_response: StartResponse) -> list[bytes]:
        status, headers, body = refusal(err, realm=self.verifier.realm)
        start_response(status, headers)
        return [body]
