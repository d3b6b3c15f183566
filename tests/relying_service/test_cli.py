"""``tally service serve``: checks its inputs, then hands gunicorn a per-worker app factory."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from relying_service.cli import demo_app_factory, service_group
from relying_service.flask_ext import TicketAuth
from tally_runtime.keytab_file import write_keytab
from tally_runtime.settings import Settings
from tests.relying_service.memory_realm import MemoryRealm


@pytest.fixture
def keytab(realm: MemoryRealm, tmp_path: Path) -> Path:
    return write_keytab(tmp_path / "api.keytab", realm.service, realm.service_keys)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Stands in for kdc.serve: records what the command would have served."""
    calls: list[dict[str, Any]] = []
    module = types.ModuleType("kdc.serve")
    module.serve_wsgi = lambda factory, **kw: calls.append({"factory": factory, **kw})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kdc.serve", module)
    monkeypatch.setattr("relying_service.cli.configure", lambda: None)  # keep process-wide logging untouched
    return calls


def test_factory_builds_the_demo_app_for_the_keytabs_service(keytab: Path, realm: MemoryRealm) -> None:
    app = demo_app_factory(keytab, Settings.from_env())()
    assert TicketAuth.state(app).verifier.service == realm.service
    assert app.test_client().get("/healthz").status_code == 200


def test_serve_passes_a_factory_and_the_address_to_the_server(keytab: Path, served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(service_group, ["serve", "--keytab", str(keytab), "--port", "8799"])
    assert result.exit_code == 0, result.output
    (call,) = served
    assert (call["host"], call["port"], call["workers"]) == ("127.0.0.1", 8799, 1)
    assert isinstance(call["factory"](), Flask)


def test_serve_uses_several_workers_only_with_a_shared_redis(keytab: Path, served: list[dict[str, Any]],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLY_REDIS_URL", "redis://127.0.0.1:1/0")
    result = CliRunner().invoke(service_group, ["serve", "--keytab", str(keytab), "--workers", "3"])
    assert result.exit_code == 0, result.output
    assert served[0]["workers"] == 3


def test_several_workers_on_the_embedded_store_are_refused(keytab: Path, served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(service_group, ["serve", "--keytab", str(keytab), "--workers", "2"])
    assert result.exit_code == 1
    assert "CONFIGURATION_ERROR" in result.output and served == []


def test_missing_keytab_is_one_clear_line(tmp_path: Path, served: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(service_group, ["serve", "--keytab", str(tmp_path / "nope.keytab")])
    assert result.exit_code == 1
    assert "does not exist" in result.output and "Traceback" not in result.output and served == []


def test_serve_has_help() -> None:
    result = CliRunner().invoke(service_group, ["serve", "--help"])
    assert result.exit_code == 0 and "--keytab" in result.output
