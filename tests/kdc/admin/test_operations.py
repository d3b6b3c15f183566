"""``AdminOperations``: what each action does, what it returns, and what it refuses."""

from __future__ import annotations

import pytest
import redis

from kdc.admin.acl import Actor
from kdc.admin.audit_log import AuditQuery
from kdc.admin.operations import AdminOperations
from kdc.admin.policies import PolicyOverride
from kdc.principal_db import PrincipalDB
from tally_protocol.errors import (
    InvalidRequest,
    NotFound,
    PermissionDenied,
    PolicyRefused,
    StoreUnavailable,
)
from tally_protocol.principal import Principal
from tests.kdc.admin.conftest import actor
from tests.kdc.conftest import REALM, FixedClock

PASSWORD = "a long admin password"


def test_adding_a_client_returns_its_key_once_and_shows_no_key(ops: AdminOperations, root: Actor) -> None:
    issued = ops.add_client(root, "alice")
    assert issued.keyset is not None and issued.keyset.versions == [1]
    shown = ops.show(root, "alice").to_dict()
    assert shown["name"] == f"alice@{REALM}" and shown["kvnos"] == [1] and shown["key_source"] == "random"
    assert "keytab" not in shown and "wrapped" not in str(shown)


def test_a_password_client_gets_no_key_back(ops: AdminOperations, root: Actor) -> None:
    issued = ops.add_client(root, "bob", password="correct horse battery")
    assert issued.keyset is None and issued.principal.password_kdf is not None


def test_kadmin_admin_cannot_be_added_by_hand_or_deleted(ops: AdminOperations, root: Actor, db: PrincipalDB) -> None:
    with pytest.raises(PolicyRefused):
        ops.add_service(root, "kadmin/admin")
    db.add_service("kadmin/admin")
    with pytest.raises(PolicyRefused):
        ops.delete(root, "kadmin/admin")


def test_rotating_a_service_with_extract_keys_returns_every_kept_version(ops: AdminOperations, root: Actor) -> None:
    ops.add_service(root, "api")
    issued = ops.rotate(root, "api")
    assert issued.keyset is not None and issued.keyset.versions == [1, 2]


def test_rotating_a_service_without_extract_keys_returns_only_the_new_version(ops: AdminOperations,
                                                                              root: Actor) -> None:
    ops.add_service(root, "api")
    issued = ops.rotate(actor("operator"), "api")
    assert issued.keyset is not None and issued.keyset.versions == [2]
    assert issued.principal.kvnos == [1, 2]


def test_rotating_a_client_returns_its_new_key(ops: AdminOperations, root: Actor) -> None:
    ops.add_client(root, "alice")
    issued = ops.rotate(actor("operator"), "alice")
    assert issued.keyset is not None and issued.keyset.versions == [2]


@pytest.mark.parametrize("name", [f"krbtgt/{REALM}", "kadmin/admin"])
def test_rotating_ticket_granting_or_admin_keys_never_returns_them(ops: AdminOperations, root: Actor,
                                                                   db: PrincipalDB, name: str) -> None:
    if name == "kadmin/admin":
        db.add_service(name)
    issued = ops.rotate(root, name)
    assert issued.keyset is None and issued.principal.current_kvno == 2


@pytest.mark.parametrize("name", [f"krbtgt/{REALM}", "kadmin/admin"])
def test_not_even_the_local_superadmin_exports_ticket_granting_or_admin_keys(
        ops: AdminOperations, root: Actor, db: PrincipalDB, name: str) -> None:
    if name == "kadmin/admin":
        db.add_service(name)
    with pytest.raises(PermissionDenied, match="never leave the KDC"):
        ops.export_keytab(root, name)


def test_only_service_keytabs_are_exported(ops: AdminOperations, root: Actor) -> None:
    ops.add_client(root, "alice")
    with pytest.raises(InvalidRequest, match="only service keytabs"):
        ops.export_keytab(root, "alice")


def test_disable_and_enable_report_the_new_status(ops: AdminOperations, root: Actor) -> None:
    ops.add_client(root, "alice")
    assert ops.disable(root, "alice").status == "disabled"
    assert ops.enable(root, "alice").status == "enabled"


def test_deleting_a_principal_removes_its_policy_override(ops: AdminOperations, root: Actor) -> None:
    ops.add_client(root, "alice")
    ops.set_policy(root, "alice", PolicyOverride(tgt_lifetime_s=600))
    ops.delete(root, "alice")
    assert ops.policies.overrides() == {}


def test_policies_of_unknown_principals_are_not_stored(ops: AdminOperations, root: Actor) -> None:
    with pytest.raises(NotFound):
        ops.set_policy(root, "ghost", PolicyOverride(tgt_lifetime_s=600))


def test_policy_views_show_override_and_effective_values(ops: AdminOperations, root: Actor) -> None:
    ops.add_client(root, "alice")
    ops.set_policy(root, None, PolicyOverride(tgt_lifetime_s=7200))
    view = ops.set_policy(root, "alice", PolicyOverride(renewable_lifetime_s=0))
    assert view.override == PolicyOverride(renewable_lifetime_s=0)
    assert view.effective.ticket.tgt_lifetime_s == 7200 and view.effective.ticket.renewable_lifetime_s == 0
    assert ops.policy(root).effective.ticket.tgt_lifetime_s == 7200


def test_an_admin_cannot_create_an_account_with_more_rights_than_its_own(ops: AdminOperations) -> None:
    with pytest.raises(PermissionDenied, match="extract-keys"):
        ops.create_account(actor("admin"), "eve", PASSWORD, ["superadmin"])
    assert ops.accounts.find("eve") is None


def test_an_admin_cannot_disable_a_superadmin_account(ops: AdminOperations, root: Actor) -> None:
    ops.create_account(root, "boss", PASSWORD, ["superadmin"])
    with pytest.raises(PermissionDenied):
        ops.set_account_disabled(actor("admin"), "boss", True)
    with pytest.raises(PermissionDenied):
        ops.revoke(actor("admin"), "boss", "superadmin")


def test_granting_an_unknown_role_is_not_found(ops: AdminOperations, root: Actor) -> None:
    with pytest.raises(NotFound):
        ops.grant(root, f"alice@{REALM}", "wizard")


def test_a_web_admin_may_change_its_own_password(ops: AdminOperations, root: Actor) -> None:
    ops.create_account(root, "erin", PASSWORD, ["viewer"])
    me = Actor("erin", frozenset({"viewer"}), "127.0.0.1", "web")
    ops.set_account_password(me, "erin", "another long password")
    ops.accounts.verify_password("erin", "another long password")
    with pytest.raises(PermissionDenied):
        ops.set_account_password(me, "root-ish", "another long password")


def test_whoami_names_roles_and_effective_permissions(ops: AdminOperations) -> None:
    me = ops.whoami(actor("key-custodian", name=f"kc@{REALM}"))
    assert me["name"] == f"kc@{REALM}" and me["roles"] == ["key-custodian"]
    assert me["permissions"] == ["extract-keys", "list", "show"]


def test_realm_status_reports_key_versions_and_store_health(ops: AdminOperations, root: Actor,
                                                            clock: FixedClock) -> None:
    ops.rotate(root, f"krbtgt/{REALM}")
    status = ops.realm_status(root)
    assert status.store["ok"] is True and status.store["embedded"] is True
    assert status.tgs.kvnos == [1, 2] and status.tgs.current_kvno == 2
    assert status.master.current_kvno is not None and status.created == int(clock.now)
    assert status.principals == 1 and status.admin_service is False


def test_an_action_whose_audit_record_cannot_be_written_fails_closed(
        ops: AdminOperations, root: Actor, monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(entry: object) -> str:
        raise StoreUnavailable()

    monkeypatch.setattr(ops.audit_log, "append", unavailable)
    with pytest.raises(StoreUnavailable):
        ops.add_service(root, "api")


def test_listing_an_unknown_kind_or_status_is_refused(ops: AdminOperations, root: Actor) -> None:
    with pytest.raises(InvalidRequest):
        ops.list_principals(root, kind="robot")
    with pytest.raises(InvalidRequest):
        ops.list_principals(root, status="sleeping")
    with pytest.raises(InvalidRequest):
        ops.list_principals(root, limit=0)


def test_audit_queries_accept_a_bare_principal_name(ops: AdminOperations, root: Actor) -> None:
    ops.add_client(root, "alice")
    page = ops.audit_events(root, AuditQuery(principal="alice", event="admin.principal."))
    assert [r.entry["target"] for r in page.records] == [f"alice@{REALM}"]


def test_a_store_failure_is_store_unavailable(down_redis: redis.Redis, root: Actor, clock: FixedClock) -> None:
    from kdc.admin.extension import build_operations
    from kdc.master_key import MasterKey
    from tests.kdc.admin.conftest import BASE

    down = build_operations(down_redis, PrincipalDB(down_redis, REALM, MasterKey.generate(), clock), BASE,
                            clock=clock)
    with pytest.raises(StoreUnavailable):
        down.show(root, Principal("alice", REALM))


def test_a_delayed_rotation_leaves_the_new_version_pending(ops: AdminOperations, root: Actor,
                                                           clock: FixedClock) -> None:
    ops.add_service(root, "api")
    issued = ops.rotate(root, "api", delay_s=600)
    newest = issued.principal.keys[-1]
    assert (newest.kvno, newest.activate_at) == (2, int(clock.now) + 600)
    assert issued.keyset is not None and issued.keyset.versions == [1, 2]
    assert ops.audit_log.query(AuditQuery(limit=1)).records[0].entry["delay_s"] == 600


def test_a_rotation_without_a_delay_takes_the_realms_default_for_services(
        fake_redis: redis.Redis, master_key: object, clock: FixedClock, root: Actor) -> None:
    from kdc.admin.extension import build_operations
    from kdc.key_policy import KeyPolicy
    from tests.kdc.admin.conftest import BASE
    from tests.kdc.conftest import cheap_params

    db = PrincipalDB(fake_redis, REALM, master_key, clock, password_params=cheap_params,  # type: ignore[arg-type]
                     key_policy=KeyPolicy(new_service_key_delay_s=300))
    db.init_realm()
    ops = build_operations(fake_redis, db, BASE, clock=clock)
    ops.add_service(root, "api")
    ops.add_client(root, "alice")
    assert ops.rotate(root, "api").principal.keys[-1].activate_at == int(clock.now) + 300
    assert ops.rotate(root, "alice").principal.keys[-1].activate_at == int(clock.now)
