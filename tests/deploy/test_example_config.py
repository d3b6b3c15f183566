"""The example configuration files are valid, and deploy/tally.toml shows every setting there is."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tally_runtime.config_file import key_of, read_config_file
from tally_runtime.settings import option_types
from tests.deploy.compose_local import DEPLOY


def checked_copy(source: Path, directory: Path, text: str | None = None) -> Path:
    copy = directory / source.name
    if text is None:
        shutil.copy(source, copy)
    else:
        copy.write_text(text)
    copy.chmod(0o644)  # a checkout under umask 002 would be group-writable, which tally refuses
    return copy


@pytest.mark.parametrize("example", ["tally.toml", "compose/tally.toml"])
def test_the_example_is_a_valid_configuration_file(tmp_path: Path, example: str) -> None:
    read_config_file(checked_copy(DEPLOY / example, tmp_path), option_types())


def test_the_example_shows_every_setting_a_file_may_hold(tmp_path: Path) -> None:
    # Its commented-out lines hold the rest; uncommented, the file is still valid and complete.
    text = re.sub(r"(?m)^#(\w+ = )", r"\1", (DEPLOY / "tally.toml").read_text())
    values = read_config_file(checked_copy(DEPLOY / "tally.toml", tmp_path, text), option_types()).values
    settable = {n for n in option_types() if n + "_FILE" not in option_types()}
    missing = sorted(key_of(n) for n in settable - set(values))
    assert not missing, f"deploy/tally.toml does not show {', '.join(missing)}"


def test_the_example_shows_each_default_as_the_settings_apply_it(tmp_path: Path) -> None:
    from tally_runtime.settings import Settings

    commented = dict(re.findall(r"(?m)^#(\w+) = (\d+)$", (DEPLOY / "tally.toml").read_text()))
    defaults = Settings.from_env({"TALLY_REALM": "EXAMPLE.COM"})
    shown = {"max_skew": defaults.max_skew_s, "kdc_max_body_bytes": defaults.kdc_max_body_bytes,
             "max_body_bytes": defaults.max_body_bytes, "rate_limit_requests": defaults.rate_limit_requests,
             "rate_limit_window_s": defaults.rate_limit_window_s, "as_rate_limit": defaults.as_rate_limit,
             "tgs_rate_limit": defaults.tgs_rate_limit, "principal_rate_window_s": defaults.principal_rate_window_s,
             "new_service_key_delay_s": defaults.new_service_key_delay_s}
    assert {k: int(v) for k, v in commented.items() if k in shown} == shown

