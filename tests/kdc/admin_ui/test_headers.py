"""Security headers on every admin page; pages are never cached, the stylesheet may be."""

from __future__ import annotations

from tests.kdc.admin_ui.conftest import AdminRealm, UiClient


def test_pages_forbid_framing_inline_script_and_sniffing(root: UiClient) -> None:
    headers = root.get("/admin/principals").headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_pages_are_never_stored_by_a_cache(admin_realm: AdminRealm, root: UiClient) -> None:
    for path in ("/admin/login", "/admin/principals", "/admin/principal?name=alice"):
        assert root.get(path).headers["Cache-Control"] == "no-store"
    assert admin_realm.client().get("/admin/login").headers["Cache-Control"] == "no-store"


def test_stylesheet_is_served_without_login(admin_realm: AdminRealm) -> None:
    response = admin_realm.client().get("/admin/static/admin.css")
    assert response.status_code == 200 and response.content_type.startswith("text/css")
    assert response.headers.get("Cache-Control") != "no-store"
    response.close()


def test_pages_use_no_inline_script_or_style(root: UiClient) -> None:
    for path in ("/admin/principals", "/admin/principal?name=api", "/admin/policies", "/admin/audit", "/admin/admins",
                 "/admin/status", "/admin/onboarding", "/admin/principals/new", "/admin/account"):
        html = root.get(path).get_data(as_text=True)
        assert "<script" not in html and "style=" not in html and "<style" not in html, path
