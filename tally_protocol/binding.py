"""Request and response binding.

An authenticator names the exact request it authorises, so a captured
``Authorization`` header is worthless for any other request; the AP reply
names the exact response, so a tampered response is detected by the client.

Binding components, compared one by one so an error can say which differs:

* ``method``: upper-case HTTP method;
* ``host``: lower-case host, with ``:port`` only when not the scheme's default;
* ``path``: path and query exactly as sent on the request line;
* ``body``: SHA-256 of the request body (of the empty string when none).

The TGS request reuses the same structure (method ``TGS``, host = realm,
path empty, body = digest of the TGS request body), so the KDC checks TGS
authenticators with the relying services' verifier.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .crypto import body_digest, digest
from .encoding import Reader, Writer
from .errors import MalformedMessage

_DEFAULT_PORTS = {"http": 80, "https": 443}


def canonical_host(scheme: str, host: str, port: int | None) -> str:
    """``host[:port]`` as a client writes it in the Host header."""
    host = host.lower()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # bare IPv6 literal
    if port is None or _DEFAULT_PORTS.get(scheme.lower()) == port:
        return host
    return f"{host}:{port}"


def canonical_host_header(value: str, scheme: str) -> str:
    """Normalise a received Host header: lower-case, default port dropped."""
    value = value.strip().lower()
    default = _DEFAULT_PORTS.get(scheme.lower())
    if default is not None and value.endswith(f":{default}"):
        return value[: -len(f":{default}")]
    return value


@dataclass(frozen=True, slots=True)
class RequestBinding:
    method: str
    host: str
    path: str
    body: bytes  # SHA-256 of the body

    COMPONENTS = ("method", "host", "path", "body")

    @classmethod
    def for_http(cls, method: str, host: str, path: str, body: bytes) -> RequestBinding:
        """``host`` already canonical (see ``canonical_host``); ``body`` the raw bytes."""
        return cls(method.upper(), host, path or "/", body_digest(body))

    @classmethod
    def for_tgs(cls, realm: str, tgs_body: bytes) -> RequestBinding:
        return cls("TGS", realm, "", body_digest(tgs_body))

    def first_mismatch(self, other: RequestBinding) -> str | None:
        """The first component that differs from ``other``, or ``None``."""
        for name in self.COMPONENTS:
            if getattr(self, name) != getattr(other, name):
                return name
        return None

    def write(self, w: Writer) -> None:
        w.text(self.method).text(self.host).text(self.path).raw(self.body)

    @classmethod
    def read(cls, r: Reader) -> RequestBinding:
        return cls(r.text(), r.text(), r.text(), r.raw(32))

    def describe(self) -> dict[str, str]:
        """For diagnostics and logs: the canonical request, body as a hex digest."""
        return {"method": self.method, "host": self.host, "path": self.path, "body_sha256": self.body.hex()}


def response_digest(status: int, body: bytes) -> bytes:
    """What the AP reply binds: the response status and a digest of its body."""
    if not 100 <= status <= 999:
        raise MalformedMessage("invalid HTTP status")
    return digest(b"tallystick-v1 response", struct.pack(">H", status), body_digest(body))
