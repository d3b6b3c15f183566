"""The admin session cookie: Flask's signed cookie session (itsdangerous), hardened and scoped.

The cookie is signed, not encrypted: it holds only a random session id and
the CSRF seed, never an account's roles or anything secret.  Its flags:

* ``Secure`` (unless turned off for plain-http development) and, then, the
  ``__Host-`` name prefix: no subdomain or plain-http page can set or
  overwrite it (cookie tossing);
* ``HttpOnly``: no script reads it;
* ``SameSite=Strict``: no other site's link or form carries it;
* no ``Expires``: it dies with the browser, and the server-side record
  (``sessions.py``) enforces the idle timeout and absolute lifetime.

Its own salt keeps it apart from any other signature made with the same key.
"""

from __future__ import annotations

from flask import Flask
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from itsdangerous import URLSafeTimedSerializer

from .config import UiConfig

SALT = "tally-admin-ui-session"
COOKIE = "tally_admin"


class AdminSessionInterface(SecureCookieSessionInterface):
    """Flask's cookie session with the admin UI's key, salt and cookie flags, whatever the app config says."""

    salt = SALT

    def __init__(self, config: UiConfig) -> None:
        self._config = config

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        return URLSafeTimedSerializer(list(self._config.secret_keys), salt=self.salt, serializer=self.serializer,
                                      signer_kwargs={"key_derivation": self.key_derivation,
                                                     "digest_method": self.digest_method})

    def get_cookie_name(self, app: Flask) -> str:
        return f"__Host-{COOKIE}" if self._config.cookie_secure else COOKIE

    def get_cookie_domain(self, app: Flask) -> None:
        return None  # host-only

    def get_cookie_path(self, app: Flask) -> str:
        return "/"  # required by the __Host- prefix; the JSON API and KDC endpoints never read a session

    def get_cookie_httponly(self, app: Flask) -> bool:
        return True

    def get_cookie_secure(self, app: Flask) -> bool:
        return self._config.cookie_secure

    def get_cookie_samesite(self, app: Flask) -> str:
        return "Strict"

    def get_cookie_partitioned(self, app: Flask) -> bool:
        return False

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        return session.modified  # no refresh-on-every-request: idle time is tracked server side
