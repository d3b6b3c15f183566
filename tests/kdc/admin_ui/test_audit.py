"""The audit page: UI actions appear with who, what, target, outcome and address; filters and paging work."""

from __future__ import annotations

from typing import Any

import redis

from kdc.master_key import MasterKey
from tests.kdc.admin_ui.conftest import AdminRealm, UiClient, make_admin_realm
from tests.kdc.conftest import REALM, FixedClock


def _rows(html: str) -> list[str]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [row for row in body.split("<tr>")[1:] if 'class="empty"' not in row]


def test_ui_actions_are_listed_with_actor_target_and_outcome(root: UiClient) -> None:
    root.post("/admin/principal/disable", {"name": "alice"})
    html = root.get("/admin/audit?event=admin.principal.disable").get_data(as_text=True)
    [row] = _rows(html)
    assert "admin.principal.disable" in row and "badge success" in row
    assert ">root <span class=\"muted\">via web</span>" in row and f"alice@{REALM}" in row and "127.0.0.1" in row


def test_filter_by_principal_and_outcome(admin_realm: AdminRealm, root: UiClient) -> None:
    admin_realm.client("viewer").post("/admin/principal/disable", {"name": "api"})  # denied
    root.post("/admin/principal/disable", {"name": "alice"})
    denied = _rows(root.get("/admin/audit?outcome=denied").get_data(as_text=True))
    assert len(denied) == 1 and "api@" in denied[0] and "viewer" in denied[0]
    alice = _rows(root.get("/admin/audit?principal=alice&event=admin.principal.").get_data(as_text=True))
    assert alice and all(f"alice@{REALM}" in row for row in alice)


def test_filter_by_time_range(admin_realm: AdminRealm, root: UiClient) -> None:
    root.post("/admin/principal/disable", {"name": "alice"})  # at the fixed clock: 2023-11-14 22:13:20 UTC
    inside = root.get("/admin/audit?event=admin.principal.disable&since=2023-11-14T22:00&until=2023-11-14T23:00")
    assert len(_rows(inside.get_data(as_text=True))) == 1
    after = root.get("/admin/audit?event=admin.principal.disable&since=2023-11-15T00:00")
    assert _rows(after.get_data(as_text=True)) == []


def test_a_bad_date_shows_the_filters_again(root: UiClient) -> None:
    response = root.get("/admin/audit?since=yesterday")
    assert response.status_code == 400 and "must be a date and time" in response.get_data(as_text=True)


def test_paging_goes_to_older_events(fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock,
                                     tmp_path: Any) -> None:
    small = make_admin_realm(fake_redis, master_key, clock, tmp_path, TALLY_ADMIN_PAGE_SIZE=2)
    ui = small.client("root")
    for _ in range(3):
        clock.advance(1)
        ui.post("/admin/principal/disable", {"name": "alice"})
    first = ui.get("/admin/audit?event=admin.principal.disable").get_data(as_text=True)
    assert len(_rows(first)) == 2 and "Older »" in first
    older = first.split('class="button secondary small" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert len(_rows(ui.get(older).get_data(as_text=True))) == 1
