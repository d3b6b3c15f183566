"""deploy/docker-compose.yml read as data, and its processes mapped onto this machine without containers.

There is no container engine here, so the tests run what each compose service runs (its command, its
environment, its mounted files) as a local process: every compose host name becomes 127.0.0.1 with a free
port per container port, every container path a host path (mounts and secrets), and each listening address
127.0.0.1.  Nothing else is changed, so a mistake in the compose file, the nginx configuration or the
mounted tally.toml shows up here.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from tally_cli.main import cli
from tests.support.redis_proc import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: The tally image runs `tally` (its ENTRYPOINT) with the service's command as arguments.
TALLY_IMAGE = "tallystick:local"
#: Where the tally image reads its configuration file when it is mounted (the default path).
CONFIG_IN_CONTAINER = "/etc/tally/tally.toml"


def load_compose() -> dict[str, Any]:
    """The compose file as `docker compose config` would see it: merge keys resolved, `$$` read as `$`."""
    with open(DEPLOY / "docker-compose.yml") as f:
        document = yaml.safe_load(f)
    assert isinstance(document, dict)
    return _interpolated(document)  # type: ignore[no-any-return]


def _interpolated(value: Any) -> Any:
    if isinstance(value, str):
        if "$" in value.replace("$$", ""):
            raise AssertionError(f"compose would substitute a variable in {value!r}: the file must not need any")
        return value.replace("$$", "$")
    if isinstance(value, dict):
        return {k: _interpolated(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolated(v) for v in value]
    return value


def tally_services(compose: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The services running the tally image (profiles such as `tools` included)."""
    return {name: s for name, s in compose["services"].items() if s.get("image") == TALLY_IMAGE}


def tally_context(argv: list[str]) -> click.Context:
    """Parse ``tally ARGV`` as the CLI would (types, ranges, required options) without running it."""
    command: click.Command = cli
    i = 0
    while isinstance(command, click.Group):
        sub = command.get_command(click.Context(command), argv[i])
        if sub is None:
            raise click.UsageError(f"no such command: tally {' '.join(argv[:i + 1])}")
        command, i = sub, i + 1
    return command.make_context("tally " + " ".join(argv[:i]), list(argv[i:]))


def container_ports(service: Mapping[str, Any]) -> list[int]:
    """The ports a service listens on inside its container (expose, or the container side of ports)."""
    ports = [int(p) for p in service.get("expose", [])]
    ports += [int(str(p).rsplit(":", 1)[-1]) for p in service.get("ports", [])]
    return ports


def volume_mounts(service: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(host path relative to deploy/, container path) of each bind mount."""
    mounts = []
    for entry in service.get("volumes", []):
        source, target, *_ = str(entry).split(":")
        mounts.append((source, target))
    return mounts


@dataclass
class LocalStack:
    """Ports, paths and files for running the compose services in ``workdir``."""

    compose: dict[str, Any]
    workdir: Path
    ports: dict[tuple[str, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, service in self.compose["services"].items():
            for port in container_ports(service):
                self.ports[(name, port)] = free_port()
        (self.workdir / "secrets").mkdir(mode=0o700, exist_ok=True)

    def port(self, service: str, container_port: int) -> int:
        return self.ports[(service, container_port)]

    def host_path(self, source: str) -> Path:
        """Where a compose-relative host path lives for this run.

        What the operator makes (./secrets, ./tls, ./data) is in ``workdir``; a repository file (a
        configuration) is its rewritten copy in ``workdir/mapped`` (``prepare`` writes them).
        """
        relative = source.removeprefix("./")
        if relative.split("/")[0] in ("secrets", "tls", "data"):
            return self.workdir / relative
        return self.workdir / "mapped" / relative

    def path_map(self) -> dict[str, str]:
        """Container path -> host path, for every mount and secret of every service."""
        mapping = {target: str(self.host_path(source)) for service in self.compose["services"].values()
                   for source, target in volume_mounts(service)}
        for name, secret in self.compose.get("secrets", {}).items():
            mapping[f"/run/secrets/{name}"] = str(self.host_path(secret["file"]))
        return mapping

    def rewrite(self, text: str) -> str:
        """``text`` with compose host names and container paths replaced by this machine's."""
        for (service, container_port), port in self.ports.items():
            text = re.sub(rf"\b{re.escape(service)}:{container_port}\b", f"127.0.0.1:{port}", text)
        for container, host in sorted(self.path_map().items(), key=lambda kv: -len(kv[0])):
            text = re.sub(rf"(?<![\w/.-]){re.escape(container)}(?![\w.-])", host, text)
        return text

    def prepare(self) -> None:
        """Write the rewritten copy of every repository file a service mounts; its `listen` ports made local."""
        for name, service in self.compose["services"].items():
            for source, _ in volume_mounts(service):
                copy = self.host_path(source)
                if not copy.is_relative_to(self.workdir / "mapped"):
                    continue
                text = self.rewrite((DEPLOY / source.removeprefix("./")).read_text())
                for port in container_ports(service):
                    text = re.sub(rf"\blisten {port}\b", f"listen 127.0.0.1:{self.port(name, port)}", text)
                copy.parent.mkdir(parents=True, exist_ok=True)
                copy.write_text(text)
                copy.chmod(0o644)

    def command(self, name: str) -> list[str]:
        """The service's command with its own listening address and port made local."""
        service = self.compose["services"][name]
        args = [str(a) for a in service["command"]]
        own = {str(p): str(self.port(name, p)) for p in container_ports(service)}
        for i, arg in enumerate(args[:-1]):
            if arg in ("--host", "--bind") and args[i + 1] == "0.0.0.0":
                args[i + 1] = "127.0.0.1"
            if arg == "--port" and args[i + 1] in own:
                args[i + 1] = own[args[i + 1]]
        return [self._local_script(a, own) if " " in a else self.rewrite(a) for a in args]

    def _local_script(self, script: str, own: Mapping[str, str]) -> str:
        """A `sh -c` script (redis's): its listening flags made local like a command's, then paths and hosts."""
        script = re.sub(r"(--bind|--host) 0\.0\.0\.0\b", r"\1 127.0.0.1", script)
        script = re.sub(r"--port (\d+)", lambda m: f"--port {own.get(m.group(1), m.group(1))}", script)
        return self.rewrite(script)

    def environment(self, name: str) -> dict[str, str]:
        """This machine's environment (no TALLY_*), then the service's, mapped; TALLY_CONFIG for the mount."""
        service = self.compose["services"][name]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLY_", "PROMETHEUS_"))}
        env.update({k: self.rewrite(str(v)) for k, v in (service.get("environment") or {}).items()})
        mounts = {target: source for source, target in volume_mounts(service)}
        if CONFIG_IN_CONTAINER in mounts and "TALLY_CONFIG" not in env:
            env["TALLY_CONFIG"] = str(self.host_path(mounts[CONFIG_IN_CONTAINER]))
        env["HOME"] = str(self.workdir)
        return env

    def tally_argv(self, name: str, *extra: str) -> list[str]:
        """How to run the service's `tally` (or ``extra`` instead of its command, like `docker compose run`)."""
        return [sys.executable, "-m", "tally_cli", *(list(extra) or self.command(name))]

    def nginx_main_config(self, proxy: str = "proxy") -> Path:
        """The nginx image's own nginx.conf in miniature: an http block including the mounted conf.d file."""
        mounts = {target: source for source, target in volume_mounts(self.compose["services"][proxy])}
        site = self.host_path(mounts["/etc/nginx/conf.d/default.conf"])
        run = self.workdir / "nginx"
        run.mkdir(exist_ok=True)
        temp = " ".join(f"{kind}_temp_path {run / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                          "scgi"))
        main = run / "nginx.conf"
        main.write_text(f"worker_processes 1;\npid {run / 'nginx.pid'};\nerror_log {run / 'error.log'} info;\n"
                        f"events {{ worker_connections 256; }}\n"
                        f"http {{\n  access_log {run / 'access.log'};\n  {temp}\n  include {site};\n}}\n")
        return main
