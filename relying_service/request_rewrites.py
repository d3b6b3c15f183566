"""The request a client bound versus the one a service saw, with the usual proxy rewrites named.

Used by ``tally diagnose``.  A binding mismatch is almost always a reverse
proxy changing the request between the client and the service: another host
(the upstream's address, a port added or dropped when TLS ends at the proxy),
a path prefix stripped, a path re-encoded.  Each difference is explained with
the setting that fixes it (``TALLY_PUBLIC_URL``, ``TALLY_TRUST_FORWARDED``).

Only names and digests are compared; nothing secret is involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from tally_protocol.binding import RequestBinding, canonical_host, canonical_host_header
from tally_protocol.crypto import body_digest
from tally_protocol.errors import InvalidRequest

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """What the service saw; a component left ``None`` was not given and is not compared."""

    method: str | None = None
    host: str | None = None  # canonical, as ``binding_from_environ`` builds it
    path: str | None = None  # path and query as on the request line
    body_sha256: bytes | None = None

    @classmethod
    def create(cls, *, method: str | None = None, url: str | None = None, host: str | None = None,
               path: str | None = None, scheme: str = "http", body: bytes | None = None,
               body_sha256: str | None = None) -> SeenRequest:
        """From the command line's pieces: a full ``url``, or ``host``/``path``; a body or its hex digest."""
        if url is not None:
            if host is not None or path is not None:
                raise InvalidRequest("give either the URL the service saw or its host/path, not both")
            host, path = _split_url(url)
        elif host is not None:
            host = canonical_host_header(host, scheme)
        if body is not None and body_sha256 is not None:
            raise InvalidRequest("give either the body or its SHA-256, not both")
        digest = body_digest(body) if body is not None else _hex_digest(body_sha256)
        return cls(method.upper() if method else None, host, path, digest)

    @property
    def empty(self) -> bool:
        return self.method is None and self.host is None and self.path is None and self.body_sha256 is None

    @property
    def complete(self) -> bool:
        return None not in (self.method, self.host, self.path, self.body_sha256)

    def binding(self) -> RequestBinding:
        """The full binding (only when ``complete``)."""
        assert self.method is not None and self.host is not None and self.path is not None
        assert self.body_sha256 is not None
        return RequestBinding(self.method, self.host, self.path or "/", self.body_sha256)


def _split_url(url: str) -> tuple[str, str]:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as e:
        raise InvalidRequest(f"not a valid URL: {url!r}") from e
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        raise InvalidRequest("the URL must be absolute, http:// or https://")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return canonical_host(parts.scheme, parts.hostname, port), path


def _hex_digest(value: str | None) -> bytes | None:
    if value is None:
        return None
    try:
        raw = bytes.fromhex(value.strip())
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InvalidRequest("--body-sha256 must be 64 hex digits")
    return raw


@dataclass(frozen=True, slots=True)
class ComponentDifference:
    """One binding component that differs and why it typically does.

    ``fix`` is its own remedy; ``None`` when the public URL (see ``remedies``) is the remedy.
    """

    component: str
    bound: str
    seen: str
    cause: str
    fix: str | None = None
    stripped_prefix: str = ""


def compare(bound: RequestBinding, seen: SeenRequest) -> list[ComponentDifference]:
    """Every given component that differs, in the binding's order."""
    out: list[ComponentDifference] = []
    if seen.method is not None and seen.method != bound.method:
        out.append(ComponentDifference(
            "method", bound.method, seen.method,
            "the method changed on the way (a redirect turns POST into GET; some proxies rewrite HEAD)",
            "send the request to the final URL (no redirect), or fix the proxy"))
    if seen.host is not None and seen.host != bound.host:
        out.append(ComponentDifference("host", bound.host, seen.host, _host_rewrite(bound.host, seen.host)))
    if seen.path is not None and seen.path != bound.path:
        out.append(_path_rewrite(bound.path, seen.path))
    if seen.body_sha256 is not None and seen.body_sha256 != bound.body:
        out.append(ComponentDifference(
            "body", bound.body.hex(), seen.body_sha256.hex(),
            "the body the service read is not the one the client signed (re-encoded, decompressed "
            "or truncated by a proxy or middleware, or read before the verifier)",
            "make the proxy pass the body unchanged (no transcoding, no request-size truncation); "
            "let the verifier read the raw body first"))
    return out


def remedies(bound: RequestBinding, seen: SeenRequest, differences: list[ComponentDifference]) -> list[str]:
    """What to change, once each: the public URL the service should assume, then the other fixes."""
    out: list[str] = []
    if any(d.fix is None for d in differences):
        prefix = next((d.stripped_prefix for d in differences if d.stripped_prefix), "")
        port = _split_port(seen.host or "")[1]
        scheme = {"443": "https", "80": "http"}.get(port or "", "https")
        hint = "" if port in ("443", "80") else " (http:// if clients use plain HTTP)"
        forwarded = "/-Prefix" if prefix else ""
        out.append(f"set TALLY_PUBLIC_URL={scheme}://{bound.host}{prefix} on the service, the URL clients use"
                   f"{hint}{'; its path is the prefix the proxy strips' if prefix else ''}; or, if the proxy "
                   f"sends X-Forwarded-Proto/-Host{forwarded}, set TALLY_TRUST_FORWARDED=1 (only behind a "
                   "proxy that overwrites them)")
    out.extend(d.fix for d in differences if d.fix is not None)
    return list(dict.fromkeys(out))


def _split_port(host: str) -> tuple[str, str | None]:
    if host.startswith("["):
        name, _, rest = host.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else None
    name, sep, port = host.rpartition(":")
    return (name, port) if sep else (host, None)


def _host_rewrite(bound: str, seen: str) -> str:
    bound_name, bound_port = _split_port(bound)
    seen_name, seen_port = _split_port(seen)
    if bound_name == seen_name:
        if seen_port in ("443", "80") and bound_port is None:
            other = "http" if seen_port == "443" else "https"
            return (f"same host, but the service sees port {seen_port} where the client's URL used the "
                    f"scheme's default: TLS ends at a proxy and the service thinks the scheme is {other} "
                    "(http<->https default port)")
        return (f"same host, other port ({bound_port or 'default'} bound, {seen_port or 'default'} seen): "
                "a proxy forwards to another port and passes its own Host header")
    return ("another host name: the proxy forwards with the upstream's address as Host "
            "(or the client used another name for the service)")


def _path_rewrite(bound: str, seen: str) -> ComponentDifference:
    bound_path, _, bound_query = bound.partition("?")
    seen_path, _, seen_query = seen.partition("?")

    def diff(cause: str, fix: str | None, prefix: str = "") -> ComponentDifference:
        return ComponentDifference("path", bound, seen, cause, fix, prefix)

    if bound_path != seen_path and seen_path.startswith("/") and bound_path.endswith(seen_path.rstrip("/") or "/"):
        prefix = bound_path[: len(bound_path) - len(seen_path)].rstrip("/")
        if prefix.startswith("/"):
            return diff(f"the proxy strips the prefix {prefix!r} before forwarding", None, prefix)
    if bound_path != seen_path and bound_path.startswith("/") and seen_path.endswith(bound_path):
        prefix = seen_path[: len(seen_path) - len(bound_path)]
        return diff(f"the proxy adds the prefix {prefix!r} before forwarding",
                    "make the proxy forward the path unchanged, or have clients use the service's own path")
    if bound_path != seen_path and unquote(bound_path) == unquote(seen_path):
        return diff("the same path, percent-encoded differently: the proxy decodes and re-encodes the request "
                    "target", "make the proxy pass the request URI unchanged (nginx: proxy_pass without a URI "
                    "part, no $uri)")
    if bound_path == seen_path:
        if sorted(bound_query.split("&")) == sorted(seen_query.split("&")):
            return diff("the same query parameters in another order: something rebuilt the query string",
                        "make the proxy pass the query string unchanged")
        return diff("the query string differs (dropped, added or re-encoded on the way)",
                    "make the proxy pass the query string unchanged")
    return diff("another path: the request went elsewhere than the client signed for, or a proxy rewrote it",
                "check the proxy's rewrite rules: the service must see the path the client sent "
                "(or that path minus a prefix named in TALLY_PUBLIC_URL)")
