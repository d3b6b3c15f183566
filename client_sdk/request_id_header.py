"""The ``X-Request-Id`` of a request the SDK signs: the caller's, or one it sets.

The id names one logical request in the logs of the KDC and the service
(``tally_runtime.request_ids``).  A caller's id is kept only when the servers
will keep it too (1-64 characters of ``A-Za-z0-9._-``); another one is a
clear ``InvalidRequest`` here rather than an id silently replaced there.
Without one, the id already bound (``request_id_scope``) or a fresh one is
set on the request.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from tally_protocol.errors import InvalidRequest
from tally_runtime.request_ids import MAX_LENGTH, REQUEST_ID_HEADER, current_request_id, is_well_formed, new_request_id


def request_id_for(headers: MutableMapping[str, str]) -> str:
    """The request's id, set in ``headers`` (case-insensitive mappings: requests' and httpx's headers)."""
    given = headers.get(REQUEST_ID_HEADER)
    if given is not None:
        if not is_well_formed(given):
            raise InvalidRequest(f"{REQUEST_ID_HEADER} must be 1-{MAX_LENGTH} characters of A-Z a-z 0-9 . _ -")
        return given
    request_id = current_request_id() or new_request_id()
    headers[REQUEST_ID_HEADER] = request_id
    return request_id
