"""``TallyAuth``: the ``requests`` auth plug-in (in the manner of requests-gssapi).

Rules this file keeps:

* the authenticator binds the request as it will be sent: method, canonical
  host, path and query from ``PreparedRequest.path_url``, and the body bytes.
  A streaming body (file, generator) cannot be bound before it is sent and
  is refused;
* a response hook checks the service's proof and raises ``MutualAuthFailed``
  instead of returning an unproven response;
* on "get a new ticket" or "correct your clock" the request is sent once
  more with a fresh authenticator through the same connection adapter, as
  ``requests.auth.HTTPDigestAuth`` does on a 401; never twice;
* a response to a request this plug-in did not sign (a followed redirect)
  is not authenticated and is refused: use ``allow_redirects=False``;
* the request carries ``X-Request-Id`` (``request_id_header``): the
  caller's when it set one, else a fresh one; the TGS exchange for its ticket
  and the retry carry the same id.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from tally_protocol.binding import RequestBinding, canonical_host, canonical_host_header
from tally_protocol.errors import InvalidRequest, MutualAuthFailed
from tally_runtime.request_ids import request_id_scope

from .flow import ApContext
from .request_id_header import request_id_for
from .response_check import AUTH_INFO_HEADER, Verdict, check_response

if TYPE_CHECKING:
    from .client import Client


def binding_for_prepared(request: requests.PreparedRequest) -> RequestBinding:
    """The binding of a prepared request; ``str`` bodies become the UTF-8 bytes that will be sent."""
    body = request.body
    if body is None:
        data = b""
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
    elif isinstance(body, str):
        data = body.encode("utf-8")  # what urllib3 2 sends (and what Content-Length counted)
        request.body = data
    else:
        raise InvalidRequest(
            "a streaming request body (file or generator) cannot be bound to a Tally authenticator; pass bytes"
        )
    url = request.url or ""
    parts = urlsplit(url)
    if not parts.hostname:
        raise InvalidRequest(f"cannot sign a request without a host: {url!r}")
    host_header = request.headers.get("Host")
    if host_header:
        host = canonical_host_header(host_header, parts.scheme)
    else:
        host = canonical_host(parts.scheme, parts.hostname, parts.port)
    return RequestBinding.for_http(request.method or "GET", host, request.path_url, data)


@dataclass(frozen=True, slots=True)
class _Signed:
    service: str
    binding: RequestBinding
    context: ApContext
    request_id: str


def _judge(context: ApContext, response: requests.Response, *, may_retry: bool,
           max_wait_s: float = 0) -> Verdict:
    return check_response(
        context, status=response.status_code, proof=response.headers.get(AUTH_INFO_HEADER),
        body=response.content, retry_after=response.headers.get("Retry-After"), may_retry=may_retry,
        max_wait_s=max_wait_s,
    )


class TallyAuth(AuthBase):
    """``requests.get(url, auth=client.auth("api@EXAMPLE.TEST"))``."""

    def __init__(self, client: Client, service: str | None = None) -> None:
        self.client = client
        self.service = service
        # What each signed request needs for its answer, dropped with the request.
        self._pending: weakref.WeakKeyDictionary[requests.PreparedRequest, _Signed] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TallyAuth(service={self.service!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        service = self.client.service_for(request.url or "", self.service)
        binding = binding_for_prepared(request)
        request_id = request_id_for(request.headers)
        with request_id_scope(request_id):
            context = self.client.sign(service, binding)
        request.headers["Authorization"] = context.authorization
        with self._lock:
            self._pending[request] = _Signed(service, binding, context, request_id)
        request.register_hook("response", self._on_response)  # type: ignore[no-untyped-call]
        return request

    def _on_response(self, response: requests.Response, **send_kwargs: Any) -> requests.Response:
        with self._lock:
            signed = self._pending.pop(response.request, None)
        if signed is None:
            response.close()
            raise MutualAuthFailed(
                "response to a request this client did not sign (a followed redirect?) is not authenticated; "
                "use allow_redirects=False"
            )
        verdict = _judge(signed.context, response, may_retry=True, max_wait_s=self.client.max_retry_wait_s)
        if verdict.retry is None:
            return response
        with request_id_scope(signed.request_id):
            context = self.client.sign_retry(signed.service, signed.binding, verdict)
        retry = response.request.copy()  # headers copied: the same X-Request-Id
        retry.headers["Authorization"] = context.authorization
        response.close()  # body already read by _judge: release the connection
        adapter = response.connection
        answer: requests.Response = adapter.send(retry, **send_kwargs)
        answer.history.append(response)
        answer.request = retry
        _judge(context, answer, may_retry=False)
        return answer
