"""tally_protocol stays pure: no web framework, store, HTTP client, clock, environment or OS randomness.

That is what makes the known-answer vectors and byte-flip properties possible;
adapters pass ``now`` and ``rng`` in.  The check reads the source with ``ast``,
so a forbidden import hidden in a function body is caught too.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import tally_protocol

PACKAGE = Path(tally_protocol.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))
#: Top-level modules the core may never import.
FORBIDDEN_MODULES = {
    "flask", "werkzeug", "redis", "fakeredis", "requests", "httpx", "gunicorn", "click",
    "time", "datetime", "random", "secrets", "os", "socket", "subprocess", "threading",
    "importlib", "tally_runtime", "kdc", "relying_service", "client_sdk", "tally_cli",
}
#: Attributes that read the environment or OS randomness (``os.environ``, ``secrets.token_bytes``...).
FORBIDDEN_ATTRS = {"environ", "getenv", "urandom", "token_bytes", "getrandom"}
#: Builtins that do I/O or import by name.
FORBIDDEN_BUILTINS = {"open", "print", "input", "__import__", "exec", "eval"}


def violations(source: str) -> list[str]:
    """Every forbidden import or name use in ``source``, as readable strings."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRS:
            found.append(f".{node.attr}")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_BUILTINS | FORBIDDEN_ATTRS:
            found.append(node.id)
    return found


def test_the_package_has_sources_to_scan() -> None:
    names = {p.name for p in SOURCES}
    assert {"verify.py", "crypto.py", "encoding.py", "ap_req.py"} <= names


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACKAGE)) for p in SOURCES])
def test_protocol_module_has_no_io_clock_or_randomness(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import time",
        "import os.path",
        "from os import urandom",
        "from flask import request",
        "import redis",
        "def f():\n    import requests",
        "import httpx as h",
        "from werkzeug.wrappers import Request",
        "import secrets",
        "from random import random",
        "x = sys.modules['os'].environ",
        "key = urandom(32)",
        "from datetime import datetime",
        "with open('keytab') as f: pass",
        "print(key)",
    ],
)
def test_the_scan_catches_forbidden_use(snippet: str) -> None:
    assert violations(snippet) != []


def _loaded_modules() -> list[ModuleType]:
    names = [m.name for m in pkgutil.walk_packages(tally_protocol.__path__, "tally_protocol.")]
    return [tally_protocol, *(importlib.import_module(n) for n in names)]


def test_imported_modules_hold_no_forbidden_module() -> None:
    # The same rule seen at run time: no module object among any module's globals.
    for module in _loaded_modules():
        held = {v.__name__.split(".")[0] for v in vars(module).values() if isinstance(v, ModuleType)}
        assert held & FORBIDDEN_MODULES == set(), module.__name__


def test_imported_modules_hold_no_clock_or_randomness_function() -> None:
    import os
    import secrets
    import time

    forbidden = {id(f) for f in (os.urandom, os.getenv, time.time, time.monotonic, secrets.token_bytes)}
    for module in _loaded_modules():
        assert not any(id(v) in forbidden for v in vars(module).values()), module.__name__


def test_crypto_is_the_only_module_importing_hazmat() -> None:
    importers = {
        p.name for p in SOURCES
        if any(
            isinstance(n, ast.ImportFrom) and (n.module or "").startswith("cryptography")
            for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        )
    }
    assert importers == {"crypto.py"}
