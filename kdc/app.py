"""The KDC's Flask app factory.

``create_app`` reads the environment once (``Settings``), resolves every
policy from ``app.config`` (keys prefixed ``TALLY_``, defaults set with
``setdefault`` so tests and deployments override them), and keeps all state
in ``app.extensions["tally_kdc"]``.  Under gunicorn the factory runs in each
worker after fork, so every worker opens its own Redis connection.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from tally_protocol import Random
from tally_protocol.errors import ConfigurationError
from tally_protocol.keys import PasswordParams
from tally_protocol.principal import Principal
from tally_protocol.verify import VerifyPolicy
from tally_runtime.flask_body import bound_request_bodies
from tally_runtime.http_errors import install_error_handlers
from tally_runtime.logs import configure
from tally_runtime.redis_store import connect
from tally_runtime.replay_cache import RedisReplayCache
from tally_runtime.request_ids import with_request_ids
from tally_runtime.settings import Settings

from .admin.api import admin_api
from .admin.extension import init_admin
from .admin.policies import EffectivePolicy, PolicyStore, key_policy_source
from .admin.ui import init_admin_ui
from .exchange import TicketPolicy
from .exchange_front import ExchangeFront
from .lockout import Lockout, LockoutPolicy, RateLimitPolicy
from .master_key import MasterKey, MasterKeyring
from .master_key_file import MasterKeyFile
from .onboarding_views import onboarding_api
from .principal_db import PrincipalDB
from .rate_limits import PrincipalRateLimitPolicy, RateLimits
from .request_metrics import init_metrics
from .revocation import RevocationList
from .state import EXTENSION, KdcState
from .views import health, kdc_api

_TICKETS, _LOCKOUT, _VERIFY = TicketPolicy(), LockoutPolicy(), VerifyPolicy()
_INT_DEFAULTS: Mapping[str, int] = {
    "TALLY_TGT_LIFETIME_S": _TICKETS.tgt_lifetime_s,
    "TALLY_RENEWABLE_LIFETIME_S": _TICKETS.renewable_lifetime_s,
    "TALLY_SERVICE_TICKET_LIFETIME_S": _TICKETS.service_ticket_lifetime_s,
    "TALLY_LOCKOUT_THRESHOLD": _LOCKOUT.threshold,
    "TALLY_LOCKOUT_WINDOW_S": _LOCKOUT.window_s,
    "TALLY_LOCKOUT_DURATION_S": _LOCKOUT.duration_s,
    "TALLY_REPLAY_MARGIN_S": _VERIFY.replay_margin_s,
}


def _positive(config: Mapping[str, Any], name: str, *, allow_zero: bool = False) -> int:
    value = config[name]
    if not isinstance(value, int) or isinstance(value, bool) or value < (0 if allow_zero else 1):
        raise ConfigurationError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} whole number")
    return value


def create_app(
    test_config: Mapping[str, Any] | None = None,
    *,
    settings: Settings | None = None,
    redis_client: redis.Redis | None = None,
    master_key: MasterKey | MasterKeyring | MasterKeyFile | None = None,
    clock: Callable[[], float] = time.time,
    rng: Random = os.urandom,
) -> Flask:
    settings = settings if settings is not None else Settings.load()
    app = Flask(__name__)
    if test_config:
        app.config.from_mapping(test_config)
    app.config.setdefault("TALLY_REALM", settings.realm)
    app.config.setdefault("TALLY_MAX_SKEW_S", settings.max_skew_s)
    app.config.setdefault("TALLY_TRUST_FORWARDED", settings.trust_forwarded)
    app.config.setdefault("TALLY_NEW_SERVICE_KEY_DELAY_S", settings.new_service_key_delay_s)
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # Flask's default is None (unlimited), so not setdefault
        app.config["MAX_CONTENT_LENGTH"] = settings.kdc_max_body_bytes  # protocol messages are a few hundred bytes
    for name, value in (("TALLY_RATE_LIMIT_REQUESTS", settings.rate_limit_requests),
                        ("TALLY_RATE_LIMIT_WINDOW_S", settings.rate_limit_window_s),
                        ("TALLY_AS_RATE_LIMIT", settings.as_rate_limit), ("TALLY_TGS_RATE_LIMIT", settings.tgs_rate_limit),
                        ("TALLY_PRINCIPAL_RATE_WINDOW_S", settings.principal_rate_window_s)):
        app.config.setdefault(name, value)
    #: Argon2id cost of decoy parameters; must match what admins create principals with.
    app.config.setdefault("TALLY_PASSWORD_PARAMS", PasswordParams)
    for name, default in _INT_DEFAULTS.items():
        app.config.setdefault(name, default)

    realm = app.config["TALLY_REALM"]
    if not realm:
        raise ConfigurationError("no realm: set TALLY_REALM")
    realm = Principal.tgs(str(realm)).realm
    cfg = app.config
    ticket_policy = TicketPolicy(
        tgt_lifetime_s=_positive(cfg, "TALLY_TGT_LIFETIME_S"),
        renewable_lifetime_s=_positive(cfg, "TALLY_RENEWABLE_LIFETIME_S", allow_zero=True),
        service_ticket_lifetime_s=_positive(cfg, "TALLY_SERVICE_TICKET_LIFETIME_S"),
    )
    verify_policy = VerifyPolicy(max_skew_s=_positive(cfg, "TALLY_MAX_SKEW_S"),
                                 replay_margin_s=_positive(cfg, "TALLY_REPLAY_MARGIN_S", allow_zero=True))
    lockout_policy = LockoutPolicy(_positive(cfg, "TALLY_LOCKOUT_THRESHOLD"), _positive(cfg, "TALLY_LOCKOUT_WINDOW_S"),
                                   _positive(cfg, "TALLY_LOCKOUT_DURATION_S"))
    rate_policy = RateLimitPolicy(_positive(cfg, "TALLY_RATE_LIMIT_REQUESTS"), _positive(cfg, "TALLY_RATE_LIMIT_WINDOW_S"))
    principal_rate_policy = PrincipalRateLimitPolicy(_positive(cfg, "TALLY_AS_RATE_LIMIT"),
                                                     _positive(cfg, "TALLY_TGS_RATE_LIMIT"),
                                                     _positive(cfg, "TALLY_PRINCIPAL_RATE_WINDOW_S"))

    store = redis_client if redis_client is not None else connect(settings.redis)
    if master_key is None:
        # Read again on SIGHUP and when a record names a master version this worker lacks (rotation).
        master_key = MasterKeyFile(settings.master_key_file)
        master_key.reload_on_sighup()
    # Key retention follows the longest lifetime any principal's policy allows, read at purge time.
    policies = PolicyStore(store, realm, EffectivePolicy(ticket_policy, lockout_policy))
    key_policy = key_policy_source(policies, max_skew_s=verify_policy.max_skew_s,
                                   new_service_key_delay_s=_positive(cfg, "TALLY_NEW_SERVICE_KEY_DELAY_S",
                                                                     allow_zero=True))
    app.extensions[EXTENSION] = KdcState(
        realm=realm,
        redis=store,
        db=PrincipalDB(store, realm, master_key, clock, rng, password_params=cfg["TALLY_PASSWORD_PARAMS"],
                       key_policy=key_policy),
        lockout=Lockout(store, realm, lockout_policy, clock, rng),
        rate_limiter=RateLimits(store, rate_policy, principal_rate_policy, clock),
        replay_cache=RedisReplayCache(store, clock=clock, durability=settings.redis.durability),
        ticket_policy=ticket_policy,
        verify_policy=verify_policy,
        clock=clock,
        rng=rng,
        revocation=RevocationList(store, realm, clock, cache_s=0, durability=settings.redis.durability),
    )

    admin = init_admin(app, app.extensions[EXTENSION], settings)

    configure()
    install_error_handlers(app)
    bound_request_bodies(app)  # MAX_CONTENT_LENGTH: 413 from Content-Length, chunked bodies read one byte past it
    init_metrics(app)  # request counts, refusal codes, issuance latency; GET /metrics
    # POST /v1/as and /v1/tgs without Flask's dispatch; inside ProxyFix and the request ids, like Flask.
    app.wsgi_app = ExchangeFront(app.wsgi_app, app.extensions[EXTENSION], admin,  # type: ignore[method-assign]
                                 max_body=app.config["MAX_CONTENT_LENGTH"])
    if cfg["TALLY_TRUST_FORWARDED"]:
        # Behind one reverse proxy: the rate limiter and audit log see the real client address.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    # X-Request-Id accepted (when well formed) or minted, on every log line, echoed, in error bodies.
    app.wsgi_app = with_request_ids(app.wsgi_app)  # type: ignore[assignment,method-assign]
    app.register_blueprint(kdc_api)
    app.register_blueprint(onboarding_api)
    app.register_blueprint(health)
    app.register_blueprint(admin_api)
    init_admin_ui(app, settings)  # the web UI at /admin, only when TALLY_ADMIN_SECRET_KEY is set
    return app
