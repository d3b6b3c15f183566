"""Admin accounts and roles from the UI; no admin hands out more than they hold."""

from __future__ import annotations

from tests.kdc.admin_ui.conftest import AdminRealm, UiClient

NEW = {"username": "erin", "password": "erin's password", "password_confirm": "erin's password", "roles": ["viewer"]}


def test_create_an_account_that_can_then_log_in(admin_realm: AdminRealm, root: UiClient) -> None:
    assert root.post("/admin/admins/accounts", NEW).status_code == 302
    assert admin_realm.ops.accounts.get("erin").roles == frozenset({"viewer"})
    ui = admin_realm.client()
    ui.get("/admin/login")
    assert ui.post("/admin/login", {"account": "erin", "password": "erin's password"}).status_code == 302


def test_a_short_password_shows_the_form_again(root: UiClient) -> None:
    response = root.post("/admin/admins/accounts", {**NEW, "password": "short", "password_confirm": "short"})
    assert response.status_code == 400 and "at least 8 characters" in response.get_data(as_text=True)


def test_grant_and_revoke_a_role(admin_realm: AdminRealm, root: UiClient) -> None:
    root.post("/admin/admins/grant", {"subject": "nobody", "role": "operator"})
    assert admin_realm.ops.accounts.get("nobody").roles == frozenset({"operator"})
    root.post("/admin/admins/grant", {"subject": "alice@EXAMPLE.TEST", "role": "viewer"})
    assert "alice@EXAMPLE.TEST" in root.get("/admin/admins").get_data(as_text=True)
    root.post("/admin/admins/revoke", {"subject": "nobody", "role": "operator"})
    assert admin_realm.ops.accounts.get("nobody").roles == frozenset()


def test_an_admin_cannot_grant_what_they_do_not_hold(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client("admin")  # "*": everything but extract-keys
    response = ui.post("/admin/admins/grant", {"subject": "nobody", "role": "key-custodian"})
    assert response.status_code == 403
    assert admin_realm.ops.accounts.get("nobody").roles == frozenset()


def test_disable_and_delete_another_account(admin_realm: AdminRealm, root: UiClient) -> None:
    root.post("/admin/admins/accounts/viewer/disable")
    assert admin_realm.ops.accounts.get("viewer").disabled
    assert "Type <code>viewer</code>" in root.get("/admin/admins/accounts/viewer/delete").get_data(as_text=True)
    root.post("/admin/admins/accounts/viewer/delete", {"confirm": "nope"})
    assert admin_realm.ops.accounts.find("viewer") is not None
    root.post("/admin/admins/accounts/viewer/delete", {"confirm": "viewer"})
    assert admin_realm.ops.accounts.find("viewer") is None


def test_define_and_delete_a_custom_role(admin_realm: AdminRealm, root: UiClient) -> None:
    root.post("/admin/admins/roles", {"role_name": "auditor", "permissions": ["view-audit", "list"]})
    assert admin_realm.ops.acl.roles.require("auditor").permissions == frozenset({"view-audit", "list"})
    root.post("/admin/admins/roles/auditor/delete")
    assert admin_realm.ops.acl.roles.get("auditor") is None


def test_operator_cannot_manage_admins(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client("operator")
    assert ui.post("/admin/admins/accounts", NEW).status_code == 403
    assert admin_realm.ops.accounts.find("erin") is None


def test_own_password_change(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client("nobody")
    response = ui.post("/admin/account", {"password": "a new password", "password_confirm": "a new password"})
    assert response.status_code == 302
    other = admin_realm.client()
    other.get("/admin/login")
    assert other.post("/admin/login", {"account": "nobody", "password": "a new password"}).status_code == 302


def test_status_page_shows_store_and_key_versions(root: UiClient) -> None:
    html = root.get("/admin/status").get_data(as_text=True)
    assert "reachable" in html and "krbtgt/EXAMPLE.TEST@EXAMPLE.TEST" in html and "version 1" in html
