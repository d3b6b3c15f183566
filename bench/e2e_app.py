"""The end-to-end benchmark's Flask service: one endpoint with ticket authentication, the same without.

``GET /open`` and ``GET /data`` return the same small JSON document; only
``/data`` is behind ``TicketAuth.required`` (verification, replay claim in
Redis, revocation check, and the ``Authentication-Info`` proof on the
response).  ``GET /open-page`` and ``GET /data-page`` are the same pair
with an API endpoint's usual work in the view: a page of ``PAGE_ROWS``
records rendered as JSON.  Served by ``kdc.serve.serve_wsgi``: gunicorn, as ``tally kdc
serve`` and ``tally service serve`` run, with one app per worker.

    python -m bench.e2e_app --port P --keytab api.keytab --redis-url redis://127.0.0.1:N/0
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from flask import Flask, Response, jsonify

from kdc.serve import serve_wsgi
from relying_service import TicketAuth

#: Rows of the page the "-page" endpoints render (what a list endpoint returns from its database).
PAGE_ROWS = 100
_PAGE = [{"id": i, "name": f"item {i}", "owner": "alice", "tags": ["a", "b", "c"], "price": i * 1.25,
          "created": "2026-12-01T00:00:00Z", "active": i % 2 == 0} for i in range(PAGE_ROWS)]


def create_app(keytab: Path, redis_url: str) -> Flask:
    app = Flask(__name__)
    # The store, keytab and skew are given here; anything else comes from the usual settings.
    app.config.update(TALLY_KEYTAB=str(keytab), TALLY_REDIS_URL=redis_url, TALLY_MAX_SKEW=300,
                      TALLY_PUBLIC_URL=None, TALLY_TRUST_FORWARDED=False)
    auth = TicketAuth(app)

    @app.get("/open")
    def open_data() -> Response:
        return jsonify(message="hello", principal=None)

    @app.get("/data")
    @auth.required
    def data() -> Response:
        return jsonify(message="hello", principal=auth.principal)

    @app.get("/open-page")
    def open_page() -> Response:
        return jsonify(items=[dict(row) for row in _PAGE], principal=None)

    @app.get("/data-page")
    @auth.required
    def data_page() -> Response:
        return jsonify(items=[dict(row) for row in _PAGE], principal=auth.principal)

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keytab", type=Path, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--workers", type=int, default=2)
    ns = parser.parse_args(argv)
    serve_wsgi(functools.partial(create_app, ns.keytab.resolve(), ns.redis_url), host="127.0.0.1", port=ns.port,
               workers=ns.workers)


if __name__ == "__main__":
    main()
