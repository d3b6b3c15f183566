"""``tally kdc init`` and ``tally admin ...`` through click's test runner."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from kdc.cli import admin_group, kdc_group
from kdc.master_key import MasterKey, create_master_key_file, load_master_key_file
from kdc.principal_db import PrincipalDB
from tally_protocol.crypto import derive_password_key
from tally_protocol.principal import Principal
from tally_runtime.keytab_file import read_keytab
from tests.kdc.conftest import REALM, cheap_params


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TALLY_REALM", REALM)
    monkeypatch.setenv("TALLY_MASTER_KEY_FILE", str(tmp_path / "master.key"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(group: Any, store: redis.Redis, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(group, list(args), input=input,
                              obj={"redis_client": store, "password_params": cheap_params})


@pytest.fixture
def initialised(env: Path, fake_redis: redis.Redis) -> redis.Redis:
    result = run(kdc_group, fake_redis, "init", "--realm", REALM)
    assert result.exit_code == 0, result.output
    return fake_redis


def db_of(store: redis.Redis, env: Path) -> PrincipalDB:
    return PrincipalDB(store, REALM, load_master_key_file(env / "master.key"), password_params=cheap_params)


def one_error_line(result: Result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_init_writes_a_0600_master_key_and_creates_the_realm(env: Path, real_redis: redis.Redis) -> None:
    result = run(kdc_group, real_redis, "init", "--realm", REALM)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((env / "master.key").stat().st_mode) == 0o600
    assert str(env / "master.key") in result.output and f"krbtgt/{REALM}@{REALM}" in result.output
    assert "warning" not in result.output
    assert db_of(real_redis, env).get(f"krbtgt/{REALM}").kvnos == [1]


def test_init_with_the_embedded_store_warns_it_is_not_persistent(env: Path) -> None:
    # The embedded store is shared by the whole process: a realm no other test uses.
    result = CliRunner().invoke(kdc_group, ["init", "--realm", "EMBEDDED-INIT.TEST"])
    assert result.exit_code == 0 and "non-persistent" in result.stderr


def test_init_refuses_an_existing_realm(initialised: redis.Redis, env: Path) -> None:
    (env / "master.key").unlink()
    assert "already exists" in one_error_line(run(kdc_group, initialised, "init", "--realm", REALM))
    assert not (env / "master.key").exists()


def test_init_refuses_an_existing_master_key_file(env: Path, fake_redis: redis.Redis) -> None:
    (env / "master.key").write_bytes(b"precious")
    assert "refusing to overwrite" in one_error_line(run(kdc_group, fake_redis, "init", "--realm", REALM))
    assert (env / "master.key").read_bytes() == b"precious"


def test_init_with_an_unreachable_store_writes_no_master_key(env: Path, down_redis: redis.Redis) -> None:
    result = run(kdc_group, down_redis, "init", "--realm", REALM)
    assert "STORE_UNAVAILABLE" in one_error_line(result) and result.exit_code == 3
    assert not (env / "master.key").exists()


def test_init_refuses_a_bad_realm_name(env: Path, fake_redis: redis.Redis) -> None:
    assert "invalid realm" in one_error_line(run(kdc_group, fake_redis, "init", "--realm", "lower.case"))


def test_add_client_writes_a_0600_key_file_usable_as_keytab(initialised: redis.Redis, env: Path) -> None:
    result = run(admin_group, initialised, "add-client", "alice", "--key-out", "alice.key")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE((env / "alice.key").stat().st_mode) == 0o600
    principal, keys = read_keytab(env / "alice.key")
    assert principal == Principal("alice", REALM)
    assert db_of(initialised, env).current_key("alice").material == keys.current.material
    assert keys.current.material.hex() not in result.output


def test_add_client_refuses_to_overwrite_a_key_file_and_adds_nothing(initialised: redis.Redis, env: Path) -> None:
    (env / "alice.key").write_bytes(b"keep")
    assert "refusing to overwrite" in one_error_line(
        run(admin_group, initialised, "add-client", "alice", "--key-out", "alice.key"))
    assert db_of(initialised, env).find("alice") is None


def test_add_client_with_password_from_stdin(initialised: redis.Redis, env: Path) -> None:
    result = run(admin_group, initialised, "add-client", "bob", "--password", input="correct horse\n")
    assert result.exit_code == 0, result.output
    db = db_of(initialised, env)
    assert db.current_key("bob").material == derive_password_key("correct horse", db.password_params("bob"))
    assert "correct horse" not in result.output


def test_add_client_with_password_prompts_twice_on_a_terminal(initialised: redis.Redis, env: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tally_runtime.cli_input.interactive", lambda: True)
    result = run(admin_group, initialised, "add-client", "bob", "--password", input="s3cret\ns3cret\n")
    assert result.exit_code == 0, result.output
    assert result.output.count("Password") == 1 and "Repeat for confirmation" in result.output
    assert "s3cret" not in result.output
    db = db_of(initialised, env)
    assert db.current_key("bob").material == derive_password_key("s3cret", db.password_params("bob"))


def test_mismatched_password_confirmation_adds_nothing(initialised: redis.Redis, env: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tally_runtime.cli_input.interactive", lambda: True)
    result = run(admin_group, initialised, "add-client", "bob", "--password", input="one\ntwo\n")
    assert result.exit_code != 0 and "do not match" in result.output
    assert db_of(initialised, env).find("bob") is None


def test_add_client_needs_exactly_one_key_source(initialised: redis.Redis) -> None:
    assert run(admin_group, initialised, "add-client", "alice").exit_code == 2
    assert run(admin_group, initialised, "add-client", "alice", "--password", "--key-out", "x").exit_code == 2


def test_empty_password_is_refused(initialised: redis.Redis) -> None:
    assert "empty password" in one_error_line(run(admin_group, initialised, "add-client", "bob", "--password",
                                                   input="\n"))


def test_add_service_writes_a_keytab(initialised: redis.Redis, env: Path) -> None:
    result = run(admin_group, initialised, "add-service", "api", "--keytab", "api.keytab")
    assert result.exit_code == 0, result.output
    principal, keys = read_keytab(env / "api.keytab")
    assert principal == Principal("api", REALM) and keys.versions == [1]
    assert stat.S_IMODE((env / "api.keytab").stat().st_mode) == 0o600


def test_list_and_show(initialised: redis.Redis) -> None:
    run(admin_group, initialised, "add-client", "alice", "--key-out", "alice.key")
    run(admin_group, initialised, "add-client", "bob", "--password", input="pw\n")
    run(admin_group, initialised, "add-service", "api", "--keytab", "api.keytab")
    listing = run(admin_group, initialised, "list")
    assert listing.exit_code == 0
    rows = [line.split() for line in listing.stdout.splitlines()]
    assert rows == [["NAME", "KIND", "STATUS", "KVNOS"], [f"alice@{REALM}", "client", "enabled", "1"],
                    [f"api@{REALM}", "service", "enabled", "1"], [f"bob@{REALM}", "client", "enabled", "1"],
                    [f"kadmin/admin@{REALM}", "service", "enabled", "1"],
                    [f"krbtgt/{REALM}@{REALM}", "tgs", "enabled", "1"]]
    shown = run(admin_group, initialised, "show", "bob").output
    assert "kind:         client" in shown and "password (argon2id" in shown
    assert "random key" in run(admin_group, initialised, "show", "alice").output


def test_disable_and_enable(initialised: redis.Redis) -> None:
    run(admin_group, initialised, "add-client", "alice", "--key-out", "alice.key")
    assert run(admin_group, initialised, "disable", "alice").exit_code == 0
    assert "status:       disabled" in run(admin_group, initialised, "show", "alice").output
    assert run(admin_group, initialised, "enable", "alice").exit_code == 0
    assert "status:       enabled" in run(admin_group, initialised, "show", "alice").output


def test_rotate_service_rewrites_the_keytab_with_old_versions(initialised: redis.Redis, env: Path) -> None:
    run(admin_group, initialised, "add-service", "api", "--keytab", "api.keytab")
    _, before = read_keytab(env / "api.keytab")
    result = run(admin_group, initialised, "rotate", "api", "--keytab", "api.keytab")
    assert result.exit_code == 0, result.output
    _, after = read_keytab(env / "api.keytab")
    assert after.versions == [1, 2] and after.get(1).material == before.get(1).material
    assert stat.S_IMODE((env / "api.keytab").stat().st_mode) == 0o600
    assert [p.name for p in env.iterdir() if p.name.endswith(".tmp")] == []


def test_rotate_client_key_file(initialised: redis.Redis, env: Path) -> None:
    run(admin_group, initialised, "add-client", "alice", "--key-out", "alice.key")
    assert run(admin_group, initialised, "rotate", "alice", "--key-out", "alice.key").exit_code == 0
    _, keys = read_keytab(env / "alice.key")
    assert keys.versions == [2]
    assert db_of(initialised, env).current_key("alice").material == keys.current.material


def test_rotate_password_client(initialised: redis.Redis, env: Path) -> None:
    run(admin_group, initialised, "add-client", "bob", "--password", input="old\n")
    assert run(admin_group, initialised, "rotate", "bob", "--password", input="new\n").exit_code == 0
    db = db_of(initialised, env)
    assert db.current_key("bob").material == derive_password_key("new", db.password_params("bob"))


def test_rotate_with_the_wrong_option_for_the_kind_is_a_usage_error(initialised: redis.Redis) -> None:
    run(admin_group, initialised, "add-service", "api", "--keytab", "api.keytab")
    assert run(admin_group, initialised, "rotate", "api").exit_code == 2
    assert run(admin_group, initialised, "rotate", f"krbtgt/{REALM}", "--keytab", "tgs.keytab").exit_code == 2
    assert run(admin_group, initialised, "rotate", f"krbtgt/{REALM}").exit_code == 0


def test_export_keytab_for_services_only(initialised: redis.Redis, env: Path) -> None:
    run(admin_group, initialised, "add-service", "api", "--keytab", "api.keytab")
    run(admin_group, initialised, "rotate", "api", "--keytab", "api.keytab")
    assert run(admin_group, initialised, "export-keytab", "api", "--keytab", "copy.keytab").exit_code == 0
    assert read_keytab(env / "copy.keytab")[1].versions == [1, 2]
    run(admin_group, initialised, "add-client", "alice", "--key-out", "alice.key")
    assert "only service keytabs" in one_error_line(
        run(admin_group, initialised, "export-keytab", "alice", "--keytab", "a.keytab"))


def test_delete_with_yes_and_with_confirmation(initialised: redis.Redis, env: Path) -> None:
    run(admin_group, initialised, "add-client", "alice", "--key-out", "alice.key")
    run(admin_group, initialised, "add-client", "bob", "--key-out", "bob.key")
    assert run(admin_group, initialised, "delete", "alice", "--yes").exit_code == 0
    assert run(admin_group, initialised, "delete", "bob", input="n\n").exit_code == 1
    assert run(admin_group, initialised, "delete", "bob", input="y\n").exit_code == 0
    assert [r.principal.name for r in db_of(initialised, env).list()] == ["kadmin/admin", f"krbtgt/{REALM}"]


def test_unknown_principal_is_one_line_and_non_zero(initialised: redis.Redis) -> None:
    for command in ("show", "disable", "enable", "rotate"):
        assert "no principal nobody@EXAMPLE.TEST" in one_error_line(run(admin_group, initialised, command, "nobody"))


def test_bad_name_is_one_line_and_non_zero(initialised: redis.Redis) -> None:
    assert "INVALID_PRINCIPAL" in one_error_line(run(admin_group, initialised, "add-service", "bad name",
                                                     "--keytab", "x.keytab"))


def test_missing_master_key_file_is_one_line(env: Path, fake_redis: redis.Redis) -> None:
    PrincipalDB(fake_redis, REALM, MasterKey.generate()).init_realm()
    assert "master key file" in one_error_line(run(admin_group, fake_redis, "list"))


def test_uninitialised_realm_is_one_line(env: Path, fake_redis: redis.Redis) -> None:
    create_master_key_file(env / "master.key")
    assert "kdc init" in one_error_line(run(admin_group, fake_redis, "list"))


def test_wrong_master_key_file_is_one_line(initialised: redis.Redis, env: Path) -> None:
    (env / "master.key").unlink()
    create_master_key_file(env / "master.key")
    assert "does not belong" in one_error_line(run(admin_group, initialised, "list"))


def test_realm_is_discovered_when_the_store_holds_exactly_one(initialised: redis.Redis,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TALLY_REALM")
    assert f"krbtgt/{REALM}" in run(admin_group, initialised, "list").output


def test_no_realm_anywhere_is_one_line(env: Path, fake_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TALLY_REALM")
    assert "TALLY_REALM" in one_error_line(run(admin_group, fake_redis, "list"))


def test_every_command_has_help() -> None:
    for group in (kdc_group, admin_group):
        assert CliRunner().invoke(group, ["--help"]).exit_code == 0
        for name in group.commands:
            result = CliRunner().invoke(group, [name, "--help"])
            assert result.exit_code == 0 and "Usage" in result.output
