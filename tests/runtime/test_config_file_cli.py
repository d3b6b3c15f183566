"""`tally --config FILE` and TALLY_CONFIG: every command reads the file, the environment overriding it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tally_cli.main import cli


@pytest.fixture(autouse=True)
def no_config_file_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    # --config sets TALLY_CONFIG for the process; monkeypatch puts the variable back after each test.
    monkeypatch.setenv("TALLY_CONFIG", "")
    monkeypatch.delenv("TALLY_CCACHE", raising=False)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tally.toml"
    path.write_text(text)
    path.chmod(0o644)
    return path


def test_a_command_reads_the_file_given_with_config(tmp_path: Path) -> None:
    path = config(tmp_path, f'ccache = "{tmp_path / "from-file.json"}"\n')
    result = CliRunner().invoke(cli, ["--config", str(path), "tickets"])
    assert result.exit_code == 0 and str(tmp_path / "from-file.json") in result.output


def test_the_environment_overrides_the_file_given_with_config(tmp_path: Path) -> None:
    path = config(tmp_path, f'ccache = "{tmp_path / "from-file.json"}"\n')
    result = CliRunner().invoke(cli, ["--config", str(path), "tickets"], env={"TALLY_CCACHE": str(tmp_path / "env.json")})
    assert result.exit_code == 0 and str(tmp_path / "env.json") in result.output


def test_a_mistake_in_the_file_is_one_line_and_exit_1_before_the_command_runs(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(config(tmp_path, "max_skw = 3\n")), "tickets"])
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: {tmp_path / 'tally.toml'}: unknown setting max_skw; did you mean "
                                      "max_skew? (CONFIGURATION_ERROR)")


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "none.toml"), "tickets"])
    assert result.exit_code == 1 and "none.toml does not exist" in result.output and "Traceback" not in result.output
