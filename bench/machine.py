"""What the figures were measured on: CPU, cores, memory, and the versions of everything compared."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def _first_line(*args: str) -> str:
    try:
        result = subprocess.run(list(args), capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "absent"
    return (result.stdout or result.stderr).strip().splitlines()[0] if (result.stdout or result.stderr) else "?"


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def describe() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), "?")
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    from cryptography.hazmat.backends.openssl.backend import backend

    root = Path(__file__).resolve().parent.parent
    commit = _git(root, "rev-parse", "--short", "HEAD")
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {
        "cpu": f"{model}, {os.cpu_count()} cores",
        "memory": f"{mem_kib / 2**20:.0f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "tallystick": f"{commit or 'not a git checkout'}{' + uncommitted changes' if dirty else ''}",
        "cryptography": f"{_version('cryptography')} ({backend.openssl_version_text()})",
        "redis-server": _first_line("redis-server", "--version").split(" sha=")[0],
        "redis-py": _version("redis"),
        "gunicorn": _version("gunicorn"),
        "flask": _version("flask"),
        "MIT krb5": _first_line("krb5-config", "--version"),
        "python-gssapi": _version("gssapi"),
        "PyJWT": _version("pyjwt"),
        "wrk": _first_line("wrk", "--version").split(" [")[0],
        "py-spy": _version("py-spy"),
    }
