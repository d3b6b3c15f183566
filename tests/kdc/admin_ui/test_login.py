"""Logging in and out of the admin UI: passwords, throttling, audit, redirects, fresh sessions."""

from __future__ import annotations

from kdc.admin.audit_log import AuditQuery
from tests.kdc.admin_ui.conftest import PASSWORD, AdminRealm, UiClient, csrf_of


def _admin_events(admin_realm: AdminRealm, event: str) -> list[dict[str, object]]:
    page = admin_realm.ops.audit_log.query(AuditQuery(event=event, limit=100))
    return [r.entry for r in page.records]


def test_login_page_has_a_csrf_protected_form(admin_realm: AdminRealm) -> None:
    response = admin_realm.client().get("/admin/login")
    assert response.status_code == 200
    assert csrf_of(response.get_data(as_text=True))
    assert 'type="password"' in response.get_data(as_text=True)


def test_pages_redirect_to_login_when_not_logged_in(admin_realm: AdminRealm) -> None:
    response = admin_realm.client().get("/admin/principals")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login?next=/admin/principals"


def test_correct_password_logs_in_and_lands_on_principals(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client()
    response = ui.login("root")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    assert ui.get("/admin/").headers["Location"] == "/admin/principals"
    page = ui.get("/admin/principals")
    assert page.status_code == 200
    assert "signed in as <strong>root</strong>" in page.get_data(as_text=True)


def test_login_follows_next_only_within_the_site(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client()
    ui.get("/admin/login")
    inside = ui.post("/admin/login?next=/admin/audit", {"account": "root", "password": PASSWORD})
    assert inside.headers["Location"] == "/admin/audit"
    other = admin_realm.client()
    other.get("/admin/login")
    outside = other.post("/admin/login?next=//evil.example/x", {"account": "root", "password": PASSWORD})
    assert outside.headers["Location"] == "/admin/"


def test_wrong_password_is_refused_with_one_message(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client()
    ui.get("/admin/login")
    response = ui.post("/admin/login", {"account": "root", "password": "not the password"})
    assert response.status_code == 401
    assert "Wrong account name or password." in response.get_data(as_text=True)
    assert ui.get("/admin/principals").status_code == 302


def test_unknown_account_gets_the_same_refusal(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client()
    ui.get("/admin/login")
    response = ui.post("/admin/login", {"account": "mallory", "password": PASSWORD})
    assert response.status_code == 401
    assert "Wrong account name or password." in response.get_data(as_text=True)


def test_repeated_failures_lock_the_account_even_for_the_right_password(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client()
    ui.get("/admin/login")
    for _ in range(5):
        assert ui.post("/admin/login", {"account": "viewer", "password": "wrong"}).status_code == 401
    locked = ui.post("/admin/login", {"account": "viewer", "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.get_data(as_text=True)


def test_lock_lifts_after_its_duration(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client()
    ui.get("/admin/login")
    for _ in range(5):
        ui.post("/admin/login", {"account": "viewer", "password": "wrong"})
    admin_realm.clock.advance(901)
    assert ui.post("/admin/login", {"account": "viewer", "password": PASSWORD}).status_code == 302


def test_one_address_trying_many_accounts_is_locked_out(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client()
    ui.get("/admin/login")
    for i in range(20):
        ui.post("/admin/login", {"account": f"guess{i}", "password": "wrong"})
    assert ui.post("/admin/login", {"account": "root", "password": PASSWORD}).status_code == 429


def test_disabled_account_cannot_log_in(admin_realm: AdminRealm) -> None:
    admin_realm.ops.accounts.set_disabled("operator", True)
    ui = admin_realm.client()
    ui.get("/admin/login")
    response = ui.post("/admin/login", {"account": "operator", "password": PASSWORD})
    assert response.status_code == 403
    assert "disabled" in response.get_data(as_text=True)


def test_logins_are_audited_without_the_password(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client()
    ui.get("/admin/login")
    ui.post("/admin/login", {"account": "root", "password": "wrong password 123"})
    ui.post("/admin/login", {"account": "root", "password": PASSWORD})
    events = _admin_events(admin_realm, "admin.login")
    assert [(e["outcome"], e["actor"], e["via"]) for e in events] == [("success", "root", "web"),
                                                                      ("refused", "root", "web")]
    assert events[1]["error"] == "PREAUTH_FAILED" and events[0]["address"] == "127.0.0.1"
    assert not any(PASSWORD in str(e) or "wrong password 123" in str(e) for e in events)


def test_login_starts_a_new_session_cookie(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client()
    ui.get("/admin/login")
    before = ui.session_cookie()
    ui.post("/admin/login", {"account": "root", "password": PASSWORD})
    assert before is not None and ui.session_cookie() not in (None, before)


def test_logout_ends_the_session_even_for_a_copied_cookie(admin_realm: AdminRealm, root: UiClient) -> None:
    stolen = root.session_cookie()
    assert stolen is not None
    response = root.post("/admin/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    thief = admin_realm.client()
    thief.http.set_cookie("__Host-tally_admin", stolen, domain="localhost", secure=True)
    assert thief.get("/admin/principals").status_code == 302
    assert [e["outcome"] for e in _admin_events(admin_realm, "admin.logout")] == ["success"]


def test_logout_needs_the_csrf_token(root: UiClient) -> None:
    assert root.post("/admin/logout", csrf=False).status_code == 403
    assert root.get("/admin/principals").status_code == 200


def test_logged_in_admin_visiting_login_goes_home(root: UiClient) -> None:
    response = root.get("/admin/login")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
