"""``TicketAuth``: the Flask extension for relying services (modelled on Flask-WTF's CSRFProtect).

::

    auth = TicketAuth()            # or TicketAuth(app)
    auth.init_app(app)

    @app.get("/whoami")
    @auth.required
    def whoami():
        return {"principal": auth.principal}

Configuration (``app.config``; a key left unset there comes from the
environment through ``Settings.load``):

* ``TALLY_KEYTAB``: the service keytab (principal and key versions), unless a
  ``Verifier`` is passed in;
* ``TALLY_REDIS_URL``: the shared replay cache; unset means the embedded,
  non-persistent store (fine for one process, announced in the log);
* ``TALLY_MAX_SKEW``: accepted clock skew in seconds;
* ``TALLY_PUBLIC_URL`` / ``TALLY_TRUST_FORWARDED``: behind a reverse proxy,
  see ``request_binding``;
* ``TALLY_MAX_BODY_BYTES``: bodies are buffered to be verified; larger is 413
  ``REQUEST_TOO_LARGE``, refused from ``Content-Length`` before reading;
* ``TALLY_CHECK_REVOCATION`` (default on): consult the realm's revocation
  list in the same Redis (``kdc.revocation``; a local copy at most one
  second old, so at most one GET per second per process);
* ``TALLY_RELOAD_ON_SIGHUP`` (default off, on under ``tally service serve``):
  reload the keytab on SIGHUP (``TicketAuth.reload_keytab_on_sighup`` does it
  for an app configured otherwise).  Whatever the setting, a ticket under an
  unknown key version makes the keytab file be looked at again (rate-limited).

Request ids: ``init_app`` puts ``tally_runtime.request_ids.RequestIdMiddleware``
in front of ``app.wsgi_app``: a well-formed ``X-Request-Id`` is kept (else a
fresh id), named on every log line of the request and in JSON refusals, and
echoed in the response.

State lives in ``app.extensions["tally_auth"]``, never on the extension, so
one ``TicketAuth`` can serve several apps.

Mutual authentication: an ``after_request`` hook adds ``Authentication-Info``
to every response of an authenticated request, bound to its final status and
body.  Hooks run in reverse order of registration, so the proof covers what
every hook registered after ``init_app`` did; register hooks that rewrite
bodies after ``init_app``.  A streamed response (a generator, ``send_file``)
is buffered in memory, because the proof covers a digest of the whole body
and is a header, sent before the body.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec

import redis
from flask import Flask, Response, abort, current_app, g, has_request_context, request
from flask.typing import ResponseReturnValue

from kdc.revocation import RevocationList
from tally_protocol import Random
from tally_protocol.errors import AuthenticationRequired, ConfigurationError, TallyError
from tally_protocol.messages.ap_rep import HEADER_NAME
from tally_protocol.replay import ReplayCache
from tally_protocol.verify import Verified, VerifyPolicy
from tally_runtime.flask_body import read_bounded_body
from tally_runtime.http_errors import error_response
from tally_runtime.redis_settings import NAMES as REDIS_NAMES
from tally_runtime.redis_settings import RedisSettings
from tally_runtime.redis_store import EMBEDDED_NOTICE, connect
from tally_runtime.replay_cache import RedisReplayCache
from tally_runtime.request_ids import with_request_ids
from tally_runtime.settings import Settings

from .keytab_source import KeytabSource
from .request_binding import BindingConfig, binding_from_environ
from .verifier import RevocationCheck, Verifier

EXTENSION_KEY = "tally_auth"
_G_VERIFIED = "tally_verified"
_TRUE = ("1", "true", "yes", "on")

P = ParamSpec("P")
_log = logging.getLogger("tally.service")


@dataclass(frozen=True)
class TicketAuthState:
    """What one app's ``TicketAuth`` holds, in ``app.extensions["tally_auth"]``."""

    verifier: Verifier
    binding: BindingConfig
    max_body_bytes: int
    #: The Redis client this extension opened (None when a verifier or cache was passed in).
    store: redis.Redis | None = None


def _apply_config_defaults(app: Flask) -> None:
    env_keys = ("TALLY_REDIS_URL", "TALLY_MAX_SKEW", "TALLY_PUBLIC_URL", "TALLY_TRUST_FORWARDED", "TALLY_MAX_BODY_BYTES")
    if any(key not in app.config for key in env_keys):
        settings = Settings.load()
        if "TALLY_REDIS_URL" not in app.config:  # the TALLY_REDIS_* settings come as one block, never half from each
            app.config.update({"TALLY_REDIS_URL": None, **settings.redis.config()})
        app.config.setdefault("TALLY_MAX_SKEW", settings.max_skew_s)
        app.config.setdefault("TALLY_PUBLIC_URL", settings.public_url)
        app.config.setdefault("TALLY_TRUST_FORWARDED", settings.trust_forwarded)
        app.config.setdefault("TALLY_MAX_BODY_BYTES", settings.max_body_bytes)
    app.config.setdefault("TALLY_KEYTAB", os.environ.get("TALLY_KEYTAB") or None)  # as `tally service serve` reads it
    app.config.setdefault("TALLY_CHECK_REVOCATION", True)
    app.config.setdefault("TALLY_RELOAD_ON_SIGHUP", False)


def _max_body_bytes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit() \
            or int(value) < 1:
        raise ConfigurationError("TALLY_MAX_BODY_BYTES must be a positive whole number of bytes")
    return int(value)


def _flag(value: Any) -> bool:
    return value.strip().lower() in _TRUE if isinstance(value, str) else bool(value)


class TicketAuth:
    def __init__(
        self,
        app: Flask | None = None,
        *,
        verifier: Verifier | None = None,
        replay_cache: ReplayCache | None = None,
        revocation: RevocationCheck | None = None,
        clock: Callable[[], float] = time.time,
        rng: Random = os.urandom,
    ) -> None:
        self._verifier = verifier
        self._replay_cache = replay_cache
        self._revocation = revocation
        self._clock = clock
        self._rng = rng
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        _apply_config_defaults(app)
        verifier, store = self._make_verifier(app)
        app.extensions[EXTENSION_KEY] = TicketAuthState(
            verifier=verifier,
            binding=BindingConfig.create(app.config["TALLY_PUBLIC_URL"], _flag(app.config["TALLY_TRUST_FORWARDED"])),
            max_body_bytes=_max_body_bytes(app.config["TALLY_MAX_BODY_BYTES"]),
            store=store,
        )
        if _flag(app.config["TALLY_RELOAD_ON_SIGHUP"]):
            self.reload_keytab_on_sighup(app)
        app.after_request(self._prove)
        # X-Request-Id accepted (when well formed) or minted, on every log line, echoed, in error bodies.
        app.wsgi_app = with_request_ids(app.wsgi_app)  # type: ignore[assignment,method-assign]

    def reload_keytab_on_sighup(self, app: Flask | None = None) -> bool:
        """Reload the app's keytab on every SIGHUP to this process (call it in each server worker).

        False when the verifier was not built from a keytab file, or when the
        handler cannot be installed (not the main thread).
        """
        return self.state(app).verifier.reload_keys_on_sighup()

    def _make_verifier(self, app: Flask) -> tuple[Verifier, redis.Redis | None]:
        if self._verifier is not None:
            return self._verifier, None
        keytab = app.config["TALLY_KEYTAB"]
        if not keytab:
            raise ConfigurationError("TicketAuth needs TALLY_KEYTAB (the service keytab) or a verifier")
        store: redis.Redis | None = None
        cache = self._replay_cache
        if cache is None:
            redis_settings = RedisSettings.from_env(
                {name: str(app.config[name]) for name in REDIS_NAMES if app.config.get(name) not in (None, "")})
            store = connect(redis_settings)
            if redis_settings.embedded:
                _log.warning(EMBEDDED_NOTICE)
            cache = RedisReplayCache(store, clock=self._clock, durability=redis_settings.durability)
        try:
            max_skew = int(app.config["TALLY_MAX_SKEW"])
        except (TypeError, ValueError):
            raise ConfigurationError("TALLY_MAX_SKEW must be a whole number of seconds") from None
        source = KeytabSource(keytab)
        revocation = self._revocation
        if revocation is None and store is not None and _flag(app.config["TALLY_CHECK_REVOCATION"]):
            revocation = RevocationList(store, source.principal.realm, self._clock)
        verifier = Verifier(source.principal, source, cache, policy=VerifyPolicy(max_skew_s=max_skew),
                            revocation=revocation, clock=self._clock, rng=self._rng)
        return verifier, store

    @staticmethod
    def state(app: Flask | None = None) -> TicketAuthState:
        """The extension's state for ``app`` (default: the current app)."""
        target = app if app is not None else current_app
        try:
            state: TicketAuthState = target.extensions[EXTENSION_KEY]
        except KeyError:
            raise RuntimeError("TicketAuth.init_app(app) has not been called for this app") from None
        return state

    def required(self, view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
        """Decorate a view: it runs only for a verified request; refusals are 401/503 JSON."""

        @functools.wraps(view)
        def authenticated(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
            app = current_app._get_current_object()  # type: ignore[attr-defined]  # each proxy lookup costs
            state = self.state(app)
            environ = request.environ
            try:
                body = read_bounded_body(state.max_body_bytes)
                verified = state.verifier.verify(environ.get("HTTP_AUTHORIZATION"),
                                                 binding_from_environ(environ, body, state.binding))
            except TallyError as err:
                return error_response(err, realm=state.verifier.realm, challenge=True)
            setattr(g, _G_VERIFIED, verified)
            result: ResponseReturnValue = app.ensure_sync(view)(*args, **kwargs)
            return result

        return authenticated

    @property
    def verified(self) -> Verified:
        """The current request's ``Verified``; outside an authenticated request, a 401."""
        if not has_request_context():
            raise RuntimeError("TicketAuth.verified is only available while handling a request")
        verified: Verified | None = g.get(_G_VERIFIED)
        if verified is None:
            err = AuthenticationRequired("this view is not protected by TicketAuth.required")
            abort(error_response(err, realm=self.state().verifier.realm, challenge=True))
        return verified

    @property
    def principal(self) -> str:
        """The authenticated client's name, ``alice@REALM``."""
        return str(self.verified.client)

    def _prove(self, response: Response) -> Response:
        verified: Verified | None = g.get(_G_VERIFIED)
        if verified is None:
            return response
        # Streams and send_file are buffered: the proof covers the whole body.
        response.direct_passthrough = False
        body = b"" if request.method == "HEAD" else response.get_data()
        response.headers[HEADER_NAME] = self.state().verifier.reply_header(verified, response.status_code, body)
        return response
