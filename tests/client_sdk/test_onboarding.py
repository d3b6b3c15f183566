"""``tally enroll`` and ``tally pair`` against the real KDC app, with HTTP mocked by ``responses``.

The KDC here is ``kdc.app.create_app`` on fakeredis (not the SDK tests'
in-process exchanges), so the device side meets the real enrollment and
pairing code; only the transport is simulated.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import requests
import responses
from click.testing import CliRunner, Result

from client_sdk import Client
from client_sdk.cli import client_commands
from client_sdk.onboarding import enroll, pair
from kdc.enrollment import EnrollmentTokens
from kdc.master_key import MasterKey
from kdc.pairing import Pairings
from kdc.state import kdc_state
from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.errors import EnrollmentInvalid, PairingFailed
from tally_protocol.keys import Key, Keyset
from tally_protocol.keytab import dump_keytab
from tally_protocol.messages.pairing import PairStart
from tally_protocol.pairing import PairingResponse, answer_pairing_start, seal_pairing_reply
from tally_protocol.principal import Principal
from tally_runtime.cli_errors import TallyGroup
from tally_runtime.keytab_file import read_keytab
from tests.kdc.conftest import REALM, FixedClock, Realm, make_realm
from tests.support.redis_proc import free_port

KDC_URL = "http://127.0.0.1:8750"
PATHS = ("/v1/as", "/v1/tgs", "/v1/as/params", "/v1/enroll", "/v1/pair/start", "/v1/pair/finish")
cli = TallyGroup("tally", commands=client_commands)


@pytest.fixture
def kdc(fake_redis: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Realm]:
    """The KDC app on the real clock (the CLI and SDK read it), answering every KDC URL through ``responses``."""
    realm = make_realm(fake_redis, MasterKey.generate(), FixedClock(float(int(time.time()))), tmp_path / "kdc")

    def forward(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        answer = realm.http.post(urlsplit(request.url or "").path, data=body, content_type="application/json")
        headers = {k: v for k, v in answer.headers.items() if k in ("Content-Type", "Retry-After")}
        return answer.status_code, headers, answer.data

    monkeypatch.setenv("TALLY_KDC_URL", KDC_URL)
    monkeypatch.setenv("TALLY_REALM", REALM)
    monkeypatch.setenv("TALLY_CCACHE", str(tmp_path / "ccache.json"))
    monkeypatch.chdir(tmp_path)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for path in PATHS:
            rsps.add_callback(responses.POST, KDC_URL + path, callback=forward)
        yield realm


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin)


def one_error_line(result: Result) -> str:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def token_for(kdc: Realm) -> str:
    return EnrollmentTokens(kdc_state(kdc.app).redis, REALM, kdc.db, kdc.clock).create(kdc.alice)


def code_for(kdc: Realm, attempts: int = 5) -> str:
    return Pairings(kdc_state(kdc.app).redis, REALM, kdc.db, kdc.clock).open(kdc.alice, attempts=attempts).display


def test_enroll_writes_a_0600_key_file_that_logs_in(kdc: Realm, tmp_path: Path) -> None:
    result = run("enroll", token_for(kdc), "--key-out", "device/alice.key")
    assert result.exit_code == 0, result.output
    path = tmp_path / "device" / "alice.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"tally login alice@{REALM} --key-file device/alice.key" in result.output
    assert Client(KDC_URL, f"alice@{REALM}", key_file=path).login().client == kdc.alice


def test_enroll_names_the_key_file_after_the_principal_and_never_overwrites(kdc: Realm, tmp_path: Path) -> None:
    (tmp_path / "alice.key").write_bytes(b"somebody's file")
    result = run("enroll", token_for(kdc))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "alice.key").read_bytes() == b"somebody's file"
    assert read_keytab(tmp_path / "alice.2.key")[0] == kdc.alice


def test_existing_key_out_is_refused_before_the_token_is_spent(kdc: Realm, tmp_path: Path) -> None:
    (tmp_path / "alice.key").write_bytes(b"old")
    token = token_for(kdc)
    assert "--force" in one_error_line(run("enroll", token, "--key-out", "alice.key"))
    assert run("enroll", token, "--key-out", "alice.key", "--force").exit_code == 0
    assert read_keytab(tmp_path / "alice.key")[1].versions == [2]


def test_second_enroll_is_one_error_line_with_its_code(kdc: Realm) -> None:
    token = token_for(kdc)
    assert run("enroll", token, "--key-out", "a.key").exit_code == 0
    result = run("enroll", token, "--key-out", "b.key")
    assert result.exit_code == 1
    assert "(ENROLLMENT_INVALID)" in one_error_line(result)


def test_mistyped_token_fails_before_the_kdc_is_asked(kdc: Realm) -> None:
    token = token_for(kdc)
    assert "MALFORMED_MESSAGE" in one_error_line(run("enroll", token[:-1] + "1"))
    assert run("enroll", token).exit_code == 0  # nothing was spent


def test_enroll_sdk_raises_the_typed_refusal(kdc: Realm) -> None:
    token = token_for(kdc)
    assert enroll(KDC_URL, token)[0] == kdc.alice
    with pytest.raises(EnrollmentInvalid):
        enroll(KDC_URL, token)


def test_pair_writes_a_key_file_that_logs_in(kdc: Realm, tmp_path: Path) -> None:
    result = run("pair", "alice", "--code", code_for(kdc))
    assert result.exit_code == 0, result.output
    assert Client(KDC_URL, f"alice@{REALM}", key_file=tmp_path / "alice.key").login().client == kdc.alice


def test_pair_prompts_for_the_code(kdc: Realm, tmp_path: Path) -> None:
    result = run("pair", f"alice@{REALM}", "--key-out", "k.key", stdin=code_for(kdc) + "\n")
    assert result.exit_code == 0, result.output
    assert read_keytab(tmp_path / "k.key")[0] == kdc.alice


def test_pair_with_a_wrong_code_is_one_error_line_and_writes_nothing(kdc: Realm, tmp_path: Path) -> None:
    code = code_for(kdc).replace(" ", "")
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    assert "(PAIRING_FAILED)" in one_error_line(run("pair", "alice", "--code", wrong))
    assert not (tmp_path / "alice.key").exists()


def test_pair_sdk_raises_the_typed_refusal(kdc: Realm) -> None:
    with pytest.raises(PairingFailed):
        pair(KDC_URL, kdc.alice, "12345678")  # no pairing is open


def _field(request: requests.PreparedRequest, name: str) -> bytes:
    body = request.body if isinstance(request.body, bytes) else str(request.body).encode()
    value = json.loads(body)[name]
    assert isinstance(value, str)
    return b64decode(value)


def _answer(name: str, message: bytes) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps({name: b64encode(message)}).encode()


def test_pair_refuses_a_kdc_that_cannot_prove_the_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An impostor KDC runs SPAKE2 with a guess of its own and sends a key of its choosing.
    monkeypatch.chdir(tmp_path)
    runs: list[PairingResponse] = []
    alice = Principal("alice", REALM)

    def start(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        message = PairStart.from_bytes(_field(request, "pair_start"))
        runs.append(answer_pairing_start(message, "00000000", realm=REALM, pairing_id=bytes(16), rng=os.urandom))
        return _answer("pair_challenge", runs[-1].challenge.to_bytes())

    def finish(request: requests.PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        keytab = dump_keytab(alice, Keyset([Key(bytes(32), 9)]))
        reply = seal_pairing_reply(runs[-1].session_key, runs[-1].transcript, keytab, nonce=os.urandom(12))
        return _answer("pair_rep", reply.to_bytes())

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, KDC_URL + "/v1/pair/start", callback=start)
        rsps.add_callback(responses.POST, KDC_URL + "/v1/pair/finish", callback=finish)
        result = run("pair", f"alice@{REALM}", "--code", "1234 5678", "--kdc", KDC_URL)
    assert "SECURITY WARNING" in one_error_line(result)
    assert not (tmp_path / "alice.key").exists()


def test_unreachable_kdc_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("enroll", "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA", "--kdc", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 3, result.output
    assert "KDC_UNREACHABLE" in one_error_line(result)


def test_no_kdc_url_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert "--kdc" in one_error_line(run("pair", f"alice@{REALM}", "--code", "12345678"))
