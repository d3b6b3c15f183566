"""Enrollment tokens and pairing codes from the UI: shown once, listed without the secret, revocable."""

from __future__ import annotations

import re

from kdc.admin.audit_log import AuditQuery
from tests.kdc.admin_ui.conftest import AdminRealm, UiClient


def test_enrollment_token_is_shown_once_with_the_device_command(admin_realm: AdminRealm, root: UiClient) -> None:
    response = root.post("/admin/onboarding/enroll", {"principal": "alice", "enroll_ttl": "10"})
    assert response.headers["Location"] == "/admin/once"
    page = root.get("/admin/once")
    html = page.get_data(as_text=True)
    token = re.search(r'<span class="secret long" id="secret">([^<]+)</span>', html)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store" and token is not None
    assert f"tally enroll {token.group(1)} --kdc https://localhost --key-out alice.key" in html
    again = root.get("/admin/once")
    assert again.status_code == 410 and token.group(1) not in again.get_data(as_text=True)
    listing = root.get("/admin/onboarding").get_data(as_text=True)
    assert "alice@EXAMPLE.TEST" in listing and token.group(1) not in listing
    events = admin_realm.ops.audit_log.query(AuditQuery(principal="alice", limit=50)).records
    assert events and not any(token.group(1) in str(e.entry) for e in events)


def test_pairing_code_is_shown_once(admin_realm: AdminRealm, root: UiClient) -> None:
    root.post("/admin/onboarding/pair", {"principal": "alice", "pair_ttl": "5", "attempts": "3"})
    html = root.get("/admin/once").get_data(as_text=True)
    code = re.search(r'<span class="secret" id="secret">([0-9 -]+)</span>', html)
    assert code is not None and "3 attempts" in html
    assert root.get("/admin/once").status_code == 410
    listing = root.get("/admin/onboarding").get_data(as_text=True)
    assert "alice@EXAMPLE.TEST" in listing and code.group(1) not in listing


def test_services_cannot_enroll(root: UiClient) -> None:
    response = root.post("/admin/onboarding/enroll", {"principal": "api", "enroll_ttl": "10"})
    assert response.status_code == 400
    assert "only clients enroll or pair" in response.get_data(as_text=True)


def test_revoking_a_token_removes_it_from_the_list(admin_realm: AdminRealm, root: UiClient) -> None:
    root.post("/admin/onboarding/enroll", {"principal": "alice", "enroll_ttl": "10"})
    root.get("/admin/once")
    html = root.get("/admin/onboarding").get_data(as_text=True)
    enrollment_id = re.search(r'name="enrollment_id" value="([^"]+)"', html)
    assert enrollment_id is not None
    root.post("/admin/onboarding/revoke", {"enrollment_id": enrollment_id.group(1)})
    assert enrollment_id.group(1) not in root.get("/admin/onboarding").get_data(as_text=True)


def test_closing_a_pairing(root: UiClient) -> None:
    root.post("/admin/onboarding/pair", {"principal": "alice"})
    root.get("/admin/once")
    root.post("/admin/onboarding/close", {"principal": "alice@EXAMPLE.TEST"})
    assert "No open pairings." in root.get("/admin/onboarding").get_data(as_text=True)


def test_creating_tokens_needs_rotate(admin_realm: AdminRealm) -> None:
    viewer = admin_realm.client("viewer")
    assert viewer.post("/admin/onboarding/enroll", {"principal": "alice"}).status_code == 403
    assert viewer.post("/admin/onboarding/pair", {"principal": "alice"}).status_code == 403
