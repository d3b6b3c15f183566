"""Every role × every admin operation, locally and through the JSON API: allowed exactly when the table says.

The expected table is written out here, independently of ``acl.py``, so a
change to a built-in role has to change this test too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from kdc.admin.acl import Actor
from kdc.admin.audit_log import AuditQuery
from kdc.admin.extension import admin_state
from kdc.admin.interface import AdminInterface, LocalAdmin
from kdc.admin.policies import PolicyOverride
from kdc.master_key import MasterKey
from tally_protocol.errors import PermissionDenied
from tally_protocol.principal import Principal
from tests.kdc.admin.conftest import actor
from tests.kdc.admin.wsgi_transport import remote_admin
from tests.kdc.conftest import REALM, FixedClock, make_realm

PASSWORD = "a long admin password"

Operation = Callable[[AdminInterface], Any]
OPERATIONS: dict[str, tuple[str | None, Operation]] = {
    "whoami": (None, lambda a: a.whoami()),
    "list": ("list", lambda a: a.list_principals()),
    "show": ("show", lambda a: a.show("svc1")),
    "status": ("show", lambda a: a.realm_status()),
    "policies": ("show", lambda a: a.policies_overview()),
    "show-policy": ("show", lambda a: a.policy("svc1")),
    "add-client": ("add", lambda a: a.add_client("newclient")),
    "add-service": ("add", lambda a: a.add_service("newservice")),
    "disable": ("disable", lambda a: a.disable("svc1")),
    "enable": ("disable", lambda a: a.enable("svc1")),
    "rotate": ("rotate", lambda a: a.rotate("svc1")),
    "delete": ("delete", lambda a: a.delete("c1")),
    "export-keytab": ("extract-keys", lambda a: a.export_keytab("svc1")),
    "set-principal-policy": ("modify", lambda a: a.set_policy("svc1", PolicyOverride(tgt_lifetime_s=600))),
    "set-default-policy": ("manage-policies", lambda a: a.set_policy(None, PolicyOverride(tgt_lifetime_s=600))),
    "audit": ("view-audit", lambda a: a.audit_events(AuditQuery())),
    "admins": ("manage-admins", lambda a: a.admins()),
    "roles": ("manage-admins", lambda a: a.roles()),
    "create-admin": ("manage-admins", lambda a: a.create_account("gina", PASSWORD, ["viewer"])),
    "delete-admin": ("manage-admins", lambda a: a.delete_account("frank")),
    "disable-admin": ("manage-admins", lambda a: a.set_account_disabled("erin", True)),
    "grant": ("manage-admins", lambda a: a.grant(f"carol@{REALM}", "viewer")),
    "revoke": ("manage-admins", lambda a: a.revoke(f"dave@{REALM}", "viewer")),
    "define-role": ("manage-admins", lambda a: a.define_role("auditor", ["view-audit"])),
    "delete-role": ("manage-admins", lambda a: a.delete_role("temp")),
    "onboarding": ("list", lambda a: a.onboarding()),
    "create-enrollment": ("rotate", lambda a: a.create_enrollment("c1")),
    "revoke-enrollment": ("rotate", lambda a: a.revoke_enrollment("AAAAAAAAAAAAAAAAAAAAAA")),
    "open-pairing": ("rotate", lambda a: a.open_pairing("c1")),
    "close-pairing": ("rotate", lambda a: a.close_pairing("c1")),
}

EVERYTHING = {"list", "show", "add", "modify", "disable", "delete", "rotate", "extract-keys", "manage-policies",
              "manage-admins", "view-audit"}
ALLOWED: dict[str, set[str]] = {
    "none": set(),
    "viewer": {"list", "show", "view-audit"},
    "operator": {"list", "show", "view-audit", "add", "modify", "disable", "rotate"},
    "admin": EVERYTHING - {"extract-keys"},
    "key-custodian": {"list", "show", "extract-keys"},
    "superadmin": EVERYTHING,
}


def prepare(root: AdminInterface) -> None:
    root.add_client("c1")
    root.add_service("svc1")
    root.create_account("erin", PASSWORD, ["viewer"])
    root.create_account("frank", PASSWORD, ["viewer"])
    root.grant(f"dave@{REALM}", "viewer")
    root.define_role("temp", ["list"])


ROOT = Actor("local:root", frozenset({"superadmin"}), "local", "cli")


def local_driver(role: str, fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock,
                 tmp_path: Path) -> AdminInterface:
    realm = make_realm(fake_redis, master_key, clock, tmp_path)
    operations = admin_state(realm.app).operations
    prepare(LocalAdmin(operations, ROOT))
    return LocalAdmin(operations, actor(None if role == "none" else role))


def api_driver(role: str, fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock,
               tmp_path: Path) -> AdminInterface:
    realm = make_realm(fake_redis, master_key, clock, tmp_path)
    root = LocalAdmin(admin_state(realm.app).operations, ROOT)
    prepare(root)
    boss = Principal("boss", REALM)
    keys = root.add_client("boss").keyset
    assert keys is not None
    if role != "none":
        root.grant(str(boss), role)
    return remote_admin(realm.app, boss, keys, tmp_path, clock)


DRIVERS = {"local": local_driver, "api": api_driver}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("role", sorted(ALLOWED))
@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_role_may_perform_exactly_the_operations_its_permissions_name(
        driver: str, role: str, operation: str, fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock,
        tmp_path: Path) -> None:
    admin = DRIVERS[driver](role, fake_redis, master_key, clock, tmp_path)
    permission, call = OPERATIONS[operation]
    if permission is None or permission in ALLOWED[role]:
        call(admin)
    else:
        with pytest.raises(PermissionDenied):
            call(admin)
