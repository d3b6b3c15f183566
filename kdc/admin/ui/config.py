"""The admin UI's configuration, resolved once when the app is created.

Rules this module keeps:

* No secret key, no UI: production must configure ``TALLY_ADMIN_SECRET_KEY``
  (or ``TALLY_ADMIN_SECRET_KEY_FILE``, a 0600 file), so that every worker and
  every restart signs sessions with the same key.  Only tests and ``tally
  demo`` may ask for an ephemeral key (``TALLY_ADMIN_EPHEMERAL_KEY``), and a
  warning says so: sessions then die with the process.
* A key shorter than 32 bytes is refused: it signs every session and CSRF token.
* The session cookie is ``Secure`` unless turned off explicitly, for plain
  http on loopback during development only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tally_protocol import Random
from tally_protocol.errors import ConfigurationError
from tally_runtime.secret_files import read_secret
from tally_runtime.settings import Settings

MIN_SECRET_BYTES = 32
EPHEMERAL_NOTICE = ("admin UI: using an ephemeral secret key: sessions end when this process exits "
                    "(set TALLY_ADMIN_SECRET_KEY or TALLY_ADMIN_SECRET_KEY_FILE)")

_INT_DEFAULTS: Mapping[str, int] = {
    #: An unattended admin page stops working after this much inactivity.
    "TALLY_ADMIN_IDLE_TIMEOUT_S": 15 * 60,
    #: However active, a session ends this long after login (then log in again).
    "TALLY_ADMIN_SESSION_LIFETIME_S": 8 * 3600,
    #: Rows per page of the principals and audit lists.
    "TALLY_ADMIN_PAGE_SIZE": 50,
}


@dataclass(frozen=True)
class UiConfig:
    """Everything the UI's security machinery needs; ``secret_keys`` is newest last (itsdangerous order)."""

    secret_keys: tuple[bytes, ...] = field(repr=False)
    cookie_secure: bool = True
    idle_timeout_s: int = 15 * 60
    session_lifetime_s: int = 8 * 3600
    page_size: int = 50
    ephemeral: bool = False

    def __post_init__(self) -> None:
        if not self.secret_keys or any(len(k) < MIN_SECRET_BYTES for k in self.secret_keys):
            raise ConfigurationError(f"the admin UI secret key must be at least {MIN_SECRET_BYTES} bytes")
        if self.idle_timeout_s < 1 or self.session_lifetime_s < self.idle_timeout_s:
            raise ConfigurationError("the admin session lifetime must be at least its idle timeout, both positive")
        if not 1 <= self.page_size <= 500:
            raise ConfigurationError("the admin UI page size must be between 1 and 500")


def _key_bytes(value: object, source: str) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    if not isinstance(raw, bytes):
        raise ConfigurationError(f"{source} must be a string")
    raw = raw.strip()
    if len(raw) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"{source} is shorter than {MIN_SECRET_BYTES} bytes")
    return raw


def _int(config: Mapping[str, Any], name: str) -> int:
    value = config[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigurationError(f"{name} must be a whole number")
    return value


def load_ui_config(config: dict[str, Any], settings: Settings, rng: Random) -> UiConfig | None:
    """The UI's configuration from the app config and the environment's settings; None = UI disabled.

    App config keys (``TALLY_ADMIN_*``) win over the environment, as everywhere in ``create_app``.
    ``TALLY_ADMIN_SECRET_KEY_FALLBACKS`` (a list, oldest first) keeps sessions alive across a key change.
    """
    config.setdefault("TALLY_ADMIN_SECRET_KEY", settings.admin_secret_key)
    config.setdefault("TALLY_ADMIN_SECRET_KEY_FILE", settings.admin_secret_key_file)
    config.setdefault("TALLY_ADMIN_SECRET_KEY_FALLBACKS", [])
    config.setdefault("TALLY_ADMIN_COOKIE_SECURE", settings.admin_cookie_secure)
    config.setdefault("TALLY_ADMIN_EPHEMERAL_KEY", False)
    for name, default in _INT_DEFAULTS.items():
        config.setdefault(name, default)

    inline, path = config["TALLY_ADMIN_SECRET_KEY"], config["TALLY_ADMIN_SECRET_KEY_FILE"]
    if inline and path:
        raise ConfigurationError("set TALLY_ADMIN_SECRET_KEY or TALLY_ADMIN_SECRET_KEY_FILE, not both")
    ephemeral = False
    if inline:
        key = _key_bytes(inline, "TALLY_ADMIN_SECRET_KEY")
    elif path:
        key = _key_bytes(read_secret(path, what="admin UI secret key file"), f"admin UI secret key file {path}")
    elif config["TALLY_ADMIN_EPHEMERAL_KEY"]:
        key, ephemeral = rng(MIN_SECRET_BYTES).hex().encode(), True
        logging.getLogger("tally.admin.ui").warning(EPHEMERAL_NOTICE)
    else:
        return None
    fallbacks = config["TALLY_ADMIN_SECRET_KEY_FALLBACKS"]
    if not isinstance(fallbacks, (list, tuple)):
        raise ConfigurationError("TALLY_ADMIN_SECRET_KEY_FALLBACKS must be a list of keys, oldest first")
    return UiConfig(
        secret_keys=(*(_key_bytes(k, "an admin UI fallback secret key") for k in fallbacks), key),
        cookie_secure=bool(config["TALLY_ADMIN_COOKIE_SECURE"]),
        idle_timeout_s=_int(config, "TALLY_ADMIN_IDLE_TIMEOUT_S"),
        session_lifetime_s=_int(config, "TALLY_ADMIN_SESSION_LIFETIME_S"),
        page_size=_int(config, "TALLY_ADMIN_PAGE_SIZE"),
        ephemeral=ephemeral,
    )
