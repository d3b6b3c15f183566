"""Permissions and roles: the wildcard never means extract-keys, some keys never leave, no escalation."""

from __future__ import annotations

import pytest
import redis

from kdc.admin.acl import BUILTIN_ROLES, AccessControl, Actor, Permission, Role, RoleStore, unextractable
from tally_protocol.errors import AlreadyExists, InvalidRequest, NotFound, PermissionDenied
from tally_protocol.principal import Principal
from tests.kdc.admin.conftest import actor
from tests.kdc.conftest import REALM

ALL = set(Permission)


@pytest.fixture
def acl(fake_redis: redis.Redis) -> AccessControl:
    return AccessControl(RoleStore(fake_redis, REALM))


def test_permissions_are_the_eleven_named_operations() -> None:
    assert {str(p) for p in Permission} == {
        "list", "show", "add", "modify", "disable", "delete", "rotate", "extract-keys", "manage-policies",
        "manage-admins", "view-audit"}


def test_the_wildcard_grants_everything_but_extract_keys() -> None:
    wildcard = Role("everything", frozenset({"*"}))
    assert wildcard.effective == ALL - {Permission.EXTRACT_KEYS}
    assert not wildcard.grants(Permission.EXTRACT_KEYS)


def test_extract_keys_is_granted_only_by_name() -> None:
    assert Role("custodian", frozenset({"*", "extract-keys"})).grants(Permission.EXTRACT_KEYS)


@pytest.mark.parametrize(("role", "expected"), [
    ("viewer", {"list", "show", "view-audit"}),
    ("operator", {"list", "show", "view-audit", "add", "modify", "disable", "rotate"}),
    ("admin", {str(p) for p in Permission} - {"extract-keys"}),
    ("key-custodian", {"list", "show", "extract-keys"}),
    ("superadmin", {str(p) for p in Permission}),
])
def test_builtin_role_grants_exactly_its_permissions(role: str, expected: set[str]) -> None:
    assert {str(p) for p in BUILTIN_ROLES[role].effective} == expected


def test_superadmin_lists_every_permission_explicitly_rather_than_by_wildcard() -> None:
    assert BUILTIN_ROLES["superadmin"].permissions == frozenset(str(p) for p in Permission)


@pytest.mark.parametrize("name", [f"krbtgt/{REALM}", "krbtgt/OTHER.TEST", "kadmin/admin"])
@pytest.mark.parametrize("role", sorted(BUILTIN_ROLES))
def test_ticket_granting_and_admin_service_keys_are_never_extractable(acl: AccessControl, role: str,
                                                                      name: str) -> None:
    with pytest.raises(PermissionDenied, match="never leave the KDC"):
        acl.check(actor(role), Permission.EXTRACT_KEYS, Principal(name, REALM))


def test_other_service_keys_are_extractable_with_the_permission(acl: AccessControl) -> None:
    acl.check(actor("key-custodian"), Permission.EXTRACT_KEYS, Principal("api", REALM))
    assert not unextractable(Principal("kadmin/other", REALM))


def test_an_actor_without_roles_may_do_nothing(acl: AccessControl) -> None:
    for permission in Permission:
        with pytest.raises(PermissionDenied):
            acl.check(actor(None), permission)


def test_an_unknown_role_grants_nothing(acl: AccessControl) -> None:
    with pytest.raises(PermissionDenied, match="lacks the list permission"):
        acl.check(actor("no-such-role"), Permission.LIST)


def test_a_custom_role_from_the_store_grants_its_permissions(acl: AccessControl) -> None:
    acl.roles.define(Role("auditor", frozenset({"view-audit"})))
    acl.check(actor("auditor"), Permission.VIEW_AUDIT)
    with pytest.raises(PermissionDenied):
        acl.check(actor("auditor"), Permission.LIST)


def test_a_deleted_custom_role_stops_granting(acl: AccessControl) -> None:
    acl.roles.define(Role("auditor", frozenset({"view-audit"})))
    acl.roles.remove("auditor")
    with pytest.raises(PermissionDenied):
        acl.check(actor("auditor"), Permission.VIEW_AUDIT)
    with pytest.raises(NotFound):
        acl.roles.remove("auditor")


def test_builtin_roles_cannot_be_redefined_or_deleted(acl: AccessControl) -> None:
    with pytest.raises(AlreadyExists):
        acl.roles.define(Role("viewer", frozenset({"*"})))
    with pytest.raises(InvalidRequest):
        acl.roles.remove("superadmin")


@pytest.mark.parametrize("permissions", [{"list", "fly"}, set()])
def test_roles_with_unknown_or_no_permissions_are_refused(permissions: set[str]) -> None:
    with pytest.raises(InvalidRequest):
        Role("odd", frozenset(permissions))


@pytest.mark.parametrize("name", ["Admin", "with space", "x" * 33, ""])
def test_role_names_are_short_lowercase_words(name: str) -> None:
    with pytest.raises(InvalidRequest):
        Role(name, frozenset({"list"}))


@pytest.mark.parametrize("role", ["superadmin", "key-custodian"])
def test_admin_cannot_hand_out_a_role_with_extract_keys(acl: AccessControl, role: str) -> None:
    with pytest.raises(PermissionDenied, match="extract-keys"):
        acl.check_grantable(actor("admin"), BUILTIN_ROLES[role])


def test_admin_may_hand_out_roles_within_its_own_permissions(acl: AccessControl) -> None:
    for role in ("viewer", "operator", "admin"):
        acl.check_grantable(actor("admin"), BUILTIN_ROLES[role])


def test_handing_out_roles_needs_manage_admins(acl: AccessControl) -> None:
    with pytest.raises(PermissionDenied, match="manage-admins"):
        acl.check_grantable(actor("operator"), BUILTIN_ROLES["viewer"])


def test_permissions_of_several_roles_add_up(acl: AccessControl) -> None:
    both = Actor("x@EXAMPLE.TEST", frozenset({"viewer", "key-custodian"}), "127.0.0.1", "api")
    assert acl.permissions(both) == {Permission.LIST, Permission.SHOW, Permission.VIEW_AUDIT,
                                     Permission.EXTRACT_KEYS}
