"""deploy/docker-compose.yml keeps the deployment's invariants (read as data: no container engine here)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tally_cli.main import cli
from tally_runtime.config_file import read_config_file
from tally_runtime.settings import option_types
from tests.deploy.compose_local import (
    DEPLOY,
    TALLY_IMAGE,
    load_compose,
    tally_context,
    tally_services,
    volume_mounts,
)

COMPOSE = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
TALLY = tally_services(COMPOSE)
SERVERS = {n: s for n, s in TALLY.items() if "profiles" not in s}  # what `docker compose up` starts


def commands_starting(*words: str) -> list[str]:
    return [n for n, s in SERVERS.items() if [str(a) for a in s["command"][:len(words)]] == list(words)]


def mounted(service: str, target: str) -> str:
    return next(source for source, t in volume_mounts(SERVICES[service]) if t == target)


def test_two_kdcs_and_two_relying_services_run_the_tally_image() -> None:
    assert len(commands_starting("kdc", "serve")) == 2
    assert len(commands_starting("service", "serve")) == 2


def test_every_tally_command_is_one_the_cli_accepts() -> None:
    for name, service in TALLY.items():
        argv = [str(a) for a in service["command"]]
        if argv[0].startswith("-"):
            assert CliRunner().invoke(cli, argv).exit_code == 0, name
        else:
            tally_context(argv)  # raises click's UsageError / BadParameter for a wrong name, option or value


def test_every_server_listens_on_the_port_it_exposes_and_the_image_checks() -> None:
    healthcheck = (DEPLOY / "Dockerfile").read_text()
    for name in SERVERS:
        params = tally_context([str(a) for a in SERVERS[name]["command"]]).params
        assert params["host"] == "0.0.0.0" and [str(params["port"])] == SERVERS[name]["expose"], name
        assert f"http://127.0.0.1:{params['port']}/healthz" in healthcheck


def test_redis_keeps_an_append_only_file_on_a_mounted_volume() -> None:
    script = " ".join(SERVICES["redis"]["command"])
    conf = mounted("redis", "/usr/local/etc/redis/redis.conf")
    assert "redis-server /usr/local/etc/redis/redis.conf" in script
    assert re.search(r"^appendonly yes$", (DEPLOY / conf).read_text(), re.MULTILINE)
    assert "--dir /data" in script and mounted("redis", "/data").startswith("./data/")


def test_redis_takes_its_password_from_a_secret_on_standard_input() -> None:
    script = " ".join(SERVICES["redis"]["command"])
    assert "redis_password" in SERVICES["redis"]["secrets"]
    assert re.search(r"- <<EOF\s+requirepass \$\(cat /run/secrets/redis_password\)\s+EOF", script)
    assert "REDISCLI_AUTH" in " ".join(SERVICES["redis"]["healthcheck"]["test"])  # not -a on a command line


def test_every_tally_container_reads_the_redis_password_from_the_same_secret(tmp_path: Path) -> None:
    copy = tmp_path / "tally.toml"  # as checked out under any umask, then made 0644 as deploy/README.md says
    shutil.copy(DEPLOY / "compose" / "tally.toml", copy)
    copy.chmod(0o644)
    config = read_config_file(copy, option_types()).values
    assert config["TALLY_REDIS_PASSWORD_FILE"] == "/run/secrets/redis_password"
    assert config["TALLY_REDIS_URL"] == "redis://redis:6379/0"
    for name, service in TALLY.items():
        assert "redis_password" in service["secrets"], name
        assert mounted(name, "/etc/tally/tally.toml") == "./compose/tally.toml"


def test_the_kdcs_hold_the_master_key_and_the_ui_key_and_the_services_their_keytab() -> None:
    for name in commands_starting("kdc", "serve"):
        assert {"master_key", "admin_secret_key"} <= set(SERVERS[name]["secrets"])
    for name in commands_starting("service", "serve"):
        keytab = str(tally_context([str(a) for a in SERVERS[name]["command"]]).params["keytab"])
        assert keytab.startswith("/run/secrets/") and keytab.removeprefix("/run/secrets/") in SERVERS[name]["secrets"]


def test_no_secret_is_written_inline() -> None:
    for secret in COMPOSE["secrets"].values():
        assert set(secret) == {"file"} and secret["file"].startswith("./secrets/")
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|KEY|TOKEN", key):
                assert key.endswith("_FILE") and str(value).startswith(("/run/secrets/", "/secrets/")), (name, key)
    assert not re.search(r"requirepass\s+[^$\s]", (DEPLOY / "docker-compose.yml").read_text())
    assert not re.search(r"^\s*(requirepass|masterauth)\b", (DEPLOY / "redis" / "redis.conf").read_text(), re.MULTILINE)


def test_every_service_has_a_healthcheck() -> None:
    assert "HEALTHCHECK" in (DEPLOY / "Dockerfile").read_text()  # the tally image's, inherited
    for name, service in SERVICES.items():
        assert service.get("image") == TALLY_IMAGE or "healthcheck" in service, name


def test_the_servers_start_only_once_redis_is_healthy_and_the_proxy_once_they_are() -> None:
    for name in SERVERS:
        assert SERVERS[name]["depends_on"]["redis"]["condition"] == "service_healthy", name
    assert {n: d["condition"] for n, d in SERVICES["proxy"]["depends_on"].items()} == {
        n: "service_healthy" for n in SERVERS}


def test_only_the_proxy_publishes_ports_and_it_terminates_tls() -> None:
    assert [n for n, s in SERVICES.items() if s.get("ports")] == ["proxy"]
    assert "443:443" in SERVICES["proxy"]["ports"]
    site = (DEPLOY / mounted("proxy", "/etc/nginx/conf.d/default.conf")).read_text()
    assert re.search(r"listen 443 ssl;", site)
    for directive, target in (("ssl_certificate", "/etc/nginx/tls/server.crt"),
                              ("ssl_certificate_key", "/etc/nginx/tls/server.key")):
        assert f"{directive} {target};" in site and mounted("proxy", target).startswith("./tls/")


def test_the_proxy_routes_the_kdcs_and_both_services() -> None:
    site = (DEPLOY / mounted("proxy", "/etc/nginx/conf.d/default.conf")).read_text()
    for name in SERVERS:
        assert re.search(rf"server {name}:8080\b", site), name
    for prefix, upstream in (("/kdc/", "tally_kdc"), ("/api/", "tally_api"), ("/reports/", "tally_reports")):
        assert re.search(rf"location {prefix} {{\s+proxy_pass http://{upstream}/;", site), prefix


def test_the_servers_are_stopped_gracefully_within_their_grace_period() -> None:
    from kdc.serve import GRACEFUL_TIMEOUT_S

    for name, service in SERVERS.items():
        assert service["stop_signal"] == "SIGTERM"
        assert int(str(service["stop_grace_period"]).removesuffix("s")) > GRACEFUL_TIMEOUT_S, name


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_tally_containers_run_read_only_with_a_private_tmp(name: str) -> None:
    assert SERVERS[name]["read_only"] is True and SERVERS[name]["tmpfs"] == ["/tmp"]


def test_a_compose_client_validates_the_file_when_one_is_installed(tmp_path: Path) -> None:
    # No engine is needed for `config`. Compose v2 (`docker compose`) reads the file as it is; Debian's
    # docker-compose 1.29 predates the top-level `name:`, so it reads a copy without that one line.
    v2 = shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                   check=False).returncode == 0
    v1 = shutil.which("docker-compose")
    if not (v2 or v1):  # .ci/run installs Debian's docker-compose: without it this check would prove nothing
        pytest.fail("no compose client installed: apt-get install -y docker-compose")
    deploy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, deploy, ignore=shutil.ignore_patterns("secrets", "tls", "data"))
    for made in ("secrets/redis_password", "secrets/master.key", "secrets/admin_secret_key", "secrets/api.keytab",
                 "secrets/reports.keytab", "tls/server.crt", "tls/server.key"):
        (deploy / made).parent.mkdir(exist_ok=True)
        (deploy / made).touch()
    if not v2:
        text = (deploy / "docker-compose.yml").read_text()
        (deploy / "docker-compose.yml").write_text(re.sub(r"(?m)^name: .*\n", "", text))
    command = ["docker", "compose"] if v2 else ["docker-compose"]
    result = subprocess.run([*command, "-f", str(deploy / "docker-compose.yml"), "--profile", "tools", "config",
                             "--services"], capture_output=True, text=True, check=False, timeout=120, cwd=deploy)
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == set(SERVICES)
