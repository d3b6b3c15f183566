"""gunicorn's logs as JSON lines, in the shape of every other tallystick log line.

The server's own lines (workers booting, signals, a worker killed on timeout)
become ``{"ts", "level", "logger": "gunicorn.error", "msg"}`` objects, and the
access log one object per request: method, path, status, bytes, duration, client
address, user agent and the request id the response carries (``X-Request-Id``),
so one grep follows a request from the SDK through the KDC and the services.
The query string is left out on purpose: one-time tokens and codes may travel
in it, and the access log is read by more people than the audit log.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from gunicorn import glogging

from tally_runtime.logs import JsonFormatter


def access_fields(status: str | int, environ: Mapping[str, Any], request_time: datetime.timedelta,
                  sent: int | None, response_headers: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The fields of one access line (a pure function of what gunicorn hands the logger)."""
    request_id = next((v for k, v in response_headers if k.lower() == "x-request-id"), None)
    return {
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "status": int(str(status).split(None, 1)[0]),
        "bytes": sent,
        "duration_ms": round(request_time.total_seconds() * 1000, 3),
        "remote": environ.get("REMOTE_ADDR"),
        "user_agent": environ.get("HTTP_USER_AGENT"),
        "request_id": request_id,
    }


class JsonServerLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger writing JSON: server lines (``gunicorn.error``), access lines (``gunicorn.access``)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in (*self.error_log.handlers, *self.access_log.handlers):
            handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: Mapping[str, Any], request_time: datetime.timedelta) -> None:
        if not self.cfg.accesslog:
            return
        fields = access_fields(resp.status, environ, request_time, getattr(resp, "sent", None), resp.headers)
        self.access_log.info("request", extra={"fields": fields})
