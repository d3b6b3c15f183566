"""Settings.load: the configuration file under the environment, as every entry point reads its settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tally_protocol.errors import ConfigurationError
from tally_runtime.redis_settings import NAMES as REDIS_NAMES
from tally_runtime.settings import OPTION_TYPES, Settings


def config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "tally.toml"
    path.write_text(text)
    path.chmod(0o644)
    return {"TALLY_CONFIG": str(path), "HOME": str(tmp_path)}


def test_without_a_file_the_environment_alone_is_read(tmp_path: Path) -> None:
    env = {"TALLY_CONFIG": "", "TALLY_REALM": "EXAMPLE.TEST", "HOME": str(tmp_path)}
    assert Settings.load(env) == Settings.from_env(env)


def test_a_setting_from_the_file_is_used(tmp_path: Path) -> None:
    loaded = Settings.load(config(tmp_path, 'realm = "EXAMPLE.TEST"\nmax_skew = 60\n[redis]\n'
                                            'url = "redis://127.0.0.1:6390/0"\n'))
    assert (loaded.realm, loaded.max_skew_s, loaded.redis_url) == ("EXAMPLE.TEST", 60, "redis://127.0.0.1:6390/0")


def test_the_environment_beats_the_file(tmp_path: Path) -> None:
    env = config(tmp_path, 'realm = "FILE.TEST"\nmax_skew = 60\n')
    loaded = Settings.load({**env, "TALLY_REALM": "ENV.TEST"})
    assert (loaded.realm, loaded.max_skew_s) == ("ENV.TEST", 60)


def test_an_empty_variable_does_not_hide_the_file_value(tmp_path: Path) -> None:
    env = config(tmp_path, 'realm = "FILE.TEST"\n')
    assert Settings.load({**env, "TALLY_REALM": ""}).realm == "FILE.TEST"


def test_a_value_out_of_range_in_the_file_names_its_key_and_the_file(tmp_path: Path) -> None:
    env = config(tmp_path, "max_skew = 99999\n")
    with pytest.raises(ConfigurationError) as e:
        Settings.load(env)
    assert "TALLY_MAX_SKEW must be between 1 and 3600" in e.value.message
    assert f"(set as max_skew in {tmp_path / 'tally.toml'})" in e.value.message


def test_a_redis_setting_mistake_in_the_file_names_its_key(tmp_path: Path) -> None:
    env = config(tmp_path, '[redis]\nurl = "http://127.0.0.1:6390"\n')
    with pytest.raises(ConfigurationError, match=r"\(set as \[redis\] url in "):
        Settings.load(env)


def test_a_mistake_in_the_environment_is_not_blamed_on_the_file(tmp_path: Path) -> None:
    env = config(tmp_path, "max_skew = 60\n")
    with pytest.raises(ConfigurationError) as e:
        Settings.load({**env, "TALLY_MAX_SKEW": "0"})
    assert "set as" not in e.value.message


def test_a_file_mistake_stops_the_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown setting"):
        Settings.load(config(tmp_path, 'realmm = "EXAMPLE.TEST"\n'))


class RecordingEnv(dict[str, str]):
    """An empty environment that notes every name looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.read.add(key)
        return default

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return False


def test_option_types_declare_exactly_the_settings_from_env_reads() -> None:
    # A setting added to from_env but not to OPTION_TYPES could not be written in the file.
    env = RecordingEnv()
    Settings.from_env(env)
    assert {n for n in env.read if n.startswith("TALLY_")} - set(REDIS_NAMES) == set(OPTION_TYPES)


@pytest.fixture
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("config")


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(realm=st.sampled_from(["EXAMPLE.TEST", "CORP.EXAMPLE.COM", "A"]), skew=st.integers(1, 3600),
       trust=st.booleans(), delay=st.integers(0, 30 * 86400))
def test_the_file_and_the_environment_spell_the_same_settings(directory: Path, realm: str, skew: int, trust: bool,
                                                             delay: int) -> None:
    env = config(directory, f'realm = "{realm}"\nmax_skew = {skew}\ntrust_forwarded = {str(trust).lower()}\n'
                            f"new_service_key_delay_s = {delay}\n")
    assert Settings.load(env) == Settings.from_env({
        "HOME": env["HOME"], "TALLY_REALM": realm, "TALLY_MAX_SKEW": str(skew),
        "TALLY_TRUST_FORWARDED": "true" if trust else "false", "TALLY_NEW_SERVICE_KEY_DELAY_S": str(delay)})
