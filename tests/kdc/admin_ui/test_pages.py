"""Every page renders for a role that may see it and is a 403 page (never a 500) for one that may not."""

from __future__ import annotations

import fakeredis
import pytest

from kdc.admin.acl import BUILTIN_ROLES, Permission
from kdc.admin.audit_log import AuditQuery
from tests.kdc.admin_ui.conftest import ACCOUNTS, AdminRealm

#: Each read-only page and the permission it needs.
PAGES: dict[str, Permission] = {
    "/admin/principals": Permission.LIST,
    "/admin/principals?q=al&kind=client&status=enabled": Permission.LIST,
    "/admin/principal?name=alice": Permission.SHOW,
    "/admin/principal?name=api&confirm=delete": Permission.SHOW,
    "/admin/policies": Permission.SHOW,
    "/admin/policies/principal?name=alice": Permission.SHOW,
    "/admin/audit": Permission.VIEW_AUDIT,
    "/admin/onboarding": Permission.LIST,
    "/admin/admins": Permission.MANAGE_ADMINS,
    "/admin/status": Permission.SHOW,
}


def _may(account: str, permission: Permission) -> bool:
    return any(BUILTIN_ROLES[role].grants(permission) for role in ACCOUNTS[account])


@pytest.mark.parametrize("account", sorted(ACCOUNTS))
def test_each_page_renders_or_is_refused_by_role(admin_realm: AdminRealm, account: str) -> None:
    ui = admin_realm.client(account)
    for path, permission in PAGES.items():
        response = ui.get(path)
        expected = 200 if _may(account, permission) else 403
        assert response.status_code == expected, (account, path, response.status_code)
        assert response.content_type.startswith("text/html")
        if expected == 403:
            assert "Permission denied" in response.get_data(as_text=True)


def test_own_account_page_renders_for_an_admin_without_roles(admin_realm: AdminRealm) -> None:
    response = admin_realm.client("nobody").get("/admin/account")
    assert response.status_code == 200
    assert "ask an administrator for a role" in response.get_data(as_text=True)


def test_navigation_shows_only_what_the_role_may_use(admin_realm: AdminRealm) -> None:
    html = admin_realm.client("viewer").get("/admin/principals").get_data(as_text=True)
    assert ">Audit log<" in html and ">Admins &amp; roles<" not in html
    assert "New principal" not in html


def test_a_denied_action_is_a_403_page_and_is_audited(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client("viewer")
    response = ui.post("/admin/principals/new", {"kind": "client", "name": "eve", "source": "random"})
    assert response.status_code == 403 and "lacks the add permission" in response.get_data(as_text=True)
    assert admin_realm.realm.db.find("eve") is None
    [event] = admin_realm.ops.audit_log.query(AuditQuery(event="admin.principal.add", limit=5)).records
    assert (event.entry["outcome"], event.entry["actor"], event.entry["via"]) == ("denied", "viewer", "web")


def test_an_unknown_principal_is_a_404_page(admin_realm: AdminRealm) -> None:
    response = admin_realm.client("root").get("/admin/principal?name=nobody-here")
    assert response.status_code == 404 and response.content_type.startswith("text/html")


def test_an_unreachable_store_is_a_503_page(admin_realm: AdminRealm, fake_redis: fakeredis.FakeRedis) -> None:
    ui = admin_realm.client("root")
    server = fake_redis.connection_pool.connection_kwargs["server"]
    server.connected = False
    try:
        response = ui.get("/admin/principals")
    finally:
        server.connected = True
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert "cannot be reached" in response.get_data(as_text=True)
