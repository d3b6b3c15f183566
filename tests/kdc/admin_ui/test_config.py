"""Turning the UI on: no secret key, no UI; keys from config, environment or a 0600 file; ephemeral keys announced."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
import redis

from kdc.admin.ui.config import EPHEMERAL_NOTICE, load_ui_config
from kdc.master_key import MasterKey
from tally_protocol.errors import ConfigurationError
from tally_runtime.settings import Settings
from tests.kdc.admin_ui.conftest import BASE, SECRET
from tests.kdc.conftest import FixedClock, make_realm, settings_for

KEY = "k" * 40


def _config(tmp_path: Path, **config: Any) -> Any:
    return load_ui_config(dict(config), settings_for(tmp_path), os.urandom)


def test_without_a_secret_key_the_kdc_serves_no_ui(fake_redis: redis.Redis, master_key: MasterKey,
                                                    clock: FixedClock, tmp_path: Path) -> None:
    realm = make_realm(fake_redis, master_key, clock, tmp_path)
    assert realm.http.get("/admin/login", base_url=BASE).status_code == 404
    assert realm.http.get("/healthz").status_code == 200


def test_with_a_secret_key_the_ui_answers(fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock,
                                          tmp_path: Path) -> None:
    realm = make_realm(fake_redis, master_key, clock, tmp_path, TALLY_ADMIN_SECRET_KEY=SECRET)
    assert realm.http.get("/admin/login", base_url=BASE).status_code == 200


def test_a_short_secret_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="shorter than 32 bytes"):
        _config(tmp_path, TALLY_ADMIN_SECRET_KEY="short")


def test_the_secret_key_can_come_from_a_0600_file(tmp_path: Path) -> None:
    path = tmp_path / "admin.secret"
    path.write_text(KEY + "\n")
    path.chmod(0o600)
    config = _config(tmp_path, TALLY_ADMIN_SECRET_KEY_FILE=path)
    assert config.secret_keys == (KEY.encode(),) and not config.ephemeral


def test_a_readable_by_others_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "admin.secret"
    path.write_text(KEY)
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        _config(tmp_path, TALLY_ADMIN_SECRET_KEY_FILE=path)


def test_key_and_key_file_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        _config(tmp_path, TALLY_ADMIN_SECRET_KEY=KEY, TALLY_ADMIN_SECRET_KEY_FILE=tmp_path / "x")


def test_an_ephemeral_key_is_only_used_when_asked_for_and_announced(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    assert _config(tmp_path) is None
    logger = logging.getLogger("tally.admin.ui")
    logger.addHandler(caplog.handler)
    try:
        config = _config(tmp_path, TALLY_ADMIN_EPHEMERAL_KEY=True)
    finally:
        logger.removeHandler(caplog.handler)
    assert config is not None and config.ephemeral
    assert EPHEMERAL_NOTICE in caplog.text


def test_settings_read_the_admin_ui_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"TALLY_ADMIN_SECRET_KEY": KEY, "TALLY_ADMIN_COOKIE_SECURE": "false",
                                  "TALLY_ADMIN_SECRET_KEY_FILE": ""})
    assert settings.admin_secret_key == KEY and settings.admin_cookie_secure is False
    assert KEY not in repr(settings)
    assert Settings.from_env({}).admin_cookie_secure is True


def test_timeouts_must_make_sense(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="lifetime"):
        _config(tmp_path, TALLY_ADMIN_SECRET_KEY=KEY, TALLY_ADMIN_IDLE_TIMEOUT_S=900,
                TALLY_ADMIN_SESSION_LIFETIME_S=60)
