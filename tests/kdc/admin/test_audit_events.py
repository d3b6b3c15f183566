"""Every admin action leaves one audit record (who, what, target, outcome, address, time), never a secret."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import redis

from kdc.admin.acl import Actor
from kdc.admin.audit_log import AuditQuery
from kdc.admin.interface import LocalAdmin
from kdc.admin.operations import AdminOperations
from tally_protocol.encoding import b64encode
from tally_protocol.errors import PermissionDenied
from tally_runtime.logs import AUDIT_LOGGER
from tests.kdc.admin.conftest import actor
from tests.kdc.admin.test_permission_matrix import OPERATIONS, PASSWORD, prepare
from tests.kdc.conftest import REALM, FixedClock

EVENTS = {
    "whoami": "admin.whoami", "list": "admin.principal.list", "show": "admin.principal.show",
    "status": "admin.status", "policies": "admin.policy.list", "show-policy": "admin.policy.show",
    "add-client": "admin.principal.add", "add-service": "admin.principal.add", "disable": "admin.principal.disable",
    "enable": "admin.principal.enable", "rotate": "admin.principal.rotate", "delete": "admin.principal.delete",
    "export-keytab": "admin.principal.export", "set-principal-policy": "admin.policy.set",
    "set-default-policy": "admin.policy.set", "audit": "admin.audit.query", "admins": "admin.admins.list",
    "roles": "admin.roles.list", "create-admin": "admin.account.create", "delete-admin": "admin.account.delete",
    "disable-admin": "admin.account.disable", "grant": "admin.role.grant", "revoke": "admin.role.revoke",
    "define-role": "admin.role.define", "delete-role": "admin.role.delete", "onboarding": "admin.onboarding.list",
    "create-enrollment": "admin.enrollment.create", "revoke-enrollment": "admin.enrollment.revoke",
    "open-pairing": "admin.pairing.open", "close-pairing": "admin.pairing.close",
}
TARGETS = {"show": f"svc1@{REALM}", "add-client": f"newclient@{REALM}", "rotate": f"svc1@{REALM}",
           "delete": f"c1@{REALM}", "export-keytab": f"svc1@{REALM}", "create-admin": "gina",
           "grant": f"carol@{REALM}", "define-role": "auditor"}


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(json.dumps(getattr(record, "fields", {}), default=str))


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    lines = Lines()
    logger = logging.getLogger(AUDIT_LOGGER)
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(lines)
    yield lines
    logger.removeHandler(lines)
    logger.setLevel(level)


def newest(ops: AdminOperations) -> dict[str, object]:
    return ops.audit_log.query(AuditQuery(limit=1)).records[0].entry


def test_every_operation_has_an_expected_event() -> None:
    assert set(EVENTS) == set(OPERATIONS)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_each_action_records_who_what_target_outcome_address_and_time(
        ops: AdminOperations, root: Actor, clock: FixedClock, operation: str) -> None:
    prepare(LocalAdmin(ops, root))
    clock.advance(60)
    OPERATIONS[operation][1](LocalAdmin(ops, root))
    entry = newest(ops)
    assert entry["event"] == EVENTS[operation] and entry["outcome"] == "success"
    assert (entry["actor"], entry["via"], entry["address"], entry["time"]) == ("local:root", "cli", "local",
                                                                               int(clock.now))
    assert entry.get("target") == TARGETS.get(operation, entry.get("target"))


def test_a_refused_permission_is_recorded_as_denied(ops: AdminOperations, root: Actor) -> None:
    prepare(LocalAdmin(ops, root))
    viewer = actor("viewer", name=f"vic@{REALM}")
    with pytest.raises(PermissionDenied):
        ops.delete(viewer, "c1")
    entry = newest(ops)
    assert (entry["event"], entry["outcome"], entry["actor"], entry["error"], entry["target"]) == (
        "admin.principal.delete", "denied", f"vic@{REALM}", "PERMISSION_DENIED", f"c1@{REALM}")


def test_a_failed_action_is_recorded_as_refused_with_its_code(ops: AdminOperations, root: Actor) -> None:
    with pytest.raises(Exception):  # noqa: B017 - any TallyError: the record is what this test is about
        ops.show(root, "ghost")
    entry = newest(ops)
    assert (entry["outcome"], entry["error"]) == ("refused", "NOT_FOUND")


def test_no_audit_record_or_log_line_holds_a_password_or_key(
        ops: AdminOperations, root: Actor, fake_redis: redis.Redis, log_lines: Lines) -> None:
    admin = LocalAdmin(ops, root)
    prepare(admin)
    secrets: list[str] = [PASSWORD, "client password 123", "rotated password 456"]
    for issued in (admin.add_client("k1"), admin.add_service("s1"), admin.rotate("s1"), admin.rotate("k1")):
        assert issued.keyset is not None
        secrets += [f(k.material) for k in issued.keyset for f in (bytes.hex, b64encode)]
    admin.add_client("p1", password="client password 123")
    admin.rotate("p1", password="rotated password 456")
    _, keyset = admin.export_keytab("s1")
    secrets += [f(k.material) for k in keyset for f in (bytes.hex, b64encode)]
    code = admin.open_pairing("k1")
    secrets += [admin.create_enrollment("k1"), code.code, code.display]
    for operation in sorted(OPERATIONS):
        try:
            OPERATIONS[operation][1](admin)
        except Exception:  # noqa: BLE001, S110 - some repeat on a changed state; only the records matter
            pass
    stored = json.dumps([json.loads(entry[b"e"]) for _, entry in fake_redis.xrange(ops.audit_log.key)])
    assert len(log_lines.messages) > 20
    for text in (stored, *log_lines.messages):
        for secret in secrets:
            assert secret not in text
