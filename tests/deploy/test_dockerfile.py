"""deploy/Dockerfile: slim, a non-root user, a health check, no secret copied in (parsed: no engine here)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from tests.deploy.compose_local import DEPLOY

ROOT = DEPLOY.parent


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(word.upper(), rest.strip()) for word, _, rest in
            (line.partition(" ") for line in lines if line and not line.startswith("#"))]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (op, _) in enumerate(steps) if op == "FROM")
    return steps[last_from:]


def test_every_stage_is_built_on_a_slim_python_image() -> None:
    bases = [args.split()[0] for op, args in instructions() if op == "FROM"]
    assert bases and all(re.fullmatch(r"python:3\.\d+-slim(-\w+)?", base) for base in bases), bases


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [args for op, args in final_stage() if op == "USER"]
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0") and int(user) >= 1000
    created = " ".join(args for op, args in final_stage() if op == "RUN")
    assert f"--uid {user}" in created


def test_the_health_check_asks_the_server_for_healthz() -> None:
    [check] = [args for op, args in final_stage() if op == "HEALTHCHECK"]
    assert "--interval=" in check and "--timeout=" in check
    assert "http://127.0.0.1:8080/healthz" in check and "CMD" in check


def test_the_entrypoint_is_tally_and_the_default_command_a_kdc() -> None:
    [entrypoint] = [json.loads(args) for op, args in final_stage() if op == "ENTRYPOINT"]
    [command] = [json.loads(args) for op, args in final_stage() if op == "CMD"]
    assert entrypoint == ["tally"] and command[:2] == ["kdc", "serve"]


def test_only_the_packages_and_the_server_settings_are_copied_in() -> None:
    sources = [word for op, args in instructions() if op == "COPY" and "--from=" not in args
               for word in args.split()[:-1]]
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert sorted(sources) == sorted(["pyproject.toml", "README.md", "deploy/gunicorn.conf.py",
                                      *(p.rstrip("*") for p in packages)])


def test_no_secret_is_baked_into_the_image() -> None:
    for op, args in instructions():
        if op in ("ENV", "ARG", "LABEL"):
            assert not re.search(r"(?i)password|secret|token|_key\b|keytab", args), args
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    ignore = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ignore[0] == "**"  # everything is excluded first, then the sources let in
    assert ignore[-2:] == ["**/*.key", "**/*.keytab"]  # last: no later line lets a key back in
    assert not any(line.startswith(("!deploy/secrets", "!deploy/tls", "!deploy/data")) for line in ignore)


def test_every_copied_path_exists() -> None:
    for op, args in instructions():
        if op == "COPY" and "--from=" not in args:
            for source in args.split()[:-1]:
                assert Path(ROOT / source).exists(), source
