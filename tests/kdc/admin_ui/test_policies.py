"""Policy pages: the realm default and per-principal overrides, bounds checked, permissions enforced."""

from __future__ import annotations

from tally_protocol.principal import Principal
from tests.kdc.admin_ui.conftest import AdminRealm, UiClient
from tests.kdc.conftest import REALM

EMPTY = {name: "" for name in ("tgt_lifetime_s", "renewable_lifetime_s", "service_ticket_lifetime_s",
                               "lockout_threshold", "lockout_window_s", "lockout_duration_s")}


def test_realm_default_is_saved(admin_realm: AdminRealm, root: UiClient) -> None:
    response = root.post("/admin/policies", {**EMPTY, "tgt_lifetime_s": "7200", "lockout_threshold": "3"})
    assert response.status_code == 302
    default = admin_realm.ops.policies.realm_default()
    assert (default.tgt_lifetime_s, default.lockout_threshold, default.lockout_window_s) == (7200, 3, None)
    assert 'value="7200"' in root.get("/admin/policies").get_data(as_text=True)


def test_out_of_bounds_values_show_the_form_again(admin_realm: AdminRealm, root: UiClient) -> None:
    response = root.post("/admin/policies", {**EMPTY, "tgt_lifetime_s": "5"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "between 60 and" in html and 'value="5"' in html
    assert admin_realm.ops.policies.realm_default().tgt_lifetime_s is None


def test_non_numbers_show_the_form_again(root: UiClient) -> None:
    response = root.post("/admin/policies", {**EMPTY, "lockout_threshold": "ten"})
    assert response.status_code == 400 and "must be a whole number" in response.get_data(as_text=True)


def test_principal_override_is_saved_and_shown(admin_realm: AdminRealm, root: UiClient) -> None:
    root.post("/admin/policies/principal?name=alice", {**EMPTY, "service_ticket_lifetime_s": "600"})
    override = admin_realm.ops.policies.override(Principal("alice", REALM))
    assert override.service_ticket_lifetime_s == 600
    overview = root.get("/admin/policies").get_data(as_text=True)
    assert f"alice@{REALM}" in overview and "10 min" in overview


def test_lookup_goes_to_the_principal_policy_page(root: UiClient) -> None:
    response = root.get("/admin/policies/lookup?name=alice")
    assert response.headers["Location"] == "/admin/policies/principal?name=alice"


def test_operator_may_override_a_principal_but_not_the_realm_default(admin_realm: AdminRealm) -> None:
    ui = admin_realm.client("operator")
    assert ui.post("/admin/policies/principal?name=alice", {**EMPTY, "lockout_threshold": "9"}).status_code == 302
    assert ui.post("/admin/policies", {**EMPTY, "lockout_threshold": "9"}).status_code == 403
    assert admin_realm.ops.policies.realm_default().lockout_threshold is None


def test_policy_of_an_unknown_principal_is_a_404_page(root: UiClient) -> None:
    assert root.get("/admin/policies/principal?name=ghost").status_code == 404
    assert root.post("/admin/policies/principal?name=ghost", {**EMPTY, "lockout_threshold": "3"}).status_code == 404
