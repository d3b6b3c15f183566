"""Metrics under the real gunicorn server: with PROMETHEUS_MULTIPROC_DIR every worker's counts add up on /metrics."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.e2e.realm import Deployment

pytestmark = pytest.mark.e2e


def healthz_count(kdc_url: str) -> float:
    # A new connection per scrape, so successive scrapes may land on different workers.
    text = requests.get(kdc_url + "/metrics", headers={"Connection": "close"}, timeout=5).text
    match = re.search(r'^tally_kdc_requests_total\{endpoint="/healthz",outcome="2xx"\} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_every_scrape_reports_the_requests_of_all_workers(deployment: Deployment, tmp_path: Path) -> None:
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    (multiproc / "counter_1.db").write_bytes(b"left by a previous run")
    kdc = Deployment(deployment.workdir, deployment.redis, {**deployment.env, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)})
    kdc.start_kdc()  # two gunicorn workers
    try:
        before = healthz_count(kdc.kdc_url)
        with ThreadPoolExecutor(16) as pool:  # concurrent connections: both workers get a share
            assert all(pool.map(lambda _: requests.get(kdc.kdc_url + "/healthz", headers={"Connection": "close"},
                                                       timeout=5).ok, range(200)))
        assert [healthz_count(kdc.kdc_url) for _ in range(10)] == [before + 200] * 10
        assert not (multiproc / "counter_1.db").exists()  # emptied at start, not added to this run's counts
    finally:
        kdc.stop("kdc")
