"""Error bodies from the wire back into typed errors.

KDC and relying services answer a refusal with ``{"error": CODE,
"message": ..., **data}`` (``TallyError.to_dict``).  Rebuilding the typed
error lets callers catch ``ClockSkew`` and read ``server_time``, or catch
``TicketError`` and fetch a new ticket, exactly as the server meant.
"""

from __future__ import annotations

import json
from typing import Any

from tally_protocol.codes import ErrorCode
from tally_protocol.errors import TallyError, error_from_code

#: Keys of an error body that are not extra data.
_RESERVED = ("error", "message", "code")
_KNOWN_CODES = frozenset(code.value for code in ErrorCode)


def json_object(body: bytes) -> dict[str, Any]:
    """Parse a JSON object; ``ValueError`` or ``TypeError`` for anything else."""
    doc = json.loads(body.decode("utf-8"))
    if not isinstance(doc, dict):
        raise TypeError("not a JSON object")
    return doc


def error_from_body(body: bytes, retry_after: str | None = None, *, known_only: bool = False) -> TallyError | None:
    """The typed error a JSON error body carries, or ``None`` when it carries none.

    ``retry_after`` is the ``Retry-After`` header (seconds), kept as
    ``data["retry_after"]`` when the body does not already say.  With
    ``known_only`` a code tallystick does not define yields ``None``: such a
    body did not come from a tallystick auth layer.
    """
    try:
        doc = json_object(body)
    except (ValueError, TypeError, RecursionError):
        return None
    code = doc.get("error")
    if not isinstance(code, str) or (known_only and code not in _KNOWN_CODES):
        return None
    message = doc.get("message")
    data = {k: v for k, v in doc.items() if k not in _RESERVED}
    if retry_after is not None and "retry_after" not in data:
        try:
            data["retry_after"] = int(retry_after.strip())
        except ValueError:
            pass  # an HTTP-date: the typed error still stands without it
    return error_from_code(code, message if isinstance(message, str) else None, **data)
