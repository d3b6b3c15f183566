"""``tally diagnose`` on the command line: inputs, exit codes, text and JSON reports."""

from __future__ import annotations

import json
import time
from pathlib import Path

import redis
from click.testing import CliRunner

from client_sdk.ccache import CredentialCache
from tally_cli.main import cli
from tally_protocol.binding import RequestBinding
from tally_protocol.messages import parse_authorization
from tally_protocol.verify import verify_ap_request
from tally_runtime.keytab_file import write_keytab
from tally_runtime.replay_cache import RedisReplayCache
from tests.relying_service.memory_realm import HOST, MemoryRealm
from tests.support.redis_proc import RedisProcess


def keytab_for(realm: MemoryRealm, tmp_path: Path) -> Path:
    return write_keytab(tmp_path / "api.keytab", realm.service, realm.service_keys)


def test_a_good_header_exits_zero_with_every_check_passing(realm: MemoryRealm, tmp_path: Path) -> None:
    now = time.time()  # the command reads this machine's clock
    header = realm.authorize(realm.service_ticket(now), now=now).authorization
    result = CliRunner().invoke(cli, ["diagnose", header, "--keytab", str(keytab_for(realm, tmp_path)),
                                      "--method", "GET", "--url", f"https://{HOST}/whoami"])
    assert result.exit_code == 0, result.output
    assert "result: every check passes" in result.output


def test_a_proxy_rewrite_exits_one_with_the_cause_and_fix_in_the_text(realm: MemoryRealm, tmp_path: Path) -> None:
    now = time.time()
    header = realm.authorize(realm.service_ticket(now), path="/api/whoami", now=now).authorization
    (tmp_path / "h.txt").write_text(f"Authorization: {header}\n")
    result = CliRunner().invoke(cli, ["diagnose", f"@{tmp_path / 'h.txt'}", "--keytab",
                                      str(keytab_for(realm, tmp_path)), "--host", f"{HOST}:443", "--path", "/whoami"])
    assert result.exit_code == 1
    assert "FAIL binding: BINDING_MISMATCH" in result.output and "strips the prefix '/api'" in result.output
    assert "fix: " in result.output and "TALLY_PUBLIC_URL" in result.output
    assert "result: refused (binding)" in result.output


def test_json_from_stdin_reports_clock_skew_with_the_server_time(realm: MemoryRealm, tmp_path: Path) -> None:
    now = time.time()
    header = realm.authorize(realm.service_ticket(now), now=now).authorization
    result = CliRunner().invoke(cli, ["diagnose", "--keytab", str(keytab_for(realm, tmp_path)), "--json",
                                      "--server-time", str(int(now) + 3600)], input=header)
    report = json.loads(result.output)
    assert result.exit_code == 1 and report["ok"] is False and report["view"] == "service"
    skew = next(c for c in report["checks"] if c["check"] == "clock_skew")
    assert skew["status"] == "fail" and "CLOCK_SKEW" in skew["summary"] and "NTP" in skew["fix"]


def test_a_garbage_header_is_one_clear_line_and_a_non_zero_exit(realm: MemoryRealm, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["diagnose", "Tally %%%", "--keytab", str(keytab_for(realm, tmp_path))])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: the header does not decode")
    assert "Traceback" not in result.output


def test_the_client_view_reads_the_default_credential_cache(realm: MemoryRealm, tmp_path: Path) -> None:
    now = time.time()
    cred = realm.service_ticket(now)
    cache = CredentialCache(tmp_path / "ccache.json")
    cache.initialize(realm.client, None)
    cache.put(cred)
    header = realm.authorize(cred, "POST", "/echo", b"hi", now=now).authorization
    result = CliRunner().invoke(cli, ["diagnose", header], env={"TALLY_CCACHE": str(cache.path)})
    assert result.exit_code == 0, result.output
    assert "(client view)" in result.output and f"the client bound POST {HOST}/echo" in result.output
    assert cred.session_key.hex() not in result.output


def test_keytab_and_ccache_together_are_refused(realm: MemoryRealm, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["diagnose", "Tally x", "--keytab", str(keytab_for(realm, tmp_path)),
                                      "--ccache", str(tmp_path / "c.json")])
    assert result.exit_code == 1 and "not both" in result.output


def test_replay_cache_lookup_reports_a_used_header_and_leaves_the_cache_alone(
        realm: MemoryRealm, tmp_path: Path, redis_server: RedisProcess, real_redis: redis.Redis) -> None:
    now = time.time()
    header = realm.authorize(realm.service_ticket(now), now=now).authorization
    args = ["diagnose", header, "--keytab", str(keytab_for(realm, tmp_path)), "--replay-cache", "--json"]
    env = {"TALLY_REDIS_URL": redis_server.url}
    first = CliRunner().invoke(cli, args, env=env)
    assert first.exit_code == 0, first.output
    assert real_redis.dbsize() == 0
    verified = verify_ap_request(parse_authorization(header), service=realm.service, keyset=realm.service_keys,
                                 binding=RequestBinding.for_http("GET", HOST, "/whoami", b""), now=now)
    cache = RedisReplayCache(real_redis)
    cache.seed()
    assert cache.claim(verified.replay_key, verified.replay_ttl_ms, ctime=verified.authenticator.ctime,
                       max_skew_s=300)
    second = CliRunner().invoke(cli, args, env=env)
    replay = next(c for c in json.loads(second.output)["checks"] if c["check"] == "replay")
    assert second.exit_code == 1 and replay["status"] == "fail"


def test_replay_cache_lookup_without_redis_is_one_clear_line(realm: MemoryRealm, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["diagnose", "Tally x", "--keytab", str(keytab_for(realm, tmp_path)),
                                      "--replay-cache"])
    assert result.exit_code == 1 and "needs TALLY_REDIS_URL" in result.output
