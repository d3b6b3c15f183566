"""AP reply (RFC 4120 §5.5.2): the service's proof, in ``Authentication-Info: tally="<b64url>"``.

Sealed under the session key (usage AP_REP_ENC_PART), it echoes the
authenticator's ``ctime`` and ``nonce`` (so it answers this request only) and
binds the response status and body digest (so a tampered response is caught).
Only a holder of the service key could have learned the session key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..codes import KeyUsage, MessageType
from ..crypto import equal, seal, unseal
from ..encoding import Reader, Writer, b64decode, b64encode
from ..errors import MutualAuthFailed, TallyError
from ..keys import Key
from .authenticator import NONCE_SIZE

HEADER_NAME = "Authentication-Info"
_PARAM = re.compile(r'(?:^|,)\s*tally="([A-Za-z0-9_-]+)"')


@dataclass(frozen=True, slots=True)
class EncApRepPart:
    ctime: int
    nonce: bytes
    response: bytes  # binding.response_digest(status, body)

    def to_bytes(self) -> bytes:
        return Writer(MessageType.ENC_AP_REP_PART).u64(self.ctime).raw(self.nonce).raw(self.response).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> EncApRepPart:
        r = Reader(data, MessageType.ENC_AP_REP_PART)
        part = cls(r.u64(), r.raw(NONCE_SIZE), r.raw(32))
        r.end()
        return part


def seal_ap_reply(session_key: Key, part: EncApRepPart, *, nonce: bytes) -> str:
    """The ``Authentication-Info`` header value."""
    blob = seal(session_key, KeyUsage.AP_REP_ENC_PART, part.to_bytes(), nonce=nonce)
    return f'tally="{b64encode(blob)}"'


def open_ap_reply(session_key: Key, header: str | None, expected: EncApRepPart) -> None:
    """Check the service's proof against what the client expects; raise ``MutualAuthFailed``."""
    match = _PARAM.search(header or "")
    if not match:
        raise MutualAuthFailed("response carries no mutual-authentication proof")
    try:
        part = EncApRepPart.from_bytes(
            unseal(session_key, KeyUsage.AP_REP_ENC_PART, b64decode(match.group(1)))
        )
    except TallyError as e:
        raise MutualAuthFailed("mutual-authentication proof is invalid") from e
    if part.ctime != expected.ctime or not equal(part.nonce, expected.nonce):
        raise MutualAuthFailed("mutual-authentication proof answers another request")
    if not equal(part.response, expected.response):
        raise MutualAuthFailed("response was altered after the service sent it")


__all__ = ["HEADER_NAME", "EncApRepPart", "open_ap_reply", "seal_ap_reply"]
