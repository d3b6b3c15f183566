"""``tally admin`` administration commands, locally (kadmin.local) and ``--remote`` through the admin API."""

from __future__ import annotations

import getpass
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from client_sdk.ccache import CredentialCache
from client_sdk.client import Client
from kdc.admin.acl import Actor
from kdc.admin.extension import admin_state
from kdc.admin.interface import LocalAdmin
from kdc.cli import admin_group, kdc_group
from kdc.master_key import MasterKey
from tally_protocol.principal import Principal
from tally_runtime.keytab_file import read_keytab, write_keytab
from tests.kdc.admin.wsgi_transport import BASE_URL, session_for
from tests.kdc.conftest import REALM, FixedClock, Realm, cheap_params, make_realm

ROOT = Actor("local:root", frozenset({"superadmin"}), "local", "cli")
PASSWORD = "a long admin password"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TALLY_REALM", REALM)
    monkeypatch.setenv("TALLY_CCACHE", str(tmp_path / "ccache.json"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def live(env: Path, fake_redis: redis.Redis, master_key: MasterKey) -> Realm:
    """The KDC app on a clock that follows real time (the CLI's SDK client uses the real clock)."""
    return make_realm(fake_redis, master_key, FixedClock(time.time()), env)


def local(realm: Realm, master_key: MasterKey, *args: str, input: str | None = None) -> Result:
    obj = {"redis_client": admin_state(realm.app).operations.store, "master_key": master_key,
           "password_params": cheap_params}
    return CliRunner().invoke(admin_group, list(args), input=input, obj=obj)


def remote(realm: Realm, *args: str, input: str | None = None, url: str = BASE_URL) -> Result:
    obj = {"remote_session": session_for(realm.app)}
    return CliRunner().invoke(admin_group, ["--remote", url, *args], input=input, obj=obj)


def login_as(realm: Realm, env: Path, name: str, role: str | None) -> Principal:
    """``tally login`` as a new client ``name`` holding ``role``."""
    root = LocalAdmin(admin_state(realm.app).operations, ROOT)
    keys = root.add_client(name).keyset
    assert keys is not None
    principal = Principal(name, REALM)
    if role is not None:
        root.grant(str(principal), role)
    key_file = env / f"{name}.key"
    write_keytab(key_file, principal, keys)
    Client(BASE_URL, principal, key_file=key_file, ccache=CredentialCache(env / "ccache.json"),
           session=session_for(realm.app)).login()
    return principal


def error_line(result: Result) -> str:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def test_kdc_init_creates_the_admin_service_principal(env: Path, fake_redis: redis.Redis) -> None:
    obj: dict[str, Any] = {"redis_client": fake_redis}
    result = CliRunner().invoke(kdc_group, ["init", "--realm", REALM], obj=obj,
                                env={"TALLY_MASTER_KEY_FILE": str(env / "master.key")})
    assert "kadmin/admin@EXAMPLE.TEST created" in ok(result)


def test_ensure_admin_service_is_idempotent(live: Realm, master_key: MasterKey) -> None:
    assert "already present" in ok(local(live, master_key, "ensure-admin-service"))
    live.db.delete("kadmin/admin")
    assert "created" in ok(local(live, master_key, "ensure-admin-service"))


def test_create_admin_bootstraps_an_account_that_can_log_in(live: Realm, master_key: MasterKey) -> None:
    result = local(live, master_key, "create-admin", "root", "--role", "superadmin", input=PASSWORD + "\n")
    assert ok(result) and result.stdout.strip() == "admin account root created with role(s) superadmin"
    account = admin_state(live.app).operations.accounts.authenticate("root", PASSWORD, "127.0.0.1")
    assert account.roles == {"superadmin"}


def test_grant_revoke_and_admins_listing(live: Realm, master_key: MasterKey) -> None:
    ok(local(live, master_key, "create-admin", "ops", "--role", "viewer", input=PASSWORD + "\n"))
    assert "alice@EXAMPLE.TEST now holds operator" in ok(local(live, master_key, "grant", f"alice@{REALM}",
                                                                "operator"))
    assert "ops now holds operator, viewer" in ok(local(live, master_key, "grant", "ops", "operator"))
    listing = ok(local(live, master_key, "admins"))
    assert "ops" in listing and "operator,viewer" in listing and f"alice@{REALM}" in listing
    assert "no role" in ok(local(live, master_key, "revoke-role", f"alice@{REALM}", "operator"))


def test_local_actions_are_audited_as_the_os_user(live: Realm, master_key: MasterKey) -> None:
    ok(local(live, master_key, "disable", "api"))
    out = ok(local(live, master_key, "audit", "--event", "admin.principal.disable"))
    assert f"actor=local:{getpass.getuser()}" in out and "target=api@EXAMPLE.TEST" in out and "success" in out


def test_set_policy_shows_what_is_set_and_what_applies(live: Realm, master_key: MasterKey) -> None:
    out = ok(local(live, master_key, "set-policy", "alice", "--tgt-lifetime", "600"))
    assert "policy of alice@EXAMPLE.TEST" in out
    assert [line.split() for line in out.splitlines() if line.startswith("tgt_lifetime_s")] == [
        ["tgt_lifetime_s", "600", "600"]]
    assert "tgt_lifetime_s" in ok(local(live, master_key, "policies"))


def test_a_bad_policy_value_is_one_error_line(live: Realm, master_key: MasterKey) -> None:
    assert "INVALID_REQUEST" in error_line(local(live, master_key, "set-policy", "--tgt-lifetime", "5"))


def test_status_names_the_key_versions(live: Realm, master_key: MasterKey) -> None:
    out = ok(local(live, master_key, "status"))
    assert "tgs key:" in out and "kvno 1" in out and "kadmin/admin present" in out


def test_custom_roles_are_defined_listed_and_deleted(live: Realm, master_key: MasterKey) -> None:
    assert "role auditor grants list, view-audit" in ok(local(live, master_key, "define-role", "auditor",
                                                              "list", "view-audit"))
    assert "auditor" in ok(local(live, master_key, "roles"))
    ok(local(live, master_key, "delete-role", "auditor"))
    assert "auditor" not in ok(local(live, master_key, "roles"))


# -- --remote --------------------------------------------------------------------------


@pytest.mark.parametrize("command", [("list",), ("show", "api"), ("policy",), ("policy", "alice"), ("policies",),
                                     ("roles",), ("admins",), ("list", "--kind", "service")])
def test_remote_output_is_identical_to_local_output(live: Realm, env: Path, master_key: MasterKey,
                                                    command: tuple[str, ...]) -> None:
    login_as(live, env, "boss", "superadmin")
    remote_result, local_result = remote(live, *command), local(live, master_key, *command)
    ok(remote_result)
    ok(local_result)
    assert remote_result.stdout == local_result.stdout


def test_remote_add_service_writes_the_keytab_the_kdc_holds(live: Realm, env: Path) -> None:
    login_as(live, env, "boss", "admin")
    out = ok(remote(live, "add-service", "web", "--keytab", "web.keytab"))
    assert "service web@EXAMPLE.TEST added" in out
    principal, keyset = read_keytab(env / "web.keytab")
    assert principal == Principal("web", REALM)
    assert keyset.current.material == live.db.current_key("web").material


def test_remote_rotation_without_extract_keys_keeps_the_older_versions_of_the_keytab(live: Realm,
                                                                                     env: Path) -> None:
    login_as(live, env, "op", "operator")
    write_keytab(env / "api.keytab", live.api, live.api_keys)
    out = ok(remote(live, "rotate", "api", "--keytab", "api.keytab", "--delay", "0"))
    assert "holds versions 1, 2" in out
    _, keyset = read_keytab(env / "api.keytab")
    assert [k.material for k in keyset] == [k.material for k in live.db.keyset("api")]


def test_remote_refusal_for_a_missing_permission_is_one_error_line(live: Realm, env: Path) -> None:
    login_as(live, env, "vic", "viewer")
    assert "PERMISSION_DENIED" in error_line(remote(live, "delete", "api", "--yes"))
    assert live.db.find("api") is not None


def test_remote_refuses_cleartext_http_beyond_loopback(live: Realm, env: Path) -> None:
    login_as(live, env, "boss", "superadmin")
    assert "https" in error_line(remote(live, "list", url="http://kdc.example.com"))


def test_remote_without_a_login_is_one_error_line(live: Realm) -> None:
    assert "tally login" in error_line(remote(live, "list"))


def test_local_only_commands_refuse_remote(live: Realm, env: Path) -> None:
    login_as(live, env, "boss", "superadmin")
    assert "only locally" in error_line(remote(live, "ensure-admin-service"))


def test_remote_whoami_names_the_logged_in_principal(live: Realm, env: Path) -> None:
    login_as(live, env, "kc", "key-custodian")
    out = ok(remote(live, "whoami"))
    assert "kc@EXAMPLE.TEST" in out and "extract-keys" in out
