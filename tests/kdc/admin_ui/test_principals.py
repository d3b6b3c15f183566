"""Principal pages: search and paging, create (a fresh key handed over once), disable and enable,
rotate, delete with confirmation, keytab download, and the audit trail of each action."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from kdc.admin.audit_log import AuditQuery
from kdc.master_key import MasterKey
from tally_protocol.keytab import load_keytab
from tally_protocol.principal import Principal
from tests.kdc.admin_ui.conftest import AdminRealm, UiClient, make_admin_realm
from tests.kdc.conftest import REALM, AuditCapture, FixedClock
from tests.support.bulk_load import bulk_set, bulk_zadd


def _names(html: str) -> list[str]:
    return [part.split("<", 1)[0] for part in html.split('class="mono" href="/admin/principal?name=')[1:]
            if ">" in part for part in [part.split(">", 1)[1]]]


def _audit(admin_realm: AdminRealm, event: str) -> list[dict[str, Any]]:
    return [r.entry for r in admin_realm.ops.audit_log.query(AuditQuery(event=event, limit=50)).records]


def test_list_shows_names_kinds_and_states(root: UiClient) -> None:
    html = root.get("/admin/principals").get_data(as_text=True)
    assert f"alice@{REALM}" in html and f"api@{REALM}" in html
    assert 'class="badge service"' in html and 'class="badge enabled"' in html


def test_search_by_prefix_and_filter_by_kind(admin_realm: AdminRealm, root: UiClient) -> None:
    admin_realm.realm.db.add_client("alicia")
    html = root.get("/admin/principals?q=ali").get_data(as_text=True)
    assert _names(html) == [f"alice@{REALM}", f"alicia@{REALM}"]
    services = root.get("/admin/principals?kind=service").get_data(as_text=True)
    assert f"api@{REALM}" in _names(services) and f"alice@{REALM}" not in _names(services)


def test_paging_walks_the_realm_with_a_cursor(fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock,
                                              tmp_path: Any) -> None:
    small = make_admin_realm(fake_redis, master_key, clock, tmp_path, TALLY_ADMIN_PAGE_SIZE=2)
    for i in range(3):
        small.realm.db.add_client(f"user{i}")
    ui = small.client("root")
    seen: list[str] = []
    path: str | None = "/admin/principals?q=user"
    while path is not None:
        html = ui.get(path).get_data(as_text=True)
        seen += _names(html)
        marker = 'class="button secondary small" href="'
        path = html.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&") if marker in html else None
    assert seen == [f"user{i}@{REALM}" for i in range(3)]


def test_new_random_key_client_is_handed_over_once(admin_realm: AdminRealm, root: UiClient) -> None:
    created = root.post("/admin/principals/new", {"kind": "client", "name": "carol", "source": "random"})
    assert created.status_code == 302 and created.headers["Location"] == "/admin/once"
    once = root.get("/admin/once")
    assert once.status_code == 200 and "Download carol.key" in once.get_data(as_text=True)
    assert once.headers["Cache-Control"] == "no-store"
    download = root.post("/admin/once/download")
    assert download.status_code == 200 and download.headers["Cache-Control"] == "no-store"
    assert 'filename="carol.key"' in download.headers["Content-Disposition"]
    principal, keyset = load_keytab(download.data)
    assert principal == Principal("carol", REALM)
    assert keyset.current.material == admin_realm.realm.db.current_key("carol").material
    assert root.post("/admin/once/download").status_code == 410
    gone = root.get("/admin/once")
    assert gone.status_code == 410 and "No longer available" in gone.get_data(as_text=True)


def test_the_handed_over_key_never_reaches_a_page_the_log_or_the_audit(
        admin_realm: AdminRealm, root: UiClient, audit_events: AuditCapture) -> None:
    root.post("/admin/principals/new", {"kind": "service", "name": "files"})
    page = root.get("/admin/once").get_data(as_text=True)
    keytab = root.post("/admin/once/download").data
    _principal, keyset = load_keytab(keytab)
    material = keyset.current.material
    for text in (page, root.get("/admin/principal?name=files").get_data(as_text=True), *audit_events.lines,
                 *(str(e) for e in _audit(admin_realm, "admin."))):
        assert material.hex() not in text and material.hex().upper() not in text
        assert keytab.hex() not in text


def test_a_handed_over_key_expires_unclaimed(admin_realm: AdminRealm, root: UiClient) -> None:
    root.post("/admin/principals/new", {"kind": "service", "name": "files"})
    admin_realm.clock.advance(301)
    assert root.post("/admin/once/download").status_code == 410


def test_another_session_cannot_claim_the_handover(admin_realm: AdminRealm, root: UiClient) -> None:
    root.post("/admin/principals/new", {"kind": "service", "name": "files"})
    other = admin_realm.client("root")
    assert other.get("/admin/once").status_code == 410
    assert root.post("/admin/once/download").status_code == 200


def test_password_client_needs_matching_passwords(admin_realm: AdminRealm, root: UiClient) -> None:
    form = {"kind": "client", "name": "dave", "source": "password", "password": "s3cret pw",
            "password_confirm": "other"}
    response = root.post("/admin/principals/new", form)
    assert response.status_code == 400 and "the two passwords differ" in response.get_data(as_text=True)
    assert "s3cret pw" not in response.get_data(as_text=True)
    ok = root.post("/admin/principals/new", {**form, "password_confirm": "s3cret pw"})
    assert ok.status_code == 302 and ok.headers["Location"] == "/admin/principal?name=dave@EXAMPLE.TEST"
    assert admin_realm.realm.db.get("dave").is_password


@pytest.mark.parametrize(("name", "message"), [
    ("alice", "already exists"),
    ("krbtgt/OTHER", "reserved"),
    ("", "Name is required"),
    ("bad name", "invalid"),
])
def test_bad_names_show_the_form_again_with_the_reason(root: UiClient, name: str, message: str) -> None:
    response = root.post("/admin/principals/new", {"kind": "client", "name": name, "source": "random"})
    assert response.status_code in (400, 403, 409)
    html = response.get_data(as_text=True)
    assert message.lower() in html.lower() and "<form" in html and "New principal" in html


def test_disable_and_enable_are_applied_and_audited(admin_realm: AdminRealm, root: UiClient) -> None:
    root.get("/admin/principal?name=alice")
    assert root.post("/admin/principal/disable", {"name": "alice@EXAMPLE.TEST"}).status_code == 302
    assert admin_realm.realm.db.get("alice").disabled
    assert "badge disabled" in root.get("/admin/principal?name=alice").get_data(as_text=True)
    root.post("/admin/principal/enable", {"name": "alice@EXAMPLE.TEST"})
    assert not admin_realm.realm.db.get("alice").disabled
    [event] = _audit(admin_realm, "admin.principal.disable")
    assert event["target"] == f"alice@{REALM}" and event["actor"] == "root" and event["outcome"] == "success"


def test_rotating_a_service_with_a_delay_leaves_a_pending_key(admin_realm: AdminRealm, root: UiClient) -> None:
    response = root.post("/admin/principal/rotate", {"name": "api", "delay_s": "600"})
    assert response.headers["Location"] == "/admin/once"
    _principal, keyset = load_keytab(root.post("/admin/once/download").data)
    assert keyset.current.kvno == 2
    html = root.get("/admin/principal?name=api").get_data(as_text=True)
    assert "badge pending" in html
    [event] = _audit(admin_realm, "admin.principal.rotate")
    assert event["delay_s"] == 600 and event["kvno"] == 2


def test_rotation_refused_for_bad_input_returns_to_the_principal(root: UiClient) -> None:
    response = root.post("/admin/principal/rotate", {"name": "alice", "delay_s": "60"})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/principal?name=alice"
    assert "single key" in root.get("/admin/principal?name=alice").get_data(as_text=True)


def test_delete_needs_the_name_typed(admin_realm: AdminRealm, root: UiClient) -> None:
    root.get("/admin/principal?name=api&confirm=delete")
    refused = root.post("/admin/principal/delete", {"name": "api", "confirm": "yes"})
    assert refused.headers["Location"] == "/admin/principal?name=api&confirm=delete"
    assert admin_realm.realm.db.find("api") is not None
    done = root.post("/admin/principal/delete", {"name": "api", "confirm": f"api@{REALM}"})
    assert done.headers["Location"] == "/admin/principals"
    assert admin_realm.realm.db.find("api") is None


def test_keytab_download_needs_extract_keys(admin_realm: AdminRealm) -> None:
    custodian = admin_realm.client("custodian")
    response = custodian.post("/admin/principal/keytab", {"name": "api"})
    assert response.status_code == 200 and 'filename="api.keytab"' in response.headers["Content-Disposition"]
    assert load_keytab(response.data)[0] == Principal("api", REALM)
    operator = admin_realm.client("operator")
    assert operator.post("/admin/principal/keytab", {"name": "api"}).status_code == 403
    assert admin_realm.client("root").post("/admin/principal/keytab", {"name": f"krbtgt/{REALM}"}).status_code == 403


def test_a_page_deep_into_100000_principals_reads_one_page(admin_realm: AdminRealm, fake_redis: redis.Redis,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"tally:{{{REALM}}}"
    template = fake_redis.get(f"{prefix}:p:alice")
    assert template is not None
    names = [f"user{i:06d}" for i in range(100_000)]
    bulk_zadd(fake_redis, f"{prefix}:idx", dict.fromkeys(names, 0))
    bulk_set(fake_redis, {f"{prefix}:p:{n}": template.replace(b'"name":"alice"', f'"name":"{n}"'.encode())
                          for n in names})
    ui = admin_realm.client("root")
    db = admin_realm.ops.db
    read: list[int] = []
    original = db.list

    def counting_list(*args: Any, **kwargs: Any) -> Any:
        records = original(*args, **kwargs)
        read.append(len(records))
        return records

    monkeypatch.setattr(db, "list", counting_list)
    html = ui.get("/admin/principals?cursor=user089999").get_data(as_text=True)
    assert _names(html)[:2] == [f"user090000@{REALM}", f"user090001@{REALM}"] and len(_names(html)) == 50
    assert "cursor=user090049" in html
    assert sum(read) == 50


def test_a_name_with_dot_segments_is_never_confused_with_another(admin_realm: AdminRealm, root: UiClient) -> None:
    admin_realm.realm.db.add_client("x/../api")
    html = root.get("/admin/principal?name=x/../api").get_data(as_text=True)
    assert "x/../api@EXAMPLE.TEST" in html and 'name="name" value="x/../api@EXAMPLE.TEST"' in html
    root.post("/admin/principal/disable", {"name": "x/../api@EXAMPLE.TEST"})
    assert admin_realm.realm.db.get("x/../api").disabled and not admin_realm.realm.db.get("api").disabled
