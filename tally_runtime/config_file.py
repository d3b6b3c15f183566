"""The configuration file: every setting in one TOML file, the environment overriding it.

Rules this module keeps:

* A top-level ``key`` is the environment's ``TALLY_KEY`` and ``[section] key``
  is ``TALLY_SECTION_KEY``: ``max_skew`` is ``TALLY_MAX_SKEW``, ``[redis] url``
  is ``TALLY_REDIS_URL``, ``[admin] secret_key_file`` is
  ``TALLY_ADMIN_SECRET_KEY_FILE``.  The file takes exactly the settings the
  caller knows (``Settings`` and ``redis_settings.NAMES``), so one spelling
  works in both places and a name valid in one is valid in the other.
* Where: ``TALLY_CONFIG`` (``tally --config``); else ``/etc/tally/tally.toml``
  when it exists; ``TALLY_CONFIG=`` set empty means no file at all.
* The environment wins: a variable set to a non-empty value replaces the
  file's value, so a container or unit can override one line of a shared file.
* Each mistake is one ``ConfigurationError`` naming the file and the key: an
  unknown key (with the closest known one), a value of the wrong TOML type
  (with the type expected), a secret written inline (with the ``*_file``
  setting to use instead), TOML that does not parse (with line and column).
* The file holds no secret, so anyone may read it; nobody but its owner may
  write it, since it names the files the secrets are read from.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tally_protocol.errors import ConfigurationError

from .redis_settings import NAMES as REDIS_NAMES
from .redis_settings import RedisSettings

CONFIG_ENV = "TALLY_CONFIG"
DEFAULT_PATH = Path("/etc/tally/tally.toml")
#: Tables of the file; every other setting is a top-level key.
SECTIONS = ("redis", "admin")
_PREFIX = "TALLY_"

#: What a file value may be: one TOML type, or ``object`` for "any string, number or boolean".
ValueType = type


def key_of(name: str) -> str:
    """How the file spells the setting ``name``: ``TALLY_MAX_SKEW`` -> ``max_skew``, ``TALLY_REDIS_URL`` -> ``[redis] url``."""
    key = name.removeprefix(_PREFIX).lower()
    for section in SECTIONS:
        if key.startswith(section + "_"):
            return f"[{section}] {key[len(section) + 1:]}"
    return key


def _dotted(section: str | None, key: str) -> str:
    return f"{section}.{key}" if section else key


def _shown(dotted: str) -> str:
    section, dot, key = dotted.partition(".")
    return f"[{section}] {key}" if dot else dotted


def _name_of(section: str | None, key: str) -> str:
    return _PREFIX + (f"{section}_{key}" if section else key).upper()


_TOML_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"), (int, "an integer"), (float, "a float"), (str, "a string"), (dict, "a table"),
    (list, "an array"),
)
_EXPECTED = {bool: ("true or false", "true"), int: ("an integer", "300"), float: ("a number", "2.5"),
             str: ("a string", '"..."'), object: ("a string, number or boolean", '"..."')}


def _toml_type(value: object) -> str:
    return next((name for t, name in _TOML_TYPES if isinstance(value, t)), "a date or time")


def _fits(value: object, expected: ValueType) -> bool:
    if expected is object:
        return isinstance(value, (str, int, float, bool))
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, expected)


def _as_env(value: object) -> str:
    """The environment's spelling of a checked file value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def redis_option_types() -> dict[str, ValueType]:
    """The TOML type of every ``redis_settings.NAMES`` entry, read from ``RedisSettings``' field of that name.

    A name with no field of its own (``TALLY_REDIS_PASSWORD_FILE`` fills ``password``) is a path if it
    ends in ``_FILE``, else any scalar, left for ``RedisSettings.from_env`` to check.
    """
    hints = typing.get_type_hints(RedisSettings)
    field_names = {f.name for f in fields(RedisSettings)}
    types: dict[str, ValueType] = {}
    for name in REDIS_NAMES:
        field = name.removeprefix(_PREFIX + "REDIS_").lower()
        hint = hints.get(field) if field in field_names else None
        scalars = [t for t in typing.get_args(hint) or (hint,) if t in (int, float, bool, str, Path)]
        if len(scalars) == 1:
            types[name] = str if scalars[0] is Path else scalars[0]
        else:
            types[name] = str if name.endswith("_FILE") else object
    return types


@dataclass(frozen=True)
class ConfigFile:
    """A checked configuration file: its values spelled as the environment would spell them."""

    path: Path
    values: Mapping[str, str]

    def under(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` over this file: a variable set to a non-empty value wins over the file's."""
        merged = dict(env)
        for name, value in self.values.items():
            if not env.get(name):
                merged[name] = value
        return merged

    def explain(self, err: ConfigurationError, env: Mapping[str, str]) -> ConfigurationError:
        """``err`` (from reading the merged settings) saying which line of this file it is about, if any."""
        named = [n for n in self.values if not env.get(n) and re.search(rf"\b{n}\b", err.message)]
        if not named:
            return err
        where = ", ".join(key_of(n) for n in named)
        return ConfigurationError(f"{err.message} (set as {where} in {self.path})")


def find_config_file(env: Mapping[str, str], default: Path = DEFAULT_PATH) -> Path | None:
    """The file to read: ``TALLY_CONFIG``, else ``default`` if it exists; None for no file."""
    given = env.get(CONFIG_ENV)
    if given is not None:
        return Path(given).expanduser() if given else None
    return default if default.exists() else None


def read_config_file(path: Path, known: Mapping[str, ValueType]) -> ConfigFile:
    """Read and check ``path`` against ``known`` (environment name -> TOML type); ConfigurationError if wrong."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o022:
                raise ConfigurationError(
                    f"configuration file {path} may be changed by group or others (mode {stat.filemode(st.st_mode)}): "
                    f"it names the files secrets are read from; run chmod go-w {path}")
            document = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigurationError(f"configuration file {path} does not exist (named by {CONFIG_ENV} or "
                                 "--config)") from None
    except IsADirectoryError:
        raise ConfigurationError(f"configuration file {path} is a directory") from None
    except PermissionError:
        raise ConfigurationError(f"configuration file {path} is not readable by this user") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigurationError(f"configuration file {path} is not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigurationError(f"cannot read configuration file {path}: {e.strerror}") from None
    return ConfigFile(path, _check(path, document, known))


def _check(path: Path, document: Mapping[str, Any], known: Mapping[str, ValueType]) -> dict[str, str]:
    known_dotted = {_dotted(*_split(key_of(n))): n for n in known}
    values: dict[str, str] = {}
    for section, key, value in _entries(path, document, known_dotted):
        name = _name_of(section, key)
        shown = _shown(_dotted(section, key))
        if name not in known or key_of(name) != shown:  # one spelling: redis_url is [redis] url
            close = difflib.get_close_matches(_dotted(section, key), list(known_dotted), n=1, cutoff=0.6)
            hint = f"; did you mean {_shown(close[0])}?" if close else ""
            raise ConfigurationError(f"{path}: unknown setting {shown}{hint}")
        if name + "_FILE" in known:
            raise ConfigurationError(f"{path}: {shown} would put a secret in the configuration file; write it to a "
                                     f"file only the server's user can read (chmod 600) and name that file with "
                                     f"{key_of(name + '_FILE')}")
        expected = known[name]
        if not _fits(value, expected):
            what, example = _EXPECTED.get(expected, _EXPECTED[object])
            raise ConfigurationError(f"{path}: {shown} must be {what} (e.g. {key} = {example}), "
                                     f"not {_toml_type(value)}")
        if name == "TALLY_REDIS_URL" and _url_password(str(value)):
            raise ConfigurationError(f"{path}: {shown} holds a password; take it out of the URL and name a file "
                                     f"holding it with {key_of('TALLY_REDIS_PASSWORD_FILE')}")
        values[name] = _as_env(value)
    return values


def _split(shown: str) -> tuple[str | None, str]:
    if shown.startswith("["):
        section, _, key = shown[1:].partition("] ")
        return section, key
    return None, shown


def _entries(path: Path, document: Mapping[str, Any],
             known_dotted: Mapping[str, str]) -> list[tuple[str | None, str, object]]:
    """(section or None, key, value) for every setting in the document; sections checked by name."""
    entries: list[tuple[str | None, str, object]] = []
    for key, value in document.items():
        if isinstance(value, dict) and key not in known_dotted:
            if key not in SECTIONS:
                close = difflib.get_close_matches(key, SECTIONS, n=1)
                hint = f"did you mean [{close[0]}]?" if close else "the sections are " + ", ".join(
                    f"[{s}]" for s in SECTIONS)
                raise ConfigurationError(f"{path}: unknown section [{key}]; {hint}")
            entries.extend((key, k, v) for k, v in value.items())
        elif key in SECTIONS:
            raise ConfigurationError(f"{path}: {key} is a section: write [{key}] on a line of its own, then its "
                                     "settings, e.g. " + next((_shown(d) for d in known_dotted
                                                               if d.startswith(key + ".")), f"[{key}]"))
        else:
            entries.append((None, key, value))
    return entries


def _url_password(url: str) -> bool:
    """Whether ``scheme://user:password@host...`` carries a password (any scheme, several hosts included)."""
    userinfo, at, _ = urlsplit(url).netloc.rpartition("@")
    return bool(at) and bool(userinfo.partition(":")[2])
