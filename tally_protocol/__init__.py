"""tallystick's protocol core: wire format, crypto and verification, with no I/O.

Nothing in this package reads the clock, the environment or the OS random
source, or imports flask, redis, requests or httpx: time and randomness are
passed in by the adapters (kdc, relying_service, client_sdk).
"""

from __future__ import annotations

from collections.abc import Callable

from .binding import RequestBinding, canonical_host, canonical_host_header, response_digest
from .codes import ErrorCode, KeyUsage, MessageType, TgsOptions, TicketFlags
from .errors import TallyError, error_from_code
from .keys import Key, Keyset, PasswordParams
from .principal import Principal
from .verify import Verified, VerifyPolicy, make_ap_reply, verify_ap_request

#: Source of randomness the adapters pass in (``os.urandom`` in production).
Random = Callable[[int], bytes]

__all__ = [
    "ErrorCode",
    "Key",
    "KeyUsage",
    "Keyset",
    "MessageType",
    "PasswordParams",
    "Principal",
    "Random",
    "RequestBinding",
    "TallyError",
    "TgsOptions",
    "TicketFlags",
    "Verified",
    "VerifyPolicy",
    "canonical_host",
    "canonical_host_header",
    "error_from_code",
    "make_ap_reply",
    "response_digest",
    "verify_ap_request",
]
