"""Where the Redis store is and how to reach it: topology, TLS, credentials, pool and timeouts.

Kept apart from ``Settings`` so the connection layer (``redis_store``) and the
configuration file share one description of every ``TALLY_REDIS_*`` setting
(the file's ``[redis] <key>`` is ``TALLY_REDIS_<KEY>``).  Everything is checked
here, once, at start: a mistake is a ``ConfigurationError`` naming the setting,
never a connection that fails later.  Secrets are read from permission-checked
files; a password in the URL works but is for development only.

URL forms (docs/operations.md "Redis topologies")::

    redis://[[user]:password@]host[:port][/db]        rediss://...   (TLS)
    unix://[[user]:password@]/path/to/socket[?db=N]
    redis+sentinel://[[user]:password@]h1[:port],h2[:port],.../master-name[/db]   rediss+sentinel://...
    redis+cluster://[[user]:password@]h1[:port],h2[:port],...                     rediss+cluster://...
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote

from tally_protocol.errors import ConfigurationError

from .secret_files import read_secret


class Topology(StrEnum):
    STANDALONE = "standalone"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


#: scheme -> (topology, TLS, default port)
SCHEMES: dict[str, tuple[Topology, bool, int]] = {
    "redis": (Topology.STANDALONE, False, 6379),
    "rediss": (Topology.STANDALONE, True, 6379),
    "unix": (Topology.STANDALONE, False, 0),
    "redis+sentinel": (Topology.SENTINEL, False, 26379),
    "rediss+sentinel": (Topology.SENTINEL, True, 26379),
    "redis+cluster": (Topology.CLUSTER, False, 6379),
    "rediss+cluster": (Topology.CLUSTER, True, 6379),
}

#: Every setting this module reads; the configuration file accepts these names and no others for [redis].
NAMES: tuple[str, ...] = (
    "TALLY_REDIS_URL",
    "TALLY_REDIS_USERNAME",
    "TALLY_REDIS_PASSWORD_FILE",
    "TALLY_REDIS_SENTINEL_USERNAME",
    "TALLY_REDIS_SENTINEL_PASSWORD_FILE",
    "TALLY_REDIS_TLS_CA_FILE",
    "TALLY_REDIS_TLS_CERT_FILE",
    "TALLY_REDIS_TLS_KEY_FILE",
    "TALLY_REDIS_CONNECT_TIMEOUT_MS",
    "TALLY_REDIS_COMMAND_TIMEOUT_MS",
    "TALLY_REDIS_POOL_SIZE",
    "TALLY_REDIS_MIN_REPLICAS",
    "TALLY_REDIS_REPLICA_ACK_TIMEOUT_MS",
)

_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]+\]")
#: Sentinel master names as redis-server accepts them in `sentinel monitor` (no spaces, no slash).
_MASTER_NAME = re.compile(r"[A-Za-z0-9._-]+")
_MAX_DB = 1_000_000
_DIGITS = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class RedisUrl:
    """What a TALLY_REDIS_URL says, checked (``parse_url``)."""

    topology: Topology
    tls: bool
    #: (host, port) of the server, the sentinels or the cluster's startup nodes; empty for a Unix socket.
    endpoints: tuple[tuple[str, int], ...] = ()
    unix_path: str | None = None
    db: int = 0
    master_name: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_url(url: str) -> RedisUrl:
    """Parse and check a TALLY_REDIS_URL; every mistake is a ConfigurationError saying which."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise ConfigurationError("TALLY_REDIS_URL must start with one of " + ", ".join(f"{s}://" for s in SCHEMES))
    topology, tls, default_port = SCHEMES[scheme.lower()]
    rest, _, query = rest.partition("?")
    if "#" in rest or "#" in query:
        raise ConfigurationError("TALLY_REDIS_URL must not have a #fragment")
    authority, slash, path = rest.partition("/")
    userinfo, at, hosts = authority.rpartition("@")
    username, password = _credentials(userinfo) if at else (None, None)
    if scheme.lower() == "unix":
        if hosts:
            raise ConfigurationError("a unix:// URL has no host: write unix:///path/to/redis.sock")
        if not slash or not path:
            raise ConfigurationError("a unix:// URL needs the socket's path: unix:///path/to/redis.sock")
        return RedisUrl(topology, tls, unix_path="/" + unquote(path), db=_query_db(query),
                        username=username, password=password)
    if query:
        raise ConfigurationError("TALLY_REDIS_URL takes no ?query here: use the TALLY_REDIS_* settings")
    endpoints = tuple(_endpoint(h, default_port) for h in hosts.split(","))
    if topology is Topology.STANDALONE:
        if len(endpoints) != 1:
            raise ConfigurationError(f"a {scheme}:// URL names one server; several hosts need "
                                     "redis+sentinel:// or redis+cluster://")
        return RedisUrl(topology, tls, endpoints, db=_db(path), username=username, password=password)
    if topology is Topology.CLUSTER:
        if path not in ("", "0"):
            raise ConfigurationError("Redis Cluster has only database 0: end the URL after the last host (or /0)")
        return RedisUrl(topology, tls, endpoints, username=username, password=password)
    name, _, db = path.partition("/")
    if not name:
        raise ConfigurationError(f"a {scheme}:// URL ends with the master's name, as the sentinels monitor it: "
                                 f"{scheme}://h1:26379,h2:26379,h3:26379/mymaster")
    if not _MASTER_NAME.fullmatch(name):
        raise ConfigurationError(f"Sentinel master name {name!r} may hold only letters, digits, '.', '_' and '-'")
    return RedisUrl(topology, tls, endpoints, db=_db(db), master_name=name, username=username, password=password)


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    return (unquote(user) or None), (unquote(password) if colon and password else None)


def _endpoint(text: str, default_port: int) -> tuple[str, int]:
    if text.startswith("["):
        host, bracket, port = text.partition("]")
        valid = bool(_IPV6.fullmatch(host + bracket)) and (port == "" or port.startswith(":"))
        host, port = host[1:], port[1:]
    else:
        host, _, port = text.partition(":")
        valid = bool(_HOSTNAME.fullmatch(host))
    if not valid:
        raise ConfigurationError(f"TALLY_REDIS_URL: {text!r} is not host[:port]" if text
                                 else "TALLY_REDIS_URL names no host (or has an empty entry in its host list)")
    if not port:
        return host, default_port
    if not _DIGITS.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise ConfigurationError(f"TALLY_REDIS_URL: port {port!r} of {host} must be a number from 1 to 65535")
    return host, int(port)


def _db(text: str) -> int:
    if text == "":
        return 0
    if not _DIGITS.fullmatch(text) or int(text) >= _MAX_DB:
        raise ConfigurationError(f"TALLY_REDIS_URL: the database must be a small whole number, not {text!r}")
    return int(text)


def _query_db(query: str) -> int:
    try:
        params = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise ConfigurationError(f"TALLY_REDIS_URL: cannot read the query {query!r}") from None
    if set(params) - {"db"}:
        raise ConfigurationError("a unix:// URL takes only ?db=N; use the TALLY_REDIS_* settings for the rest")
    return _db(params.get("db", ""))


def format_url(parsed: RedisUrl, *, with_password: bool = True) -> str:
    """The canonical URL for ``parsed`` (the inverse of ``parse_url``; without the password for logs)."""
    scheme = next(s for s, (t, tls, port) in SCHEMES.items()
                  if t is parsed.topology and tls == parsed.tls and (port == 0) == (parsed.unix_path is not None))
    creds = ""
    if parsed.username or parsed.password:
        secret = (quote(parsed.password, safe="") if with_password else "***") if parsed.password else ""
        creds = quote(parsed.username or "", safe="") + (f":{secret}" if secret else "") + "@"
    if parsed.unix_path is not None:
        return f"unix://{creds}{quote(parsed.unix_path)}" + (f"?db={parsed.db}" if parsed.db else "")
    hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in parsed.endpoints)
    path = {Topology.STANDALONE: f"/{parsed.db}", Topology.CLUSTER: "",
            Topology.SENTINEL: f"/{parsed.master_name}" + (f"/{parsed.db}" if parsed.db else "")}[parsed.topology]
    return f"{scheme}://{creds}{hosts}{path}"


@dataclass(frozen=True)
class Durability:
    """How many replicas must hold a replay claim before it counts (``WAIT``), and how long to wait for them.

    docs/protocol.md §9.5.1: replication is asynchronous, so a claim only the
    master held is lost when a replica that missed it is promoted.
    """

    min_replicas: int = 0
    replica_ack_timeout_ms: int = 500


@dataclass(frozen=True)
class RedisSettings:
    """The checked TALLY_REDIS_* settings; ``url`` None means the embedded in-process store (fakeredis)."""

    url: str | None = field(default=None, repr=False)  # may hold a password: never logged, see ``redacted_url``
    #: The parsed URL, its credentials settled (TALLY_REDIS_USERNAME / _PASSWORD_FILE or the URL's).
    target: RedisUrl | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: Bounded waits: a slow or hung Redis becomes a 503 in bounded time, never a hung worker.
    connect_timeout_ms: int = 2000
    command_timeout_ms: int = 2000
    #: Connections per process (per node on a Cluster); an exhausted pool is a 503 at once.
    pool_size: int = 32
    #: Replicas that must acknowledge a replay claim (WAIT) before it is accepted; docs/protocol.md §9.5.1.
    min_replicas: int = 0
    replica_ack_timeout_ms: int = 500
    #: The raw TALLY_REDIS_* values this was read from, to hand the same settings on (``config``).
    raw: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def embedded(self) -> bool:
        return self.target is None

    @property
    def topology(self) -> Topology:
        return Topology.STANDALONE if self.target is None else self.target.topology

    @property
    def durability(self) -> Durability:
        return Durability(self.min_replicas, self.replica_ack_timeout_ms)

    @property
    def redacted_url(self) -> str:
        """The URL without its password, for logs and status pages."""
        return "embedded" if self.target is None else format_url(self.target, with_password=False)

    def config(self) -> dict[str, str]:
        """The TALLY_REDIS_* values these settings came from (for a Flask app's config)."""
        return dict(self.raw)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RedisSettings:
        """Read and check every TALLY_REDIS_* value in ``env`` (the environment or the [redis] table)."""
        raw = {name: str(env[name]) for name in NAMES if env.get(name) not in (None, "")}
        url = raw.get("TALLY_REDIS_URL")
        if url is None:
            extra = sorted(raw)
            if extra:
                raise ConfigurationError(f"{', '.join(extra)} set but TALLY_REDIS_URL is not (the embedded store "
                                         "takes no Redis settings)")
            return cls()
        parsed = parse_url(url)
        username, password, sentinel_username, sentinel_password = _credentials_from(raw, parsed)
        ca, cert, key = _tls_files(raw, parsed)
        default = cls()
        settings = cls(
            url=url, target=replace(parsed, username=username, password=password),
            sentinel_username=sentinel_username, sentinel_password=sentinel_password,
            tls_ca_file=ca, tls_cert_file=cert, tls_key_file=key,
            connect_timeout_ms=_whole(raw, "TALLY_REDIS_CONNECT_TIMEOUT_MS", default.connect_timeout_ms, 1, 60_000),
            command_timeout_ms=_whole(raw, "TALLY_REDIS_COMMAND_TIMEOUT_MS", default.command_timeout_ms, 1, 60_000),
            pool_size=_whole(raw, "TALLY_REDIS_POOL_SIZE", default.pool_size, 1, 10_000),
            # Replication is asynchronous: where a failover can promote a replica, claims wait for one by default.
            min_replicas=_whole(raw, "TALLY_REDIS_MIN_REPLICAS",
                                0 if parsed.topology is Topology.STANDALONE else 1, 0, 100),
            replica_ack_timeout_ms=_whole(raw, "TALLY_REDIS_REPLICA_ACK_TIMEOUT_MS",
                                          default.replica_ack_timeout_ms, 1, 60_000),
            raw=raw,
        )
        if settings.min_replicas and settings.replica_ack_timeout_ms >= settings.command_timeout_ms:
            # WAIT blocks up to the ack timeout; the socket must outlast it or every claim times out.
            raise ConfigurationError("TALLY_REDIS_REPLICA_ACK_TIMEOUT_MS must be less than "
                                     "TALLY_REDIS_COMMAND_TIMEOUT_MS")
        return settings


def _whole(raw: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = raw.get(name)
    if text is None:
        return default
    if not _DIGITS.fullmatch(text.strip()):
        raise ConfigurationError(f"{name} must be a whole number, not {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be from {low} to {high}, not {value}")
    return value


def _password(raw: Mapping[str, str], name: str) -> str | None:
    path = raw.get(name)
    if path is None:
        return None
    data = read_secret(path, what=name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{name} {path} is not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")  # editors end files with a newline; it is not the password
    if not text or "\n" in text or "\r" in text:
        raise ConfigurationError(f"{name} {path} must hold the password on one line")
    return text


def _credentials_from(raw: Mapping[str, str], parsed: RedisUrl) -> tuple[str | None, ...]:
    """(username, password, sentinel username, sentinel password) from the settings and the URL."""
    password = _password(raw, "TALLY_REDIS_PASSWORD_FILE")
    if password is not None and parsed.password is not None:
        raise ConfigurationError("the Redis password is given twice: keep TALLY_REDIS_PASSWORD_FILE and take it "
                                 "out of TALLY_REDIS_URL")
    username = raw.get("TALLY_REDIS_USERNAME")
    if username is not None and parsed.username is not None:
        raise ConfigurationError("the Redis username is given twice: in TALLY_REDIS_USERNAME and in TALLY_REDIS_URL")
    sentinel = [n for n in ("TALLY_REDIS_SENTINEL_USERNAME", "TALLY_REDIS_SENTINEL_PASSWORD_FILE") if n in raw]
    if sentinel and parsed.topology is not Topology.SENTINEL:
        raise ConfigurationError(f"{', '.join(sentinel)} apply only to a redis+sentinel:// URL")
    return (username or parsed.username, password or parsed.password, raw.get("TALLY_REDIS_SENTINEL_USERNAME"),
            _password(raw, "TALLY_REDIS_SENTINEL_PASSWORD_FILE"))


def _tls_files(raw: Mapping[str, str], parsed: RedisUrl) -> tuple[Path | None, Path | None, Path | None]:
    """(CA, client certificate, client key), each checked readable; the key also private (0600)."""
    names = ("TALLY_REDIS_TLS_CA_FILE", "TALLY_REDIS_TLS_CERT_FILE", "TALLY_REDIS_TLS_KEY_FILE")
    given = [n for n in names if n in raw]
    if given and not parsed.tls:
        raise ConfigurationError(f"{', '.join(given)} set but TALLY_REDIS_URL does not use TLS "
                                 "(rediss://, rediss+sentinel:// or rediss+cluster://)")
    if ("TALLY_REDIS_TLS_CERT_FILE" in raw) != ("TALLY_REDIS_TLS_KEY_FILE" in raw):
        raise ConfigurationError("TALLY_REDIS_TLS_CERT_FILE and TALLY_REDIS_TLS_KEY_FILE go together "
                                 "(the client certificate and its private key)")
    ca, cert, key = (Path(raw[n]).expanduser() if n in raw else None for n in names)
    if key is not None:
        read_secret(key, what="TALLY_REDIS_TLS_KEY_FILE")  # a private key others can read is already spent
    for name, path in zip(names[:2], (ca, cert), strict=True):
        if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
            raise ConfigurationError(f"{name} {path} is not a readable file")
    return ca, cert, key
