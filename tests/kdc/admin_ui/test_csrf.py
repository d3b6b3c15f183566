"""CSRF: every state-changing request needs this session's signed token; anything else is a 403 page."""

from __future__ import annotations

import pytest
from itsdangerous import URLSafeTimedSerializer

from kdc.admin.ui.csrf import SALT, CsrfRefused, CsrfTokens
from tests.kdc.admin_ui.conftest import SECRET, AdminRealm, UiClient
from tests.kdc.conftest import FixedClock

NEW_CLIENT = {"kind": "client", "name": "eve", "source": "random"}


def _created(admin_realm: AdminRealm) -> bool:
    return admin_realm.realm.db.find("eve") is not None


def test_post_without_a_token_is_refused_and_changes_nothing(admin_realm: AdminRealm, root: UiClient) -> None:
    response = root.post("/admin/principals/new", NEW_CLIENT, csrf=False)
    assert response.status_code == 403
    assert not _created(admin_realm)


def test_refusal_is_a_clear_html_page(root: UiClient) -> None:
    response = root.post("/admin/principals/new", NEW_CLIENT, csrf=False)
    assert response.content_type.startswith("text/html")
    assert "did not come from this admin site" in response.get_data(as_text=True)


def test_forged_token_is_refused(admin_realm: AdminRealm, root: UiClient) -> None:
    forged = URLSafeTimedSerializer("attacker's key " * 4, salt=SALT).dumps("0" * 32)
    assert root.post("/admin/principals/new", {**NEW_CLIENT, "csrf_token": forged}).status_code == 403
    assert not _created(admin_realm)


def test_tampered_token_is_refused(admin_realm: AdminRealm, root: UiClient) -> None:
    assert root.token is not None
    tampered = root.token[:-3] + ("xyz" if not root.token.endswith("xyz") else "abc")
    assert root.post("/admin/principals/new", {**NEW_CLIENT, "csrf_token": tampered}).status_code == 403
    assert not _created(admin_realm)


def test_token_of_another_session_is_refused(admin_realm: AdminRealm, root: UiClient) -> None:
    other = admin_realm.client("admin")
    assert other.token is not None and other.token != root.token
    assert root.post("/admin/principals/new", {**NEW_CLIENT, "csrf_token": other.token}).status_code == 403
    assert not _created(admin_realm)


def test_the_session_token_is_accepted(admin_realm: AdminRealm, root: UiClient) -> None:
    assert root.post("/admin/principals/new", NEW_CLIENT).status_code == 302
    assert _created(admin_realm)


def test_login_form_needs_a_token_too(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client()
    response = ui.post("/admin/login", {"account": "root", "password": "x"}, csrf=False)
    assert response.status_code == 403


def test_tokens_expire_with_the_session_lifetime(clock: FixedClock) -> None:
    tokens = CsrfTokens([SECRET.encode()], max_age_s=600, clock=clock)
    token = tokens.issue("seed")
    clock.advance(601)
    with pytest.raises(CsrfRefused):
        tokens.check(token, "seed")


def test_a_token_signs_only_its_own_seed(clock: FixedClock) -> None:
    tokens = CsrfTokens([SECRET.encode()], max_age_s=600, clock=clock)
    tokens.check(tokens.issue("seed"), "seed")
    with pytest.raises(CsrfRefused):
        tokens.check(tokens.issue("seed"), "other seed")
    with pytest.raises(CsrfRefused):
        tokens.check(None, "seed")


def test_a_token_signed_with_a_previous_key_still_verifies_after_rotation(clock: FixedClock) -> None:
    old = CsrfTokens([b"o" * 32], max_age_s=600, clock=clock).issue("seed")
    CsrfTokens([b"o" * 32, b"n" * 32], max_age_s=600, clock=clock).check(old, "seed")
