"""Fixtures for the admin UI tests: a realm's KDC app with the UI on, admin accounts, a logged-in client.

Requests go to ``https://localhost`` (the session cookie is ``Secure``, as in
production).  ``UiClient`` wraps Flask's test client: it logs in through the
login form and adds the page's CSRF token to every form it posts, the way a
browser submitting the rendered form would.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from kdc.admin.extension import admin_state
from kdc.admin.operations import AdminOperations
from kdc.master_key import MasterKey
from tests.kdc.conftest import FixedClock, Realm, make_realm

SECRET = "admin-ui-tests-secret-" + "s" * 32
BASE = "https://localhost"
PASSWORD = "correct horse battery"
#: Built-in roles the tests log in with, plus "nobody" (an account without roles).
ACCOUNTS = {"root": ["superadmin"], "admin": ["admin"], "operator": ["operator"], "viewer": ["viewer"],
            "custodian": ["key-custodian"], "nobody": []}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no CSRF field"
    return found.group(1)


class UiClient:
    """A browser stand-in: cookies, https, CSRF tokens taken from the last page it read."""

    def __init__(self, http: FlaskClient) -> None:
        self.http = http
        self.token: str | None = None

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        response = self.http.get(path, base_url=BASE, **kwargs)
        found = _CSRF.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def post(self, path: str, data: Mapping[str, Any] | None = None, *, csrf: bool = True,
             **kwargs: Any) -> TestResponse:
        form = dict(data or {})
        if csrf and "csrf_token" not in form:
            if self.token is None:
                self.get("/admin/login")
            form["csrf_token"] = self.token
        return self.http.post(path, data=form, base_url=BASE, **kwargs)

    def login(self, username: str, password: str = PASSWORD) -> TestResponse:
        self.get("/admin/login")
        response = self.post("/admin/login", {"account": username, "password": password})
        self.get("/admin/account")  # a page of the new session: its CSRF token
        return response

    def session_cookie(self) -> str | None:
        cookie = self.http.get_cookie("__Host-tally_admin", domain="localhost")
        return None if cookie is None else cookie.value


@dataclass
class AdminRealm:
    realm: Realm
    ops: AdminOperations
    clock: FixedClock

    def client(self, username: str | None = None) -> UiClient:
        ui = UiClient(self.realm.app.test_client())
        if username is not None:
            response = ui.login(username)
            assert response.status_code == 302, response.get_data(as_text=True)
        return ui


def make_admin_realm(store: redis.Redis, master_key: MasterKey, clock: FixedClock, tmp: Any,
                     **config: Any) -> AdminRealm:
    realm = make_realm(store, master_key, clock, tmp, TALLY_ADMIN_SECRET_KEY=SECRET, **config)
    ops = admin_state(realm.app).operations
    for name, roles in ACCOUNTS.items():
        ops.accounts.create(name, PASSWORD, roles)
    return AdminRealm(realm, ops, clock)


@pytest.fixture
def admin_realm(fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock, tmp_path: Any) -> AdminRealm:
    return make_admin_realm(fake_redis, master_key, clock, tmp_path)


@pytest.fixture
def root(admin_realm: AdminRealm) -> UiClient:
    """Logged in as a superadmin."""
    return admin_realm.client("root")
