"""tally login / tickets / get / logout against the mocked realm, through CliRunner."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import click
import pytest
import responses
from click.testing import CliRunner, Result

from client_sdk import Client, CredentialCache
from client_sdk.cli import client_commands
from tally_runtime.cli_errors import TallyGroup
from tests.client_sdk.realm import BOB, BOB_PASSWORD, KDC_URL, REALM, SERVICE_URL, TGS, FakeClock, Realm

cli = TallyGroup("tally", commands=client_commands)


@pytest.fixture
def clock() -> FakeClock:
    """The CLI reads the real clock, so the realm starts at the real time (no timing is asserted)."""
    return FakeClock(float(int(time.time())))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, ccache_path: Path, mocked: responses.RequestsMock) -> Path:
    monkeypatch.setenv("TALLY_KDC_URL", KDC_URL)
    monkeypatch.setenv("TALLY_CCACHE", str(ccache_path))
    return ccache_path


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin)


def login_alice(key_file: Path) -> Result:
    result = run("login", "alice@EXAMPLE.TEST", "--key-file", str(key_file))
    assert result.exit_code == 0, result.output
    return result


def test_every_command_has_help() -> None:
    for command in client_commands:
        assert run(command.name or "", "--help").exit_code == 0


def test_client_commands_are_click_commands() -> None:
    assert {c.name for c in client_commands} == {"login", "tickets", "get", "logout", "enroll", "pair"}
    assert all(isinstance(c, click.Command) for c in client_commands)


def test_login_with_key_file_caches_the_tgt_and_prints_the_expiry(env: Path, alice_key_file: Path) -> None:
    result = login_alice(alice_key_file)
    tgt = CredentialCache(env).get(TGS)
    assert tgt is not None and stat.S_IMODE(env.stat().st_mode) == 0o600
    expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(tgt.endtime))
    assert f"Logged in as alice@EXAMPLE.TEST: ticket valid until {expiry}" in result.output


def test_login_with_password_from_stdin(env: Path) -> None:
    result = run("login", "bob@EXAMPLE.TEST", "--password", stdin=BOB_PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert CredentialCache(env).client == BOB


def test_login_bare_name_takes_the_realm_from_the_environment(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_REALM", REALM)
    assert run("login", "bob", stdin=BOB_PASSWORD + "\n").exit_code == 0


def test_login_bare_name_without_realm_is_one_line_error(env: Path) -> None:
    result = run("login", "bob", stdin=BOB_PASSWORD + "\n")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: principal 'bob' has no realm: write bob@REALM or set TALLY_REALM (INVALID_PRINCIPAL)"]


def test_login_kdc_option_overrides_the_environment(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                    alice_key_file: Path) -> None:
    monkeypatch.setenv("TALLY_KDC_URL", "http://127.0.0.1:1")
    result = run("login", "alice@EXAMPLE.TEST", "--key-file", str(alice_key_file), "--kdc", KDC_URL)
    assert result.exit_code == 0, result.output


def test_wrong_password_is_one_line_and_nonzero(env: Path) -> None:
    result = run("login", "bob@EXAMPLE.TEST", "--password", stdin="wrong\n")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: pre-authentication failed (PREAUTH_FAILED)"]


def test_login_without_a_kdc_url_is_one_line_error(ccache_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   alice_key_file: Path) -> None:
    monkeypatch.setenv("TALLY_CCACHE", str(ccache_path))
    result = run("login", "alice@EXAMPLE.TEST", "--key-file", str(alice_key_file))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: no KDC URL: pass --kdc or set TALLY_KDC_URL (CONFIGURATION_ERROR)"]


def test_unreachable_kdc_exits_3(env: Path, alice_key_file: Path) -> None:
    result = run("login", "alice@EXAMPLE.TEST", "--key-file", str(alice_key_file), "--kdc", "http://127.0.0.1:1")
    assert result.exit_code == 3 and len(result.output.strip().splitlines()) == 1


def test_key_file_and_password_together_are_a_usage_error(env: Path, alice_key_file: Path) -> None:
    result = run("login", "alice@EXAMPLE.TEST", "--key-file", str(alice_key_file), "--password")
    assert result.exit_code == 2 and "not both" in result.output


def test_tickets_lists_the_tgt_and_service_tickets(env: Path, alice_key_file: Path) -> None:
    login_alice(alice_key_file)
    assert run("get", f"{SERVICE_URL}/whoami", "--service", "api").exit_code == 0
    lines = run("tickets").output.splitlines()
    assert lines[:3] == [f"Credential cache: {env}", "Principal: alice@EXAMPLE.TEST", f"KDC: {KDC_URL}"]
    assert lines[3].split() == ["Service", "Start", "Expires", "Renew", "until", "Flags"]
    assert lines[4].startswith(str(TGS)) and "initial,pre-authenticated,renewable,forward-secret" in lines[4]
    assert lines[5].startswith("api@EXAMPLE.TEST") and "(expired)" not in lines[5]


def test_tickets_marks_expired_credentials(env: Path, realm: Realm, alice_key_file: Path, clock: FakeClock) -> None:
    clock.now -= 86400  # logged in yesterday: the 10-hour TGT is over
    Client(KDC_URL, key_file=alice_key_file, ccache=env, clock=clock).login()
    assert "(expired)" in run("tickets").output.splitlines()[4]


def test_tickets_with_no_cache_says_so(env: Path) -> None:
    result = run("tickets")
    assert result.exit_code == 0 and "No credentials cached" in result.output


def test_tickets_with_a_corrupt_cache_is_one_line_error(env: Path) -> None:
    env.parent.mkdir(parents=True)
    env.write_text("{")
    env.chmod(0o600)
    result = run("tickets")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "corrupt" in result.output


def test_get_prints_the_verified_body(env: Path, alice_key_file: Path) -> None:
    login_alice(alice_key_file)
    result = run("get", f"{SERVICE_URL}/whoami", "--service", "api@EXAMPLE.TEST", "-v", "-H", "X-Request-Id: cli-1")
    assert result.exit_code == 0
    assert result.stdout == '{"principal": "alice@EXAMPLE.TEST"}'
    assert result.stderr.splitlines() == ["HTTP 200 OK", "request id cli-1"]


def test_get_names_the_request_id_when_the_service_answers_an_error(env: Path, alice_key_file: Path) -> None:
    login_alice(alice_key_file)
    result = run("get", f"{SERVICE_URL}/nowhere", "--service", "api", "-H", "X-Request-Id: quote-me")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("the service answered HTTP 404 Not Found (request id quote-me)")


def test_get_refuses_a_malformed_request_id_in_one_line(env: Path, alice_key_file: Path) -> None:
    login_alice(alice_key_file)
    result = run("get", f"{SERVICE_URL}/whoami", "--service", "api", "-H", "X-Request-Id: two words")
    assert result.exit_code == 1 and "X-Request-Id must be 1-64 characters" in result.output


def test_get_posts_data_with_headers(env: Path, alice_key_file: Path) -> None:
    login_alice(alice_key_file)
    result = run("get", f"{SERVICE_URL}/echo", "-s", "api", "-d", '{"amount": 5}', "-H", "Content-Type: application/json")
    assert result.exit_code == 0 and result.stdout == '{"amount": 5}'


def test_get_app_error_prints_body_and_exits_nonzero(env: Path, alice_key_file: Path) -> None:
    login_alice(alice_key_file)
    result = run("get", f"{SERVICE_URL}/nothing", "-s", "api")
    assert result.exit_code == 1 and "HTTP 404" in result.stderr


def test_get_mutual_auth_failure_is_loud_and_nonzero(env: Path, realm: Realm, alice_key_file: Path) -> None:
    login_alice(alice_key_file)
    realm.alter_body = True
    result = run("get", f"{SERVICE_URL}/whoami", "-s", "api")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [(
        "Error: SECURITY WARNING: http://127.0.0.1:8751 did not prove it is api; its response was discarded: "
        "response was altered after the service sent it (MUTUAL_AUTH_FAILED)")]


def test_get_store_outage_is_one_line_and_exits_3(env: Path, realm: Realm, alice_key_file: Path) -> None:
    login_alice(alice_key_file)
    realm.store_down = True
    result = run("get", f"{SERVICE_URL}/whoami", "-s", "api")
    assert result.exit_code == 3
    assert result.stderr.strip().splitlines() == ["Error: backing store unavailable (STORE_UNAVAILABLE)"]


def test_get_without_login_asks_for_tally_login(env: Path) -> None:
    result = run("get", f"{SERVICE_URL}/whoami", "-s", "api")
    assert result.exit_code == 1 and "tally login" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_get_with_a_bad_header_is_a_usage_error(env: Path) -> None:
    assert run("get", f"{SERVICE_URL}/whoami", "-s", "api", "-H", "nocolon").exit_code == 2


def test_logout_destroys_the_cache_and_says_what_was_removed(env: Path, alice_key_file: Path) -> None:
    login_alice(alice_key_file)
    result = run("logout")
    assert result.exit_code == 0 and not env.exists()
    assert result.output.splitlines() == [
        f"Removed {env} (1 credential(s) of alice@EXAMPLE.TEST)", f"  {TGS}"]


def test_logout_without_a_cache_says_nothing_to_remove(env: Path) -> None:
    result = run("logout")
    assert result.exit_code == 0 and "nothing to remove" in result.output
