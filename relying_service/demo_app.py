"""The demo relying service: a few routes behind ``TicketAuth``.

* ``GET /whoami`` -> ``{"principal": "alice@REALM"}``
* ``POST /echo`` -> the request body, with its content type (PUT and PATCH too,
  so a method swapped in transit meets the verifier, not a 405)
* ``GET /healthz`` -> 200 (unauthenticated, the process is up)
* ``GET /readyz`` -> 200, or 503 when the replay store does not answer
* ``GET /metrics`` -> Prometheus text format (``TALLY_METRICS_ENDPOINT``, on by default;
  no secrets or client names, but firewall it or bind the service to a private interface)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request

from tally_protocol import Random
from tally_protocol.codes import ErrorCode
from tally_protocol.replay import ReplayCache
from tally_runtime.http_errors import DEFAULT_RETRY_AFTER, install_error_handlers
from tally_runtime.metrics import exposition
from tally_runtime.redis_store import ping
from tally_runtime.settings import Settings

from .flask_ext import TicketAuth
from .verifier import Verifier


def create_demo_app(
    *,
    keytab_path: Path | str | None = None,
    verifier: Verifier | None = None,
    settings: Settings | None = None,
    replay_cache: ReplayCache | None = None,
    test_config: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
    rng: Random = os.urandom,
) -> Flask:
    """Build the demo service; ``settings`` replaces the environment, ``test_config`` goes on top."""
    app = Flask(__name__)
    if settings is not None:
        app.config.update(
            {"TALLY_REDIS_URL": None, **settings.redis.config()}, TALLY_MAX_SKEW=settings.max_skew_s,
            TALLY_PUBLIC_URL=settings.public_url, TALLY_TRUST_FORWARDED=settings.trust_forwarded,
        )
        app.config["TALLY_MAX_BODY_BYTES"] = settings.max_body_bytes
    if keytab_path is not None:
        app.config["TALLY_KEYTAB"] = str(keytab_path)
    if test_config is not None:
        app.config.update(test_config)
    auth = TicketAuth(app, verifier=verifier, replay_cache=replay_cache, clock=clock, rng=rng)
    install_error_handlers(app, realm=TicketAuth.state(app).verifier.realm, challenge=True)

    @app.get("/whoami")
    @auth.required
    def whoami() -> Response:
        return jsonify(principal=auth.principal)

    @app.route("/echo", methods=["POST", "PUT", "PATCH"])
    @auth.required
    def echo() -> Response:
        return Response(request.get_data(), content_type=request.content_type or "application/octet-stream")

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> Response:
        store = TicketAuth.state().store
        if store is None or ping(store):
            return jsonify(status="ready")
        response = jsonify(status="unavailable", error=str(ErrorCode.STORE_UNAVAILABLE))
        response.status_code = 503
        response.headers["Retry-After"] = str(DEFAULT_RETRY_AFTER[503])
        return response

    if app.config.get("TALLY_METRICS_ENDPOINT", True):

        @app.get("/metrics")
        def metrics() -> Response:
            body, content_type = exposition()
            return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})

    return app
