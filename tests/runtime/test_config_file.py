"""The TOML configuration file: the environment's settings spelled as keys, each mistake named with its fix."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tally_protocol.errors import ConfigurationError
from tally_runtime.config_file import find_config_file, key_of, read_config_file
from tally_runtime.redis_settings import NAMES as REDIS_NAMES
from tally_runtime.settings import option_types


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):  # a TOML basic string: quotes, backslashes and control characters escaped
        return '"' + "".join(f"\\u{ord(c):04x}" if c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F else c
                             for c in value) + '"'
    return str(value)


def write_config(directory: Path, text: str) -> Path:
    path = directory / "tally.toml"
    path.write_text(text)
    path.chmod(0o644)
    return path


def read(directory: Path, text: str) -> dict[str, str]:
    return dict(read_config_file(write_config(directory, text), option_types()).values)


def refusal(directory: Path, text: str) -> str:
    with pytest.raises(ConfigurationError) as e:
        read(directory, text)
    return e.value.message


def test_top_level_keys_and_section_keys_are_the_environment_names() -> None:
    assert key_of("TALLY_MAX_SKEW") == "max_skew"
    assert key_of("TALLY_REDIS_URL") == "[redis] url"
    assert key_of("TALLY_ADMIN_SECRET_KEY_FILE") == "[admin] secret_key_file"


def test_values_are_handed_on_as_the_environment_would_spell_them(tmp_path: Path) -> None:
    values = read(tmp_path, 'realm = "EXAMPLE.TEST"\nmax_skew = 120\ntrust_forwarded = true\n'
                            '[redis]\nurl = "redis://127.0.0.1:6390/0"\n')
    assert values == {"TALLY_REALM": "EXAMPLE.TEST", "TALLY_MAX_SKEW": "120", "TALLY_TRUST_FORWARDED": "true",
                      "TALLY_REDIS_URL": "redis://127.0.0.1:6390/0"}


_SAMPLE = {str: "/etc/tally/x", int: 7, bool: False, float: 1.5, object: "x"}
_SETTABLE = sorted(n for n in option_types() if n + "_FILE" not in option_types())


@pytest.mark.parametrize("name", _SETTABLE)
def test_every_setting_can_be_written_in_the_file(tmp_path: Path, name: str) -> None:
    section, _, key = key_of(name).rpartition("] ")
    header = f"{section}]\n" if section else ""
    value = _SAMPLE[option_types()[name]]
    assert read(tmp_path, f"{header}{key} = {toml_value(value)}\n")[name] == toml_value(value).strip('"')


def test_every_redis_connection_setting_is_accepted_under_redis() -> None:
    # Read from redis_settings.NAMES as it is now: a Redis setting added there is settable at once.
    assert {n for n in option_types() if key_of(n).startswith("[redis] ")} == set(REDIS_NAMES)


def test_an_unknown_key_is_refused_with_the_closest_known_one(tmp_path: Path) -> None:
    message = refusal(tmp_path, "max_skwe = 300\n")
    assert "unknown setting max_skwe" in message and "did you mean max_skew?" in message
    assert str(tmp_path / "tally.toml") in message


def test_a_section_setting_written_at_the_top_level_points_to_its_section(tmp_path: Path) -> None:
    assert "did you mean [redis] url?" in refusal(tmp_path, 'redis_url = "redis://127.0.0.1:6390"\n')


def test_an_unknown_key_in_a_section_is_refused_with_the_closest_known_one(tmp_path: Path) -> None:
    assert "did you mean [redis] url?" in refusal(tmp_path, '[redis]\nulr = "redis://127.0.0.1:6390"\n')


def test_an_unknown_section_is_refused_with_the_closest_section(tmp_path: Path) -> None:
    message = refusal(tmp_path, '[rediss]\nurl = "redis://127.0.0.1:6390"\n')
    assert "unknown section [rediss]" in message and "did you mean [redis]?" in message


def test_a_section_name_used_as_a_plain_key_says_how_to_write_the_section(tmp_path: Path) -> None:
    assert "write [redis] on a line of its own" in refusal(tmp_path, 'redis = "redis://127.0.0.1:6390"\n')


def test_a_string_for_an_integer_names_the_key_the_file_and_the_type_expected(tmp_path: Path) -> None:
    message = refusal(tmp_path, 'max_skew = "300"\n')
    assert message == f"{tmp_path / 'tally.toml'}: max_skew must be an integer (e.g. max_skew = 300), not a string"


def test_a_boolean_is_not_taken_for_an_integer(tmp_path: Path) -> None:
    assert "must be an integer" in refusal(tmp_path, "max_skew = true\n")


def test_a_number_for_a_string_is_refused(tmp_path: Path) -> None:
    assert "[redis] url must be a string" in refusal(tmp_path, "[redis]\nurl = 6379\n")


def test_a_table_for_a_value_is_refused(tmp_path: Path) -> None:
    assert "realm must be a string (e.g. realm = \"...\"), not a table" in refusal(tmp_path, "[realm]\n")


def test_a_secret_written_inline_is_refused_pointing_to_its_file_setting(tmp_path: Path) -> None:
    message = refusal(tmp_path, '[admin]\nsecret_key = "0123456789abcdef0123456789abcdef"\n')
    assert "[admin] secret_key would put a secret in the configuration file" in message
    assert "[admin] secret_key_file" in message
    assert "0123456789abcdef" not in message


def test_a_redis_url_with_a_password_is_refused_pointing_to_the_password_file(tmp_path: Path) -> None:
    message = refusal(tmp_path, '[redis]\nurl = "redis://:hunter2@127.0.0.1:6390/0"\n')
    assert "[redis] password_file" in message and "hunter2" not in message


def test_toml_that_does_not_parse_is_refused_with_its_line(tmp_path: Path) -> None:
    message = refusal(tmp_path, 'realm = "EXAMPLE.TEST"\nmax_skew = = 3\n')
    assert "is not valid TOML" in message and "line 2" in message


def test_a_file_others_may_change_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'realm = "EXAMPLE.TEST"\n')
    path.chmod(0o664)
    with pytest.raises(ConfigurationError, match="chmod go-w"):
        read_config_file(path, option_types())


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        read_config_file(tmp_path / "none.toml", option_types())


def test_tally_config_names_the_file() -> None:
    assert find_config_file({"TALLY_CONFIG": "/srv/tally.toml"}) == Path("/srv/tally.toml")


def test_without_tally_config_the_default_file_is_used_when_it_exists(tmp_path: Path) -> None:
    default = write_config(tmp_path, "")
    assert find_config_file({}, default) == default
    assert find_config_file({}, tmp_path / "absent.toml") is None


def test_tally_config_set_empty_means_no_file_even_when_the_default_exists(tmp_path: Path) -> None:
    assert find_config_file({"TALLY_CONFIG": ""}, write_config(tmp_path, "")) is None


_KEY = st.text(string.ascii_lowercase + "_", min_size=1, max_size=30)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=_KEY.filter(lambda k: "TALLY_" + k.upper() not in option_types() and k not in ("redis", "admin")))
def test_any_key_that_is_no_setting_is_refused_by_name(tmp_path: Path, key: str) -> None:
    assert f"unknown setting {key}" in refusal(tmp_path, f"{key} = 1\n")


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.one_of(st.text(max_size=5), st.booleans(), st.floats(allow_nan=False, allow_infinity=False)))
def test_anything_but_an_integer_for_an_integer_setting_is_refused(tmp_path: Path, value: object) -> None:
    assert "max_skew must be an integer" in refusal(tmp_path, f"max_skew = {toml_value(value)}\n")
