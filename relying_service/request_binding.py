"""The server's view of a request, as the binding the client signed.

The client binds ``method``, ``host`` (``canonical_host``), ``path`` (path and
query exactly as on its request line) and a digest of the body.  Here the
same four are rebuilt from a WSGI environ:

* method: ``REQUEST_METHOD``;
* host: the ``Host`` header through ``canonical_host_header`` with
  ``wsgi.url_scheme`` (``SERVER_NAME:SERVER_PORT`` when a client sent none);
* path: ``RAW_URI`` / ``REQUEST_URI`` (gunicorn, uWSGI, werkzeug) are the
  request target as sent and are used verbatim; otherwise PEP 3333's
  reconstruction, ``quote(SCRIPT_NAME + PATH_INFO)`` + ``?QUERY_STRING``.

Behind a reverse proxy the service sees another host (and maybe path) than
the client signed.  Two opt-in ways to say what the client saw, both off by
default so that, unconfigured, nothing a client sends can change the binding:

* ``PublicUrl`` (``TALLY_PUBLIC_URL``, e.g. ``https://api.example.com/prefix``):
  its scheme and host replace the request's, and its path is taken as the
  prefix the proxy *strips* before forwarding, so it is put back in front of
  the request path.  If the proxy forwards the full path unchanged, configure
  the URL without a path (``https://api.example.com``).  This is a static
  statement by the operator and wins over forwarded headers.
* ``trust_forwarded`` (``TALLY_TRUST_FORWARDED``): ``X-Forwarded-Proto``,
  ``X-Forwarded-Host`` and ``X-Forwarded-Prefix`` are believed.  Only the last
  (right-most) value of each is used: it is the one the nearest proxy, the one
  being trusted, wrote; earlier values came from further away, perhaps from
  the client.  Without the flag the headers are ignored, so a client cannot
  spoof them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from tally_protocol.binding import RequestBinding, canonical_host, canonical_host_header
from tally_protocol.errors import ConfigurationError

#: RFC 3986 ``pchar`` and ``/`` minus ``%``: what a client leaves unescaped in a path.
_PATH_SAFE = "/:@!$&'()*+,;=~"


@dataclass(frozen=True, slots=True)
class PublicUrl:
    """Where clients reach this service: ``scheme://host[:port][/prefix]``."""

    scheme: str
    host: str  # canonical, as the client writes it in its Host header
    prefix: str  # "" or "/something" without a trailing slash

    @classmethod
    def parse(cls, url: str) -> PublicUrl:
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as e:
            raise ConfigurationError(f"TALLY_PUBLIC_URL is not a valid URL: {url!r}") from e
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError("TALLY_PUBLIC_URL must be an absolute http:// or https:// URL")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ConfigurationError("TALLY_PUBLIC_URL must not carry a query, fragment or credentials")
        return cls(scheme, canonical_host(scheme, parts.hostname, port), parts.path.rstrip("/"))


@dataclass(frozen=True, slots=True)
class BindingConfig:
    """How to read the client's view of a request; the default trusts only the request itself."""

    public_url: PublicUrl | None = None
    trust_forwarded: bool = False

    @classmethod
    def create(cls, public_url: PublicUrl | str | None = None, trust_forwarded: bool = False) -> BindingConfig:
        if isinstance(public_url, str):
            public_url = PublicUrl.parse(public_url) if public_url else None
        return cls(public_url, trust_forwarded)


def _last_value(environ: Mapping[str, Any], name: str) -> str | None:
    raw = environ.get(name)
    if not isinstance(raw, str):
        return None
    value = raw.rsplit(",", 1)[-1].strip()
    return value or None


def _request_target(environ: Mapping[str, Any]) -> str:
    """Path and query as on the request line."""
    query = str(environ.get("QUERY_STRING") or "")
    for name in ("RAW_URI", "REQUEST_URI"):
        raw = environ.get(name)
        if isinstance(raw, str) and raw:
            if not raw.startswith("/"):  # absolute-form target (RFC 9112 §3.2.2): keep path and query
                parts = urlsplit(raw)
                raw = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            # Some environs (werkzeug's test EnvironBuilder) leave the query out of
            # RAW_URI; a real server's RAW_URI lacks "?" only when the query is empty.
            if "?" not in raw and query:
                raw = f"{raw}?{query}"
            return raw
    # PEP 3333 URL reconstruction: WSGI strings are latin-1 decoded bytes.
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    path = quote(path.encode("latin-1", "replace"), safe=_PATH_SAFE) or "/"
    return f"{path}?{query}" if query else path


def _host(environ: Mapping[str, Any], scheme: str) -> str:
    header = environ.get("HTTP_HOST")
    if isinstance(header, str) and header.strip():
        return canonical_host_header(header, scheme)
    port = str(environ.get("SERVER_PORT") or "")
    return canonical_host(scheme, str(environ.get("SERVER_NAME", "")), int(port) if port.isdigit() else None)


def binding_from_environ(environ: Mapping[str, Any], body: bytes,
                         config: BindingConfig = BindingConfig()) -> RequestBinding:
    """The ``RequestBinding`` the client must have signed for this request."""
    method = str(environ.get("REQUEST_METHOD", "GET"))
    scheme = str(environ.get("wsgi.url_scheme", "http"))
    target = _request_target(environ)
    if config.public_url is not None:
        url = config.public_url
        return RequestBinding.for_http(method, url.host, url.prefix + target, body)
    if config.trust_forwarded:
        scheme = (_last_value(environ, "HTTP_X_FORWARDED_PROTO") or scheme).lower()
        forwarded_host = _last_value(environ, "HTTP_X_FORWARDED_HOST")
        host = canonical_host_header(forwarded_host, scheme) if forwarded_host else _host(environ, scheme)
        prefix = (_last_value(environ, "HTTP_X_FORWARDED_PREFIX") or "").rstrip("/")
        return RequestBinding.for_http(method, host, prefix + target, body)
    return RequestBinding.for_http(method, _host(environ, scheme), target, body)
