"""Settings, read once at start: the configuration file under the environment (``Settings.load``).

Nothing else reads ``os.environ``; components receive a ``Settings``.  Every
entry point calls ``Settings.load()``; ``Settings.from_env(env)`` reads a
mapping alone (tests).  The file's keys are these same settings, spelled as
``tally_runtime.config_file`` says (``max_skew`` is ``TALLY_MAX_SKEW``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tally_protocol.errors import ConfigurationError
from tally_protocol.principal import Principal

from .config_file import CONFIG_ENV, ValueType, find_config_file, read_config_file, redis_option_types
from .redis_settings import RedisSettings

#: Every environment setting ``from_env`` reads (besides ``redis_settings.NAMES``), with the TOML type the
#: configuration file must give it.  A test checks that this is exactly what ``from_env`` reads.
OPTION_TYPES: Mapping[str, ValueType] = {
    "TALLY_REALM": str,
    "TALLY_KDC_URL": str,
    "TALLY_CCACHE": str,
    "TALLY_MASTER_KEY_FILE": str,
    "TALLY_MAX_SKEW": int,
    "TALLY_PUBLIC_URL": str,
    "TALLY_TRUST_FORWARDED": bool,
    "TALLY_NEW_SERVICE_KEY_DELAY_S": int,
    "TALLY_ADMIN_SECRET_KEY": str,  # the environment only: the file takes [admin] secret_key_file
    "TALLY_ADMIN_SECRET_KEY_FILE": str,
    "TALLY_ADMIN_COOKIE_SECURE": bool,
    "TALLY_KDC_MAX_BODY_BYTES": int,
    "TALLY_MAX_BODY_BYTES": int,
    "TALLY_RATE_LIMIT_REQUESTS": int,
    "TALLY_RATE_LIMIT_WINDOW_S": int,
    "TALLY_AS_RATE_LIMIT": int,
    "TALLY_TGS_RATE_LIMIT": int,
    "TALLY_PRINCIPAL_RATE_WINDOW_S": int,
}


def option_types() -> dict[str, ValueType]:
    """Every setting the configuration file may hold: ``OPTION_TYPES`` and the Redis connection's."""
    return {**OPTION_TYPES, **redis_option_types()}


def use_config_file(path: Path) -> None:
    """``tally --config PATH``: the same as ``TALLY_CONFIG=PATH``, for this process and its children."""
    os.environ[CONFIG_ENV] = str(path.expanduser().absolute())


def _home_dir(env: Mapping[str, str], xdg: str, fallback: str) -> Path:
    base = env.get(xdg) or str(Path(env.get("HOME") or Path.home()) / fallback)
    return Path(base) / "tally"


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low} and {high}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").lower()
    if raw == "":
        return default
    if raw not in ("0", "1", "true", "false", "yes", "no"):
        raise ConfigurationError(f"{name} must be true or false")
    return raw in ("1", "true", "yes")


@dataclass(frozen=True)
class Settings:
    redis: RedisSettings
    realm: str | None
    kdc_url: str | None
    ccache: Path
    master_key_file: Path
    max_skew_s: int = 300
    public_url: str | None = None
    trust_forwarded: bool = False
    #: Heimdal's new_service_key_delay: a rotated service key becomes the one tickets use this much later.
    new_service_key_delay_s: int = 0
    #: Admin web UI (kdc/admin/ui): its session/CSRF signing key, inline or in a 0600 file; no key, no UI.
    admin_secret_key: str | None = field(default=None, repr=False)
    admin_secret_key_file: Path | None = None
    #: Secure flag of the admin session cookie; off only for plain-http local development.
    admin_cookie_secure: bool = True
    #: Request bodies beyond these are refused with 413 REQUEST_TOO_LARGE before being read whole:
    #: KDC messages are a few hundred bytes; a relying service buffers a body to check its digest.
    kdc_max_body_bytes: int = 64 * 1024
    max_body_bytes: int = 10 * 1024 * 1024
    #: KDC rate limits (429 RATE_LIMITED), in the shared Redis: per client address on every /v1
    #: request, and per client principal on AS and TGS requests (kdc/rate_limits.py).
    rate_limit_requests: int = 30
    rate_limit_window_s: int = 1
    as_rate_limit: int = 20
    tgs_rate_limit: int = 200
    principal_rate_window_s: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        realm = env.get("TALLY_REALM") or None
        if realm is not None:
            Principal.tgs(realm)  # validates the realm spelling
        trust = _flag(env, "TALLY_TRUST_FORWARDED", False)
        return cls(
            redis=RedisSettings.from_env(env),
            realm=realm,
            kdc_url=env.get("TALLY_KDC_URL") or None,
            ccache=Path(env["TALLY_CCACHE"]) if env.get("TALLY_CCACHE")
            else _home_dir(env, "XDG_CACHE_HOME", ".cache") / "ccache.json",
            master_key_file=Path(env["TALLY_MASTER_KEY_FILE"]) if env.get("TALLY_MASTER_KEY_FILE")
            else _home_dir(env, "XDG_DATA_HOME", ".local/share") / "master.key",
            max_skew_s=_int(env, "TALLY_MAX_SKEW", 300, 1, 3600),
            public_url=env.get("TALLY_PUBLIC_URL") or None,
            trust_forwarded=trust,
            new_service_key_delay_s=_int(env, "TALLY_NEW_SERVICE_KEY_DELAY_S", 0, 0, 30 * 86400),
            admin_secret_key=env.get("TALLY_ADMIN_SECRET_KEY") or None,
            admin_secret_key_file=Path(env["TALLY_ADMIN_SECRET_KEY_FILE"]) if env.get("TALLY_ADMIN_SECRET_KEY_FILE")
            else None,
            admin_cookie_secure=_flag(env, "TALLY_ADMIN_COOKIE_SECURE", True),
            kdc_max_body_bytes=_int(env, "TALLY_KDC_MAX_BODY_BYTES", 64 * 1024, 1024, 16 * 1024 * 1024),
            max_body_bytes=_int(env, "TALLY_MAX_BODY_BYTES", 10 * 1024 * 1024, 1024, 1024**3),
            rate_limit_requests=_int(env, "TALLY_RATE_LIMIT_REQUESTS", 30, 1, 1_000_000),
            rate_limit_window_s=_int(env, "TALLY_RATE_LIMIT_WINDOW_S", 1, 1, 3600),
            as_rate_limit=_int(env, "TALLY_AS_RATE_LIMIT", 20, 1, 1_000_000),
            tgs_rate_limit=_int(env, "TALLY_TGS_RATE_LIMIT", 200, 1, 1_000_000),
            principal_rate_window_s=_int(env, "TALLY_PRINCIPAL_RATE_WINDOW_S", 10, 1, 3600),
        )

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings every entry point uses: the configuration file, if any, under the environment.

        The file is ``TALLY_CONFIG`` (``tally --config``), else /etc/tally/tally.toml when it exists.
        """
        env = os.environ if env is None else env
        path = find_config_file(env)
        if path is None:
            return cls.from_env(env)
        config = read_config_file(path, option_types())
        try:
            return cls.from_env(config.under(env))
        except ConfigurationError as e:
            raise config.explain(e, env) from None

    @property
    def redis_url(self) -> str | None:
        return self.redis.url

    def require_realm(self) -> str:
        if not self.realm:
            raise ConfigurationError("no realm: set TALLY_REALM or pass --realm")
        return self.realm
