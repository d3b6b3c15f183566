"""A refusal as a bare WSGI response, for the framework-free middleware.

The same answer the Flask extension gives (``tally_runtime.http_errors``):
status ``err.status_hint``, JSON ``err.to_dict()`` with the ``request_id``,
``Retry-After`` on 429/503 and, for 401, the challenge
``WWW-Authenticate: Tally realm="R", error="CODE"[, server_time="N"]``;
both are built by ``tally_error_reply``, so they cannot drift apart.
"""

from __future__ import annotations

from tally_protocol.errors import TallyError
from tally_runtime.http_errors import Headers, tally_error_reply


def refusal(err: TallyError, *, realm: str | None) -> tuple[str, Headers, bytes]:
    """``(status line, headers, body)`` for ``err``."""
    return tally_error_reply(err, realm=realm, challenge=True).wsgi()
