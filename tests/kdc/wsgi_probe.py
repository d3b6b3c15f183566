"""A WSGI factory that reports which process built the app and which one serves it (``/slow``: after 0.5 s)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from typing import Any


def factory() -> Callable[..., Iterable[bytes]]:
    built_in = os.getpid()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/slow":
            time.sleep(0.5)  # holds one of the worker's threads
        body = json.dumps({"built_in": built_in, "serving": os.getpid()}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return app
