"""Transport to the KDC: protocol bytes in, protocol bytes out, over JSON HTTP.

Rules this file keeps:

* only bytes move here; building and checking messages is ``flow.py``'s job;
* every wait is bounded (``TIMEOUT``): a hung KDC becomes ``KdcUnreachable``;
* an error body ``{"error": CODE, ...}`` becomes the typed error the KDC
  meant (``error_from_code``), so callers can catch ``ClockSkew`` and read
  ``server_time``; anything else unexpected is one clear ``TallyError``;
* redirects are not followed: a KDC answers, it does not send us elsewhere;
* every POST carries ``X-Request-Id``: the id bound by the caller
  (``request_id_scope``: ``Client`` binds one per logical operation, so a
  retry keeps it), else a fresh one; the KDC logs under it and names it in
  its error bodies (``err.data["request_id"]``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.errors import ConfigurationError, KdcUnreachable, MalformedMessage
from tally_protocol.keys import PasswordParams
from tally_protocol.principal import Principal
from tally_runtime.request_ids import REQUEST_ID_HEADER, current_request_id, new_request_id

from .wire_errors import error_from_body, json_object

#: (connect, read) seconds.
TIMEOUT = (5.0, 30.0)


class KdcClient:
    """POSTs protocol messages to one KDC (``/v1/as``, ``/v1/tgs``, ``/v1/as/params``)."""

    def __init__(self, url: str, *, session: requests.Session | None = None,
                 timeout: tuple[float, float] = TIMEOUT) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"KDC URL must be http:// or https:// with a host, not {url!r}")
        self.url = url.rstrip("/")
        self._session = session or requests.Session()
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"KdcClient({self.url!r})"

    def as_exchange(self, as_req: bytes) -> bytes:
        """Send an AS request, return the AS reply bytes."""
        return self._exchange("/v1/as", "as_req", "as_rep", as_req)

    def tgs_exchange(self, tgs_req: bytes) -> bytes:
        """Send a TGS request, return the TGS reply bytes."""
        return self._exchange("/v1/tgs", "tgs_req", "tgs_rep", tgs_req)

    def password_params(self, principal: Principal) -> PasswordParams:
        """The Argon2id salt and costs for deriving ``principal``'s key from a password."""
        return PasswordParams.from_dict(self._post("/v1/as/params", {"principal": str(principal)}))

    def _exchange(self, path: str, field: str, answer: str, message: bytes) -> bytes:
        doc = self._post(path, {field: b64encode(message)})
        value = doc.get(answer)
        if not isinstance(value, str):
            raise MalformedMessage(f"the KDC's answer to {path} has no {answer!r}")
        return b64decode(value)

    def _post(self, path: str, payload: dict[str, str]) -> dict[str, Any]:
        url = self.url + path
        request_id = current_request_id() or new_request_id()
        try:
            response = self._session.post(url, json=payload, timeout=self._timeout, allow_redirects=False,
                                          headers={REQUEST_ID_HEADER: request_id})
        except requests.Timeout as e:  # the KDC may still have logged it: keep the id to look for
            raise KdcUnreachable(f"the KDC at {self.url} did not answer in time", request_id=request_id) from e
        except requests.ConnectionError as e:
            raise KdcUnreachable(f"the KDC at {self.url} could not be reached") from e
        except requests.RequestException as e:
            raise KdcUnreachable(f"request to the KDC at {self.url} failed: {type(e).__name__}") from e
        body = response.content
        if response.status_code != 200:
            err = error_from_body(body, response.headers.get("Retry-After"))
            if err is not None:
                raise err
            raise KdcUnreachable(
                f"unexpected answer from {url}: HTTP {response.status_code} without a tallystick error "
                f"(is the KDC URL right?); request id {request_id}", request_id=request_id,
            )
        try:
            return json_object(body)
        except (ValueError, TypeError, RecursionError):
            raise MalformedMessage(f"the KDC at {self.url} answered {path} with something other than JSON") from None
