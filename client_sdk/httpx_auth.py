"""``TallyHttpxAuth``: the ``httpx.Auth`` plug-in, sync and async.

Rules this file keeps:

* getting a ticket is blocking I/O (KDC round trips, the ccache file), so
  ``sync_auth_flow`` and ``async_auth_flow`` are overridden instead of the
  generic ``auth_flow``; the async flow runs the ticket work in a worker
  thread (``anyio.to_thread``) so the event loop never blocks on it;
* ``requires_request_body``: the body is read first and bound, so even a
  streamed httpx body is signed exactly as sent; ``requires_response_body``:
  the proof covers the response body;
* the same verdicts as the ``requests`` plug-in (``response_check``): an
  unproven response raises, at most one retry;
* httpx follows redirects inside the auth flow, re-sending this request's
  authenticator to the new URL: such an answer cannot be authenticated and is
  refused (``MutualAuthFailed``).  Use ``follow_redirects=False`` (the default);
* the request carries ``X-Request-Id`` (``request_id_header``), the same on
  the retry and on the TGS exchange for its ticket; the id is bound inside the
  worker thread, which does not share the event loop's context.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING

import anyio.to_thread
import httpx

from tally_protocol.binding import RequestBinding, canonical_host, canonical_host_header
from tally_protocol.errors import MutualAuthFailed
from tally_runtime.request_ids import request_id_scope

from .flow import ApContext
from .request_id_header import request_id_for
from .response_check import AUTH_INFO_HEADER, Verdict, check_response

if TYPE_CHECKING:
    from .client import Client


def binding_for_httpx(request: httpx.Request) -> RequestBinding:
    """The binding of an httpx request whose body has been read."""
    url = request.url
    host_header = request.headers.get("Host")
    if host_header:
        host = canonical_host_header(host_header, url.scheme)
    else:
        host = canonical_host(url.scheme, url.host, url.port)
    return RequestBinding.for_http(request.method, host, url.raw_path.decode("ascii"), request.content)


def _judge(context: ApContext, request: httpx.Request, response: httpx.Response, *, may_retry: bool,
           max_wait_s: float = 0) -> Verdict:
    if response.request is not request:
        raise MutualAuthFailed(
            "httpx followed a redirect with an authenticator signed for another URL; the answer is not "
            "authenticated: use follow_redirects=False"
        )
    return check_response(
        context, status=response.status_code, proof=response.headers.get(AUTH_INFO_HEADER),
        body=response.content, retry_after=response.headers.get("Retry-After"), may_retry=may_retry,
        max_wait_s=max_wait_s,
    )


class TallyHttpxAuth(httpx.Auth):
    """``httpx.Client(auth=client.httpx_auth("api@EXAMPLE.TEST"))``."""

    requires_request_body = True
    requires_response_body = True

    def __init__(self, client: Client, service: str | None = None) -> None:
        self.client = client
        self.service = service

    def __repr__(self) -> str:
        return f"TallyHttpxAuth(service={self.service!r})"

    def _target(self, request: httpx.Request) -> tuple[str, RequestBinding]:
        return self.client.service_for(str(request.url), self.service), binding_for_httpx(request)

    def _sign(self, request_id: str, service: str, binding: RequestBinding,
              verdict: Verdict | None = None) -> ApContext:
        with request_id_scope(request_id):
            if verdict is None:
                return self.client.sign(service, binding)
            return self.client.sign_retry(service, binding, verdict)

    # Overriding the *_auth_flow methods skips httpx's own handling of the
    # requires_* flags, so the bodies are read here.
    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()
        service, binding = self._target(request)
        request_id = request_id_for(request.headers)
        context = self._sign(request_id, service, binding)
        request.headers["Authorization"] = context.authorization
        response = yield request
        response.read()
        verdict = _judge(context, request, response, may_retry=True, max_wait_s=self.client.max_retry_wait_s)
        if verdict.retry is None:
            return
        context = self._sign(request_id, service, binding, verdict)
        request.headers["Authorization"] = context.authorization
        response = yield request
        response.read()
        _judge(context, request, response, may_retry=False)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        service, binding = self._target(request)
        request_id = request_id_for(request.headers)
        context = await anyio.to_thread.run_sync(functools.partial(self._sign, request_id, service, binding))
        request.headers["Authorization"] = context.authorization
        response = yield request
        await response.aread()
        verdict = _judge(context, request, response, may_retry=True, max_wait_s=self.client.max_retry_wait_s)
        if verdict.retry is None:
            return
        context = await anyio.to_thread.run_sync(functools.partial(self._sign, request_id, service, binding, verdict))
        request.headers["Authorization"] = context.authorization
        response = yield request
        await response.aread()
        _judge(context, request, response, may_retry=False)
