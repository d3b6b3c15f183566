"""Keytab reload without a restart: on an unknown key version (rate-limited) and on SIGHUP; failures keep the keys."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from client_sdk.flow import Credential
from relying_service import keytab_source
from relying_service.cli import demo_app_factory
from relying_service.flask_ext import TicketAuth
from relying_service.keytab_source import KeytabSource
from relying_service.verifier import Verifier
from tally_protocol.binding import RequestBinding
from tally_protocol.errors import ConfigurationError, UnknownKeyVersion
from tally_protocol.keys import Keyset
from tally_protocol.principal import Principal
from tally_runtime.hangup import remove_hangup_listeners
from tally_runtime.keytab_file import write_keytab
from tally_runtime.redis_settings import RedisSettings
from tally_runtime.settings import Settings
from tests.relying_service.memory_realm import HOST, NOW, MemoryRealm, new_key
from tests.relying_service.recording_cache import RecordingCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Logs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def logs() -> Iterator[Logs]:
    handler, logger = Logs(), logging.getLogger("tally.service")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def hangup() -> Iterator[None]:
    before = signal.getsignal(signal.SIGHUP)
    yield
    remove_hangup_listeners()
    signal.signal(signal.SIGHUP, before)


def whoami() -> RequestBinding:
    return RequestBinding.for_http("GET", HOST, "/whoami", b"")


def replace_keytab(path: Path, principal: Principal, keyset: Keyset) -> None:
    """What ``tally admin rotate --keytab`` does: a new file renamed over the old one."""
    tmp = path.with_name(path.name + ".new")
    write_keytab(tmp, principal, keyset)
    os.replace(tmp, path)


@pytest.fixture
def keytab(realm: MemoryRealm, tmp_path: Path) -> Path:
    return write_keytab(tmp_path / "api.keytab", realm.service, realm.service_keys)


def rotated(realm: MemoryRealm, keytab: Path, kvno: int = 2) -> Credential:
    """Add version ``kvno`` to the keytab file and return a ticket sealed under it."""
    key = new_key(kvno)
    replace_keytab(keytab, realm.service, Keyset([*realm.service_keys, key]))
    return realm.service_ticket(service_key=key)


def verifier_for(source: KeytabSource, realm: MemoryRealm) -> Verifier:
    return Verifier(realm.service, source, RecordingCache(), clock=lambda: NOW)


def test_a_ticket_under_a_new_version_makes_the_keytab_reload(realm: MemoryRealm, keytab: Path) -> None:
    clock = Clock()
    source = KeytabSource(keytab, clock=clock)
    verifier = verifier_for(source, realm)
    cred = rotated(realm, keytab)
    assert verifier.verify(realm.authorize(cred).authorization, whoami()).kvno == 2
    assert source.keyset().versions == [1, 2]


def test_reloads_for_unknown_versions_are_rate_limited(realm: MemoryRealm, keytab: Path) -> None:
    clock = Clock()
    verifier = verifier_for(KeytabSource(keytab, min_interval_s=5, clock=clock), realm)
    verifier.verify(realm.authorize(rotated(realm, keytab, 2)).authorization, whoami())
    cred3 = rotated(realm, keytab, 3)
    clock.now += 4.9
    with pytest.raises(UnknownKeyVersion):
        verifier.verify(realm.authorize(cred3).authorization, whoami())
    clock.now += 0.1
    assert verifier.verify(realm.authorize(cred3).authorization, whoami()).kvno == 3


def test_unknown_versions_read_nothing_while_the_file_is_unchanged(realm: MemoryRealm, keytab: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Any] = []
    real_read = keytab_source.read_keytab
    monkeypatch.setattr(keytab_source, "read_keytab", lambda p: reads.append(p) or real_read(p))
    verifier = verifier_for(KeytabSource(keytab, min_interval_s=0), realm)
    forged = realm.forge_ticket(key=new_key(9))
    for _ in range(20):
        with pytest.raises(UnknownKeyVersion):
            verifier.verify(realm.authorize(forged).authorization, whoami())
    assert len(reads) == 1  # the first load only


def test_sighup_reloads_the_keytab_without_a_request(realm: MemoryRealm, keytab: Path, hangup: None) -> None:
    source = KeytabSource(keytab)
    verifier = verifier_for(source, realm)
    assert verifier.reload_keys_on_sighup()
    rotated(realm, keytab)
    os.kill(os.getpid(), signal.SIGHUP)
    assert verifier.current_keyset().versions == [1, 2]


def test_a_failed_reload_keeps_the_old_keys_and_logs(realm: MemoryRealm, keytab: Path, cred: Credential,
                                                     logs: Logs) -> None:
    source = KeytabSource(keytab)
    keytab.write_bytes(b"not a keytab")
    assert not source.reload("test")
    assert verifier_for(source, realm).verify(realm.authorize(cred).authorization, whoami()).kvno == 1
    assert any("reload failed" in m for m in logs.messages)


def test_a_keytab_for_another_principal_is_not_loaded(realm: MemoryRealm, keytab: Path) -> None:
    source = KeytabSource(keytab)
    replace_keytab(keytab, Principal("other", realm.realm), Keyset([new_key(2)]))
    assert not source.reload("test")
    assert source.keyset().versions == [1]


def test_a_missing_keytab_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        KeytabSource(tmp_path / "nope.keytab")


def test_ticket_auth_installs_the_sighup_reload_when_configured(realm: MemoryRealm, keytab: Path,
                                                                hangup: None) -> None:
    app = Flask(__name__)
    app.config.update(TALLY_KEYTAB=str(keytab), TALLY_RELOAD_ON_SIGHUP=True)
    TicketAuth(app, replay_cache=RecordingCache())
    rotated(realm, keytab)
    os.kill(os.getpid(), signal.SIGHUP)
    assert TicketAuth.state(app).verifier.current_keyset().versions == [1, 2]


def test_service_serve_workers_reload_on_sighup(realm: MemoryRealm, keytab: Path, tmp_path: Path,
                                                hangup: None) -> None:
    settings = Settings(redis=RedisSettings(), realm=realm.realm, kdc_url=None, ccache=tmp_path / "c",
                        master_key_file=tmp_path / "m")
    app = demo_app_factory(keytab, settings)()
    rotated(realm, keytab)
    os.kill(os.getpid(), signal.SIGHUP)
    assert TicketAuth.state(app).verifier.current_keyset().versions == [1, 2]
