"""The admin session: cookie flags, idle timeout and absolute lifetime on a fixed clock, revocation."""

from __future__ import annotations

from typing import Any

import redis

from kdc.admin.ui.sessions import UiSessions
from kdc.master_key import MasterKey
from tests.kdc.admin_ui.conftest import PASSWORD, AdminRealm, UiClient, make_admin_realm
from tests.kdc.conftest import FixedClock


def _set_cookie_after_login(ui: UiClient) -> str:
    ui.get("/admin/login")
    response = ui.post("/admin/login", {"account": "root", "password": PASSWORD})
    headers = [h for h in response.headers.getlist("Set-Cookie") if "tally_admin=" in h]
    assert len(headers) == 1
    return headers[0]


def test_session_cookie_is_secure_httponly_samesite_strict_host_only(admin_realm: AdminRealm) -> None:
    header = _set_cookie_after_login(admin_realm.client())
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert header.startswith("__Host-tally_admin=")
    assert {"secure", "httponly", "samesite", "path"} <= attributes
    assert "SameSite=Strict" in header and "Path=/" in header
    assert "domain" not in attributes


def test_session_cookie_has_no_expiry_and_holds_no_account_name(admin_realm: AdminRealm) -> None:
    header = _set_cookie_after_login(admin_realm.client())
    assert "expires" not in header.lower() and "max-age" not in header.lower()
    assert "root" not in header


def test_secure_flag_is_off_only_when_configured(fake_redis: redis.Redis, master_key: MasterKey,
                                                 clock: FixedClock, tmp_path: Any) -> None:
    plain = make_admin_realm(fake_redis, master_key, clock, tmp_path, TALLY_ADMIN_COOKIE_SECURE=False)
    header = _set_cookie_after_login(plain.client())
    assert header.startswith("tally_admin=") and "secure" not in header.lower()


def test_idle_session_ends_and_says_so(admin_realm: AdminRealm, root: UiClient) -> None:
    admin_realm.clock.advance(15 * 60 + 1)
    response = root.get("/admin/principals")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/login?next=/admin/principals&ended=1"
    assert "Your session ended" in root.get(response.headers["Location"]).get_data(as_text=True)


def test_activity_keeps_a_session_alive(admin_realm: AdminRealm, root: UiClient) -> None:
    for _ in range(3):
        admin_realm.clock.advance(10 * 60)
        assert root.get("/admin/principals").status_code == 200


def test_absolute_lifetime_ends_even_a_busy_session(admin_realm: AdminRealm, root: UiClient) -> None:
    for _ in range(8 * 6):  # 8 hours of a request every 10 minutes
        admin_realm.clock.advance(10 * 60)
        assert root.get("/admin/account").status_code == 200
    admin_realm.clock.advance(10 * 60)
    assert root.get("/admin/account").status_code == 302


def test_disabling_an_account_ends_its_session_at_the_next_request(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client("operator")
    admin_realm.ops.accounts.set_disabled("operator", True)
    assert ui.get("/admin/principals").status_code == 302


NEW_PASSWORD = "a brand new passphrase"


def test_changing_one_s_password_ends_one_s_other_sessions_and_keeps_this_one(admin_realm: AdminRealm) -> None:
    here, elsewhere = admin_realm.client("operator"), admin_realm.client("operator")
    admin_realm.clock.advance(1)
    changed = here.post("/admin/account", {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD})
    assert changed.status_code == 302
    assert here.get("/admin/account").status_code == 200  # the session that changed it goes on
    ended = elsewhere.get("/admin/principals")
    assert ended.status_code == 302 and "ended=1" in ended.headers["Location"]


def test_a_password_set_by_another_admin_ends_every_session_of_the_account(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client("operator")
    admin_realm.clock.advance(1)
    admin_realm.ops.accounts.set_password("operator", NEW_PASSWORD)
    assert ui.get("/admin/principals").status_code == 302
    again = admin_realm.client()
    assert again.login("operator", NEW_PASSWORD).status_code == 302
    assert again.get("/admin/principals").status_code == 200  # a session begun after the change lives


def test_a_revoked_role_takes_effect_at_the_next_request(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client("viewer")
    assert ui.get("/admin/audit").status_code == 200
    admin_realm.ops.accounts.revoke("viewer", "viewer")
    assert ui.get("/admin/audit").status_code == 403


def test_tampered_cookie_is_not_a_session(admin_realm: AdminRealm, root: UiClient) -> None:
    value = root.session_cookie()
    assert value is not None
    forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    other = admin_realm.client()
    other.http.set_cookie("__Host-tally_admin", forged, domain="localhost", secure=True)
    assert other.get("/admin/principals").status_code == 302


def test_session_records_are_stored_under_a_hash_of_the_id(fake_redis: redis.Redis, clock: FixedClock) -> None:
    sessions = UiSessions(fake_redis, "EXAMPLE.TEST", idle_s=60, lifetime_s=600, clock=clock)
    sid = sessions.open("root")
    assert not any(sid in key.decode() for key in fake_redis.keys("*"))
    live = sessions.resume(sid)
    assert live is not None and live.account == "root"
    sessions.close(sid)
    assert sessions.resume(sid) is None
