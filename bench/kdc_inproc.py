"""Item 2's "part of" rows: the KDC's exchanges called in-process, with no HTTP server in front.

Run by ``kdc_bench`` as ``python -m bench.kdc_inproc AS_BODIES TGS_BODIES``
in the realm's environment (``TallyRealm.env``: its redis-server, master key
and realm), pinned to one core.  It builds the KDC app as a gunicorn worker
does (``kdc.app.create_app``) and calls the WSGI app itself with each
pre-generated body once (every check, claim, counter and audit entry as over
HTTP), one exchange after the other, and prints one JSON line: for AS and
TGS, the rate of one thread and the CPU time one exchange costs.  The
difference to the HTTP rows is the server (gunicorn, HTTP parsing,
connections), not the exchange.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kdc.app import create_app

#: Exchanges of each kind run before timing: the first ones set up connections, scripts and caches.
WARM_UP = 50


def _environ(path: str, body: str, n: int) -> dict[str, Any]:
    data = body.encode()
    return {"REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1:8000", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data)),
            "CONTENT_TYPE": "application/json", "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0), "REMOTE_ADDR": "127.0.0.1",
            # one address per request, as the HTTP rows send: the per-address limit counts, never refuses
            "HTTP_X_FORWARDED_FOR": f"127.9.{n // 256 % 256}.{n % 256}"}


def main(argv: list[str] | None = None) -> None:
    as_items, tgs_items = (Path(a) for a in (sys.argv[1:] if argv is None else argv))
    app = create_app()
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None, /) -> Any:
        statuses.append(status)
        return None

    result: dict[str, Any] = {}
    for name, path, items in (("as", "/v1/as", as_items), ("tgs", "/v1/tgs", tgs_items)):
        bodies = items.read_text().splitlines()
        environs = [_environ(path, body, i) for i, body in enumerate(bodies)]
        for environ in environs[:WARM_UP]:  # connections, scripts and caches, untimed
            b"".join(app(environ, start_response))
        environs = environs[WARM_UP:]
        statuses.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        for environ in environs:
            answer: Iterable[bytes] = app(environ, start_response)
            b"".join(answer)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        refused = [s for s in statuses if not s.startswith("200")]
        if refused:
            raise RuntimeError(f"{len(refused)} of {len(environs)} in-process {name} exchanges refused: {refused[0]}")
        result[name] = {"rate": len(environs) / wall, "cpu_us": 1e6 * cpu / len(environs), "busy": cpu / wall,
                        "n": len(environs)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
