"""``tally admin revoke / revoke-ticket / purge-keys / rotate --delay`` and ``tally kdc rotate-master-key``."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import redis

from kdc.cli import admin_group, kdc_group
from kdc.master_key import load_master_key_file
from kdc.revocation import RevocationList
from tally_protocol.principal import Principal
from tally_runtime.keytab_file import read_keytab
from tally_runtime.settings import Settings
from tests.kdc.conftest import REALM
from tests.kdc.test_cli import db_of, env, initialised, one_error_line, run  # noqa: F401  (fixtures)

ALICE = Principal("alice", REALM)


@pytest.fixture
def provisioned(initialised: redis.Redis) -> redis.Redis:  # noqa: F811
    for args in (("add-client", "alice", "--key-out", "alice.key"), ("add-service", "api", "--keytab", "api.keytab")):
        assert run(admin_group, initialised, *args).exit_code == 0
    return initialised


def test_revoke_refuses_the_principals_earlier_tickets(provisioned: redis.Redis) -> None:
    result = run(admin_group, provisioned, "revoke", "alice")
    assert result.exit_code == 0, result.output
    assert "revoked" in result.output
    assert RevocationList(provisioned, REALM).is_revoked(ALICE, int(time.time()) - 1, bytes(16))


def test_revoke_of_an_unknown_principal_is_one_error_line(provisioned: redis.Redis) -> None:
    assert "NOT_FOUND" in one_error_line(run(admin_group, provisioned, "revoke", "nobody"))


def test_revoke_ticket_takes_the_hex_id_of_the_audit_event(provisioned: redis.Redis) -> None:
    ticket_id = bytes(range(16))
    result = run(admin_group, provisioned, "revoke-ticket", ticket_id.hex(), "--until", str(int(time.time()) + 60))
    assert result.exit_code == 0, result.output
    assert RevocationList(provisioned, REALM).is_revoked(ALICE, int(time.time()), ticket_id)


@pytest.mark.parametrize("ticket_id", ["xyz", "00" * 15])
def test_a_malformed_ticket_id_is_one_error_line(provisioned: redis.Redis, ticket_id: str) -> None:
    assert "hex digits" in one_error_line(run(admin_group, provisioned, "revoke-ticket", ticket_id))


def test_rotate_with_a_delay_writes_the_pending_version_to_the_keytab(provisioned: redis.Redis, env: Path) -> None:  # noqa: F811
    result = run(admin_group, provisioned, "rotate", "api", "--keytab", "api.keytab", "--delay", "600")
    assert result.exit_code == 0, result.output
    assert "pending" in result.output
    assert read_keytab(env / "api.keytab")[1].versions == [1, 2]
    record = db_of(provisioned, env).get("api")
    assert record.active(time.time()).kvno == 1


def test_the_realm_default_delay_applies_to_services(provisioned: redis.Redis, env: Path,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_NEW_SERVICE_KEY_DELAY_S", "300")
    assert Settings.from_env().new_service_key_delay_s == 300
    assert run(admin_group, provisioned, "rotate", "api", "--keytab", "api.keytab").exit_code == 0
    assert run(admin_group, provisioned, "rotate", "alice", "--key-out", "alice.key").exit_code == 0
    db = db_of(provisioned, env)
    assert db.get("api").active(time.time()).kvno == 1
    assert db.get("alice").active(time.time()).kvno == 2


def test_purge_keys_reports_what_it_dropped(provisioned: redis.Redis) -> None:
    assert run(admin_group, provisioned, "rotate", "api", "--keytab", "api.keytab").exit_code == 0
    result = run(admin_group, provisioned, "purge-keys")
    assert result.exit_code == 0 and "0 expired key versions purged from the realm" in result.output
    assert "api@EXAMPLE.TEST" in run(admin_group, provisioned, "purge-keys", "api").output


def test_rotate_master_key_then_finish(provisioned: redis.Redis, env: Path) -> None:  # noqa: F811
    result = run(kdc_group, provisioned, "rotate-master-key")
    assert result.exit_code == 0, result.output
    assert "version 2 added" in result.output
    assert re.search(r"(\d+) of \1 principals re-wrapped", result.output), result.output
    assert load_master_key_file(env / "master.key").kvnos == [1, 2]
    result = run(kdc_group, provisioned, "rotate-master-key", "--finish")
    assert result.exit_code == 0, result.output
    assert load_master_key_file(env / "master.key").kvnos == [2]
    assert db_of(provisioned, env).current_key("alice")


def test_finish_before_the_rewrap_is_one_error_line(provisioned: redis.Redis, env: Path) -> None:  # noqa: F811
    assert run(kdc_group, provisioned, "rotate-master-key", "--prepare").exit_code == 0
    assert "POLICY_REFUSED" in one_error_line(run(kdc_group, provisioned, "rotate-master-key", "--finish"))
    assert load_master_key_file(env / "master.key").kvnos == [1, 2]


def test_a_second_run_continues_instead_of_adding_a_version(provisioned: redis.Redis, env: Path) -> None:  # noqa: F811
    assert run(kdc_group, provisioned, "rotate-master-key", "--prepare").exit_code == 0
    result = run(kdc_group, provisioned, "rotate-master-key")
    assert "continuing the rotation to master key version 2" in result.output
    assert load_master_key_file(env / "master.key").kvnos == [1, 2]


@pytest.mark.parametrize("command", [("revoke", "--help"), ("revoke-ticket", "--help"), ("purge-keys", "--help")])
def test_every_key_command_has_help(command: tuple[str, str]) -> None:
    from click.testing import CliRunner

    assert CliRunner().invoke(admin_group, list(command)).exit_code == 0
    assert CliRunner().invoke(kdc_group, ["rotate-master-key", "--help"]).exit_code == 0
