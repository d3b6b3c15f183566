"""The admin UI in headless Chromium: log in, a forged cross-origin form refused, a client's key handed
over once, disable, rotate a service, and the audit entries of those actions.

The KDC serves plain http on 127.0.0.1 with the production cookie settings:
Chromium treats loopback as a secure context, so the ``__Host-`` Secure
cookie works as it would over https.  Another loopback port is another
origin but the *same site*, so SameSite=Strict does not stop its forms:
the CSRF token does, which is what the forgery test shows.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from tally_protocol.keytab import load_keytab
from tally_protocol.principal import Principal
from tests.browser.conftest import ADMIN, ADMIN_PASSWORD, Kdc
from tests.kdc.conftest import REALM


def log_in(page: Page) -> None:
    page.goto("/admin/principals")
    expect(page).to_have_url("/admin/login?next=/admin/principals")
    page.fill("#account", ADMIN)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button:has-text('Log in')")
    expect(page.locator("h1")).to_have_text("Principals")


def test_admin_logs_in_and_the_session_cookie_is_locked_down(page: Page, context: BrowserContext) -> None:
    page.goto("/admin/login")
    page.fill("#account", ADMIN)
    page.fill("#password", "not the password")
    page.click("button:has-text('Log in')")
    expect(page.locator(".alert.error")).to_have_text("Wrong account name or password.")
    log_in(page)
    expect(page.locator(".whoami")).to_contain_text(f"signed in as {ADMIN}")
    [cookie] = [c for c in context.cookies() if c["name"] == "__Host-tally_admin"]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict" and cookie["expires"] == -1
    assert page.evaluate("document.cookie") == ""


def test_a_forged_form_from_another_origin_is_refused(page: Page, kdc: Kdc, other_origin: object) -> None:
    log_in(page)
    forged = f"""<!doctype html><title>win a prize</title>
    <form id="f" method="post" action="{kdc.url}/admin/principals/new">
      <input name="kind" value="client"><input name="name" value="mallory"><input name="source" value="random">
      <input name="csrf_token" value="forged-token">
    </form><script>document.getElementById("f").submit()</script>"""
    assert callable(other_origin)
    page.goto(other_origin(forged))
    expect(page.locator("h1")).to_have_text("Permission denied")
    expect(page.locator("main")).to_contain_text("did not come from this admin site")
    assert kdc.db.find("mallory") is None
    # A tampered token on the admin's own form is refused the same way.
    page.goto("/admin/principals/new")
    page.fill("#name", "mallory")
    page.evaluate("document.querySelector('main input[name=csrf_token]').value += 'x'")
    page.click("button:has-text('Create')")
    expect(page.locator("h1")).to_have_text("Permission denied")
    assert kdc.db.find("mallory") is None


def test_create_disable_rotate_and_read_the_audit_log(page: Page, kdc: Kdc, tmp_path: Path) -> None:
    kdc.db.add_service("web")
    log_in(page)
    page.click("text=New principal")
    page.fill("#name", "carol")
    page.click("button:has-text('Create')")
    expect(page).to_have_url("/admin/once")
    with page.expect_download() as download:
        page.click("button:has-text('Download carol.key')")
    principal, keyset = load_keytab(Path(download.value.path()).read_bytes())
    assert principal == Principal("carol", REALM)
    assert keyset.current.material == kdc.db.current_key("carol").material
    page.reload()
    expect(page.locator("h1")).to_have_text("No longer available")

    page.goto("/admin/principals?q=carol")
    page.click(f"text=carol@{REALM}")
    page.click("button:has-text('Disable')")
    expect(page.locator(".flash.success")).to_contain_text("Disabled carol@")
    expect(page.locator("dl.facts .badge.disabled")).to_have_text("disabled")
    assert kdc.db.get("carol").disabled

    page.goto("/admin/principal?name=web")
    page.fill("#delay_s", "60")
    page.click("button:has-text('Rotate key')")
    with page.expect_download() as rotated:
        page.click("button:has-text('Download web.keytab')")
    assert load_keytab(Path(rotated.value.path()).read_bytes())[1].current.kvno == 2

    page.goto("/admin/principals")
    page.screenshot(path=str(tmp_path / "principals.png"), full_page=True)
    page.goto("/admin/audit")
    page.fill("#principal", "carol")
    page.fill("#event", "admin.principal.disable")
    page.click("button:has-text('Filter')")
    rows = page.locator("table.audit tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"admin.principal.disable success {ADMIN} via web carol@{REALM} 127.0.0.1")
    page.goto("/admin/audit?principal=carol&event=admin.principal.add")
    expect(rows.first).to_contain_text("kind client")
    page.goto("/admin/audit?event=admin.principal.rotate")
    expect(rows.first).to_contain_text(f"web@{REALM}")
    expect(rows.first).to_contain_text(f"{ADMIN} via web")
    expect(rows.first).to_contain_text("delay_s 60")
    page.goto("/admin/audit")
    page.screenshot(path=str(tmp_path / "audit.png"), full_page=True)
    assert (tmp_path / "principals.png").stat().st_size > 0 and (tmp_path / "audit.png").stat().st_size > 0
