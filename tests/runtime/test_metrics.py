"""Shared metrics: Redis operations timed and failures counted in store_errors; exposition; multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import fakeredis
import pytest
import redis
from prometheus_client import REGISTRY
from redis.backoff import NoBackoff
from redis.retry import Retry

from tally_protocol.errors import StoreUnavailable
from tally_runtime.metrics import MULTIPROC_ENV, exposition, metrics_wsgi_app, reset_multiprocess_dir
from tally_runtime.redis_store import store_errors
from tests.support.redis_proc import free_port


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def test_every_guarded_redis_operation_is_timed() -> None:
    timed, errors = sample("tally_redis_operation_seconds_count"), sample("tally_redis_errors_total")
    with store_errors():
        fakeredis.FakeRedis().set("key", "value")
    assert sample("tally_redis_operation_seconds_count") == timed + 1
    assert sample("tally_redis_errors_total") == errors


def test_redis_error_is_counted_when_the_store_is_down() -> None:
    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    errors = sample("tally_redis_errors_total")
    with pytest.raises(StoreUnavailable), store_errors():
        dead.get("anything")
    assert sample("tally_redis_errors_total") == errors + 1


def test_exposition_is_prometheus_text_format() -> None:
    body, content_type = exposition()
    assert content_type.startswith("text/plain; version=")
    assert b"# TYPE tally_redis_errors_total counter" in body


def test_wsgi_app_answers_with_the_metrics() -> None:
    seen: list[tuple[str, list[tuple[str, str]]]] = []
    body = b"".join(metrics_wsgi_app()({"REQUEST_METHOD": "GET", "PATH_INFO": "/"},
                                       lambda status, headers: seen.append((status, headers))))
    assert seen[0][0] == "200 OK" and ("Cache-Control", "no-store") in seen[0][1]
    assert b"# TYPE tally_redis_errors_total counter" in body


def test_reset_empties_the_multiprocess_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    reset_multiprocess_dir()
    assert list(tmp_path.iterdir()) == []


def test_multiprocess_mode_adds_up_every_worker(tmp_path: Path) -> None:
    # Two forked "workers" count one Redis error each; a third process scrapes: the sum, not one worker's view.
    script = textwrap.dedent("""
        import os
        from tally_runtime import metrics
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                metrics.REDIS_ERRORS.inc()
                os._exit(0)
            os.waitpid(pid, 0)
        print(metrics.exposition()[0].decode())
    """)
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True,
                         timeout=60).stdout
    assert "tally_redis_errors_total 2.0" in out
