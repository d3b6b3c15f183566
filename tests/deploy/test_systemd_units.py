"""deploy/systemd: the KDC and relying-service units verify, and keep their hardening and their credentials."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kdc.serve import GRACEFUL_TIMEOUT_S
from tests.deploy.compose_local import DEPLOY, tally_context

UNITS = DEPLOY / "systemd"
INSTALLED_TALLY = "/opt/tally/bin/tally"

HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
    "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "CapabilityBoundingSet": "", "SystemCallFilter": "@system-service", "KillSignal": "SIGTERM", "DynamicUser": "yes",
}


def directives(unit: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) of every line: systemd allows a key many times (LoadCredential=, Environment=)."""
    section, found = "", []
    for line in unit.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def values(unit: Path, key: str) -> list[str]:
    return [v for s, k, v in directives(unit) if s == "Service" and k == key]


@pytest.fixture(params=["tally-kdc.service", "tally-service@.service"])
def unit(request: pytest.FixtureRequest) -> Path:
    return UNITS / str(request.param)


def test_systemd_analyze_verifies_both_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # .ci/run installs it: verify is systemd's own reading of the units
        pytest.fail("systemd-analyze is not installed: apt-get install -y systemd")
    tally = Path(sys.executable).parent / "tally"  # the installed path would not exist here
    for source, name in (("tally-kdc.service", "tally-kdc.service"), ("tally-service@.service",
                                                                      "tally-service@api.service")):
        (tmp_path / name).write_text((UNITS / source).read_text().replace(INSTALLED_TALLY, str(tally)))
    result = subprocess.run([analyze, "verify", str(tmp_path / "tally-kdc.service"),
                             str(tmp_path / "tally-service@api.service")], capture_output=True, text=True,
                            check=False, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "tally-" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_each_unit_keeps_the_hardening_directives(unit: Path) -> None:
    for key, expected in HARDENING.items():
        assert values(unit, key) and values(unit, key)[0] == expected, key


def test_secrets_come_as_credentials_and_settings_point_at_their_copies(unit: Path) -> None:
    credentials = {v.split(":", 1)[0]: v.split(":", 1)[1] for v in values(unit, "LoadCredential")}
    assert all(source.startswith("/etc/tally/") for source in credentials.values())
    pointed = [v.split("=", 1)[1].removeprefix("%d/") for v in values(unit, "Environment") if "=%d/" in v]
    exec_start = values(unit, "ExecStart")[0]
    pointed += re.findall(r"%d/(\S+)", exec_start)
    assert pointed and set(pointed) == set(credentials)
    for setting in (v.split("=", 1)[0] for v in values(unit, "Environment")):
        if re.search(r"PASSWORD|SECRET|KEY", setting):
            assert setting.endswith("_FILE"), setting  # never a secret in the unit itself


def test_the_stop_timeout_outlasts_the_graceful_timeout(unit: Path) -> None:
    assert int(values(unit, "TimeoutStopSec")[0]) > GRACEFUL_TIMEOUT_S


def test_exec_start_is_a_tally_server_command_the_cli_accepts(unit: Path) -> None:
    argv = values(unit, "ExecStart")[0].split()
    assert argv[0] == INSTALLED_TALLY
    args = [re.sub(r"\$\{\w+\}", "8751", a).replace("%d", "/run/credentials/x") for a in argv[1:]]
    params = tally_context(args).params
    assert params["host"] == "127.0.0.1"  # behind the local proxy


def test_the_kdc_unit_loads_the_master_key_and_the_service_unit_its_keytab() -> None:
    kdc = values(UNITS / "tally-kdc.service", "LoadCredential")
    service = values(UNITS / "tally-service@.service", "LoadCredential")
    assert "master.key:/etc/tally/master.key" in kdc
    assert "keytab:/etc/tally/keytabs/%i.keytab" in service
