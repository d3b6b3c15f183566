"""``tally admin enroll`` and ``tally admin pair`` through click's test runner."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import pytest
import redis
from click.testing import CliRunner, Result

from kdc.cli import admin_group
from kdc.enrollment import EnrollmentTokens
from kdc.master_key import MasterKey
from kdc.pairing import Pairings
from kdc.principal_db import PrincipalDB
from tally_protocol.enrollment import finish_enrollment, parse_token, start_enrollment
from tally_protocol.pairing import confirm_pairing, finish_pairing, start_pairing
from tally_protocol.principal import Principal
from tests.kdc.conftest import REALM, cheap_params

ALICE = Principal("alice", REALM)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_REALM", REALM)
    monkeypatch.setenv("TALLY_KDC_URL", "http://127.0.0.1:8750")


@pytest.fixture
def realm_db(env: None, fake_redis: redis.Redis) -> PrincipalDB:
    realm_db = PrincipalDB(fake_redis, REALM, MasterKey.generate(), password_params=cheap_params)
    realm_db.init_realm()
    return realm_db


Admin = Callable[..., Result]


@pytest.fixture
def admin(realm_db: PrincipalDB, fake_redis: redis.Redis) -> Admin:
    """``tally admin ARGS`` on ``realm_db`` (``obj["db"]`` replaces the database the environment names)."""
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(admin_group, list(args), obj={"redis_client": fake_redis, "db": realm_db})

    return invoke


def one_error_line(result: Result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_enroll_create_prints_the_token_once_with_the_device_command(admin: Admin, realm_db: PrincipalDB,
                                                                     fake_redis: redis.Redis) -> None:
    result = admin("enroll", "alice", "--create")
    assert result.exit_code == 0, result.output
    token = re.search(r"^  ([A-Z2-7]{4}(?:-[A-Z2-7]{4}){7})$", result.output, re.MULTILINE)
    assert token is not None, result.output
    assert result.output.count(token.group(1)) == 2  # the token line and the device command
    assert f"tally enroll {token.group(1)} --kdc http://127.0.0.1:8750 --key-out alice.key" in result.output
    pending = start_enrollment(parse_token(token.group(1)), os.urandom(32))
    reply = EnrollmentTokens(fake_redis, REALM, realm_db).redeem(pending.request)
    assert finish_enrollment(pending, reply.to_bytes())[0] == ALICE


def test_enroll_an_existing_client_with_a_ttl(admin: Admin, realm_db: PrincipalDB) -> None:
    realm_db.add_client("alice")
    result = admin("enroll", "alice", "--ttl", "60", "--kdc", "https://kdc.example.test")
    assert result.exit_code == 0, result.output
    assert "--kdc https://kdc.example.test" in result.output


def test_enroll_of_a_service_is_one_error_line(admin: Admin, realm_db: PrincipalDB) -> None:
    realm_db.add_service("api")
    assert "only clients" in one_error_line(admin("enroll", "api"))


def test_enroll_create_of_an_existing_name_is_one_error_line(admin: Admin, realm_db: PrincipalDB) -> None:
    realm_db.add_client("alice")
    assert "ALREADY_EXISTS" in one_error_line(admin("enroll", "alice", "--create"))


def test_enroll_ttl_out_of_range_is_a_usage_error(admin: Admin) -> None:
    assert admin("enroll", "alice", "--ttl", "0").exit_code == 2


def test_pair_create_shows_the_code_once_and_the_device_command(admin: Admin, realm_db: PrincipalDB,
                                                                fake_redis: redis.Redis) -> None:
    result = admin("pair", "alice", "--create", "--attempts", "3")
    assert result.exit_code == 0, result.output
    match = re.search(r"^  ([0-9]{4} [0-9]{4})$", result.output, re.MULTILINE)
    assert match is not None, result.output
    code = match.group(1)
    assert "3 attempts" in result.output
    assert f"tally pair alice@{REALM} --code '{code}' --kdc http://127.0.0.1:8750 --key-out alice.key" in result.output
    pairings = Pairings(fake_redis, REALM, realm_db)
    device = start_pairing(ALICE, code, os.urandom)
    confirmed = confirm_pairing(device, pairings.start(device.start).to_bytes())
    assert finish_pairing(confirmed, pairings.finish(confirmed.finish).to_bytes())[0] == ALICE


def test_pair_of_an_unknown_name_is_one_error_line(admin: Admin) -> None:
    assert "NOT_FOUND" in one_error_line(admin("pair", "nobody"))


def test_enroll_and_pair_from_the_cli_are_audited_admin_actions(admin: Admin, realm_db: PrincipalDB,
                                                                fake_redis: redis.Redis) -> None:
    from kdc.admin.audit_log import AuditLog, AuditQuery

    assert admin("enroll", "alice", "--create").exit_code == 0
    assert admin("pair", "alice").exit_code == 0
    events = [r.to_dict()["event"] for r in AuditLog(fake_redis, REALM).query(AuditQuery(event="admin.")).records]
    assert "admin.enrollment.create" in events and "admin.pairing.open" in events
