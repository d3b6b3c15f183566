"""End to end onboarding: real KDC (gunicorn), real redis-server, the real `tally` CLI on both sides."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.realm import REALM, Deployment

pytestmark = pytest.mark.e2e

TOKEN = re.compile(r"^  ([A-Z2-7]{4}(?:-[A-Z2-7]{4}){7})$", re.MULTILINE)
CODE = re.compile(r"^  ([0-9]{4} [0-9]{4})$", re.MULTILINE)


def _kdc_log(d: Deployment) -> str:
    return (d.workdir / "kdc.log").read_text(errors="replace")


def _audit(d: Deployment, event: str) -> list[dict[str, object]]:
    events = []
    for line in _kdc_log(d).splitlines():
        if line.startswith("{") and f'"event":"{event}"' in line:
            events.append(json.loads(line))
    return events


def _whoami_after_login(d: Deployment, name: str, key_file: str) -> object:
    d.tally("login", name, "--key-file", key_file, "--kdc", d.kdc_url)
    return json.loads(d.tally("get", f"{d.api_url}/whoami", "--service", "api").stdout)


def _new_token(d: Deployment, name: str) -> str:
    out = d.tally("admin", "enroll", name, "--create", "--kdc", d.kdc_url).stdout
    match = TOKEN.search(out)
    assert match is not None, out
    assert f"tally enroll {match.group(1)} --kdc {d.kdc_url} --key-out {name}.key" in out
    return match.group(1)


def _new_code(d: Deployment, name: str, *args: str) -> str:
    out = d.tally("admin", "pair", name, "--create", "--kdc", d.kdc_url, *args).stdout
    match = CODE.search(out)
    assert match is not None, out
    return match.group(1)


def test_enrolled_device_logs_in_and_calls_the_service(deployment: Deployment) -> None:
    d = deployment
    token = _new_token(d, "carol")
    out = d.tally("enroll", token, "--kdc", d.kdc_url, "--key-out", "carol.key").stdout
    assert f"carol@{REALM} now has key version 2" in out
    assert _whoami_after_login(d, "carol", "carol.key") == {"principal": f"carol@{REALM}"}


def test_reused_token_fails_and_is_audited_as_possible_interception(deployment: Deployment) -> None:
    d = deployment
    token = _new_token(d, "frank")
    d.tally("enroll", token, "--kdc", d.kdc_url, "--key-out", "frank.key")
    again = d.tally("enroll", token, "--kdc", d.kdc_url, "--key-out", "frank-again.key", check=False)
    assert again.returncode == 1
    assert re.search(r"\(ENROLLMENT_INVALID\) \[request id [0-9a-f]{32}\]$", again.stderr.strip().splitlines()[-1])
    assert not (d.workdir / "frank-again.key").exists()
    flagged = [e for e in _audit(d, "enrollment.redeem") if e["outcome"] == "possible_interception"]
    assert [e["principal"] for e in flagged] == [f"frank@{REALM}"]
    assert token not in _kdc_log(d)


def test_paired_device_logs_in_and_calls_the_service(deployment: Deployment) -> None:
    d = deployment
    code = _new_code(d, "dave")
    out = d.tally("pair", "dave", "--code", code, "--kdc", d.kdc_url, "--key-out", "dave.key").stdout
    assert f"dave@{REALM} now has key version 2" in out
    assert _whoami_after_login(d, "dave", "dave.key") == {"principal": f"dave@{REALM}"}


def test_wrong_codes_exhaust_the_pairing(deployment: Deployment) -> None:
    d = deployment
    code = _new_code(d, "erin", "--attempts", "2")
    wrong = f"{(int(code.replace(' ', '')) + 1) % 10**8:08d}"
    for guess in (wrong, wrong, code):  # the right code comes after the attempts are spent
        result = d.tally("pair", "erin", "--code", guess, "--kdc", d.kdc_url, "--key-out", "erin.key", check=False)
        assert result.returncode == 1
        assert re.search(r"\(PAIRING_FAILED\) \[request id [0-9a-f]{32}\]$", result.stderr.strip().splitlines()[-1])
    assert not (d.workdir / "erin.key").exists()
    assert [e["principal"] for e in _audit(d, "pairing.close") if e["outcome"] == "exhausted"] == [f"erin@{REALM}"]
    log = _kdc_log(d)
    assert code not in log and f'"{code.replace(" ", "")}"' not in log  # never as text (timestamps hold digits)
