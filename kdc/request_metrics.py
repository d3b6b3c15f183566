"""The KDC's Prometheus metrics: request hooks and ``GET /metrics``.

Every request is counted by route pattern (``/v1/as``, never a raw path, so
a scanner cannot create series) and status class; a refusal also by its
error code, read back from the JSON error body only on 4xx/5xx; a
successful AS or TGS exchange's time goes to its histogram.  The hot path
is two counter increments and one observation.  ``record`` does the
counting for the Flask hooks here and for the exchange front
(``exchange_front``), which answers AS and TGS without Flask.

``/metrics`` exposes counts and latencies only, no names, addresses or
secrets; still, bind the KDC to a private interface or firewall the path:
traffic shape is not for the public.
"""

from __future__ import annotations

import time

from flask import Flask, Response, request

from tally_protocol.codes import ErrorCode
from tally_runtime.metrics import KDC_ISSUE_SECONDS, KDC_REFUSALS, KDC_REQUESTS, exposition

#: Exchanges whose successful answers are timed, by route.
_EXCHANGES = {"/v1/as": "as", "/v1/tgs": "tgs"}
_CODES = frozenset(str(code) for code in ErrorCode)
_STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def _endpoint() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def _error_code(response: Response) -> object:
    body = response.get_json(silent=True) if response.is_json else None
    return body.get("error") if isinstance(body, dict) else None


def record(endpoint: str, status: int, code: object = None, start: float | None = None) -> None:
    """Count one answer of ``endpoint`` (a route pattern); ``code``: a refusal's error code; ``start``: when the
    exchange began (``time.perf_counter()``), timed when it succeeded."""
    KDC_REQUESTS.labels(endpoint, _STATUS_CLASSES[min(max(status // 100, 1), 5) - 1]).inc()
    if status >= 400:
        # Only known codes become label values: a body can never mint a new series.
        KDC_REFUSALS.labels(endpoint, code if isinstance(code, str) and code in _CODES else "OTHER").inc()
    elif status == 200 and endpoint in _EXCHANGES and start is not None:
        KDC_ISSUE_SECONDS.labels(_EXCHANGES[endpoint]).observe(time.perf_counter() - start)


def _record(response: Response) -> Response:
    status = response.status_code
    record(_endpoint(), status, _error_code(response) if status >= 400 else None)  # the exchanges are timed in front
    return response


def _metrics() -> Response:
    body, content_type = exposition()
    response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


def init_metrics(app: Flask) -> None:
    """Count every request of ``app`` and serve ``GET /metrics`` (Prometheus text format)."""
    app.after_request(_record)
    app.add_url_rule("/metrics", "tally_metrics", _metrics, methods=["GET"])
