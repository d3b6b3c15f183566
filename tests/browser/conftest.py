"""Browser-test harness: a real KDC app on loopback and one headless Debian chromium per session.

The KDC runs in this process (werkzeug's threaded server on a free loopback
port) over the session's real redis-server, with a temporary master key.
Chromium is Debian's (``/usr/bin/chromium``), driven by playwright through
``executable_path``: ``playwright install`` is never run.  When chromium is
missing or will not start, every browser test fails with the reason, exactly
like the Redis tests without redis-server: CI must never skip them silently.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask
import pytest
import redis
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from kdc.admin.extension import admin_state
from kdc.app import create_app
from kdc.master_key import MasterKey
from kdc.principal_db import PrincipalDB
from tally_runtime.redis_settings import RedisSettings
from tally_runtime.settings import Settings
from tests.kdc.conftest import REALM, cheap_params
from tests.support.redis_proc import RedisProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
#: Every playwright wait is bounded: a broken page fails in seconds, it never hangs the suite.
TIMEOUT_MS = 10_000
#: The admin account the browser logs in with.
ADMIN, ADMIN_PASSWORD = "root", "browser tests' password"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class Site:
    """A WSGI app served on ``url`` (``http://127.0.0.1:PORT``) from a daemon thread."""

    url: str
    app: Any
    server: BaseWSGIServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve(app: Any) -> Site:
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return Site(f"http://127.0.0.1:{server.server_port}", app, server, thread)


@dataclass
class Kdc:
    """The KDC under test: its app served on loopback, its principal database and store."""

    site: Site
    db: PrincipalDB
    store: redis.Redis

    @property
    def url(self) -> str:
        return self.site.url

    @property
    def app(self) -> flask.Flask:
        app = self.site.app
        assert isinstance(app, flask.Flask)
        return app


def kdc_config() -> dict[str, Any]:
    """The test app's configuration: cheap Argon2id, no KDC rate limit, an admin UI secret key."""
    return {"TALLY_PASSWORD_PARAMS": cheap_params, "TALLY_RATE_LIMIT_REQUESTS": 10_000,
            "TALLY_ADMIN_SECRET_KEY": "browser-tests-" + "k" * 32}


@pytest.fixture(scope="package")
def kdc(redis_server: RedisProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kdc]:
    store = redis.Redis.from_url(redis_server.url)
    store.flushall()
    master = MasterKey.generate()
    tmp = tmp_path_factory.mktemp("browser-kdc")
    db = PrincipalDB(store, REALM, master, password_params=cheap_params)
    db.init_realm()
    settings = Settings(redis=RedisSettings(url=redis_server.url), realm=REALM, kdc_url=None, ccache=tmp / "ccache.json",
                        master_key_file=tmp / "master.key")
    app = create_app(kdc_config(), settings=settings, redis_client=store, master_key=master)
    admin_state(app).operations.accounts.create(ADMIN, ADMIN_PASSWORD, ["superadmin"])
    site = serve(app)
    yield Kdc(site, db, store)
    site.stop()
    store.close()


@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    # Package scope, not session: while the sync driver is open its event loop counts as running in
    # this thread, and later tests' asyncio.run() would refuse to start.
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """One headless Debian chromium for all browser tests; a failure to start fails the tests."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing (apt-get install -y chromium); the browser tests cannot run")
    try:
        instance = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                     args=CHROMIUM_ARGS, timeout=30_000)
    except PlaywrightError as e:
        pytest.fail(f"chromium at {CHROMIUM} did not start: {e.message}")
    yield instance
    instance.close()


@pytest.fixture
def context(browser: Browser, kdc: Kdc) -> Iterator[BrowserContext]:
    """A fresh browser profile per test (no cookies carried over), with the KDC as base URL."""
    ctx = browser.new_context(base_url=kdc.url)
    ctx.set_default_timeout(TIMEOUT_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def other_origin() -> Iterator[Callable[[str], str]]:
    """Serve an HTML page from another loopback port (another origin); returns its URL."""
    sites: list[Site] = []

    def host(html: str) -> str:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [html.encode()]

        site = serve(app)
        sites.append(site)
        return site.url + "/"

    yield host
    for site in sites:
        site.stop()
