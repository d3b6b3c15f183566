"""The harness itself: chromium starts and reaches the KDC served on loopback."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import Kdc


def test_chromium_reaches_the_kdc_health_endpoint(page: Page, kdc: Kdc) -> None:
    response = page.goto("/healthz")
    assert response is not None and response.status == 200
    assert '"ok"' in page.content()
