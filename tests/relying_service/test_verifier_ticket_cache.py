"""The verifier keeps opened tickets, and a kept ticket gets no further than a fresh one would.

Each test has the verifier accept a request first (so the ticket is in its
cache), then changes one thing: time, the keytab, the revocation list.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from client_sdk.flow import Credential
from kdc.revocation import RevocationList
from relying_service.keytab_source import KeytabSource
from relying_service.verifier import Verifier
from tally_protocol.errors import ReplayDetected, TicketExpired, TicketRevoked, UnknownKeyVersion
from tally_protocol.keys import Keyset
from tally_runtime.keytab_file import write_keytab
from tests.relying_service.memory_realm import NOW, Clock, MemoryRealm, new_key, whoami
from tests.relying_service.recording_cache import RecordingCache


def accepted_once(verifier: Verifier, realm: MemoryRealm, cred: Credential, clock: Clock) -> None:
    assert verifier.verify(realm.authorize(cred, now=clock.now).authorization, whoami()).client == realm.client


def test_a_kept_ticket_is_refused_once_it_has_expired(realm: MemoryRealm) -> None:
    clock = Clock()
    cred = realm.forge_ticket(endtime=NOW + 60)
    verifier = Verifier(realm.service, realm.service_keys, RecordingCache(), clock=clock)
    accepted_once(verifier, realm, cred, clock)
    clock.now = NOW + 60
    with pytest.raises(TicketExpired):
        verifier.verify(realm.authorize(cred, now=clock.now).authorization, whoami())


def test_a_kept_ticket_is_refused_once_a_reloaded_keytab_drops_its_version(realm: MemoryRealm,
                                                                           tmp_path: Path) -> None:
    clock = Clock()
    keytab = write_keytab(tmp_path / "api.keytab", realm.service, realm.service_keys)
    source = KeytabSource(keytab, min_interval_s=0)
    verifier = Verifier(realm.service, source, RecordingCache(), clock=clock)
    cred = realm.service_ticket()  # under version 1
    accepted_once(verifier, realm, cred, clock)
    write_keytab(tmp_path / "new.keytab", realm.service, Keyset([new_key(2)]))
    os.replace(tmp_path / "new.keytab", keytab)  # version 1 retired, as `tally admin rotate --keytab` does
    source.request_reload()  # what SIGHUP does
    with pytest.raises(UnknownKeyVersion):
        verifier.verify(realm.authorize(cred, now=clock.now).authorization, whoami())


def test_a_kept_ticket_is_refused_once_it_is_revoked(realm: MemoryRealm, fake_redis: redis.Redis) -> None:
    clock = Clock()
    cred = realm.service_ticket()
    verifier = Verifier(realm.service, realm.service_keys, RecordingCache(), clock=clock,
                        revocation=RevocationList(fake_redis, realm.realm, clock, cache_s=0))
    accepted_once(verifier, realm, cred, clock)
    RevocationList(fake_redis, realm.realm, clock).revoke_ticket(
        cred.ticket.open(realm.service_keys).ticket_id, cred.endtime)
    with pytest.raises(TicketRevoked):
        verifier.verify(realm.authorize(cred, now=clock.now).authorization, whoami())


def test_a_kept_ticket_does_not_let_a_replay_through(realm: MemoryRealm) -> None:
    clock = Clock()
    cred = realm.service_ticket()
    verifier = Verifier(realm.service, realm.service_keys, RecordingCache(), clock=clock)
    header = realm.authorize(cred, now=clock.now).authorization
    verifier.verify(header, whoami())
    with pytest.raises(ReplayDetected):
        verifier.verify(header, whoami())


def test_a_verifier_without_a_ticket_cache_accepts_the_same_requests(realm: MemoryRealm) -> None:
    clock = Clock()
    cred = realm.service_ticket()
    verifier = Verifier(realm.service, realm.service_keys, RecordingCache(), clock=clock, opened_tickets=0)
    for _ in range(2):
        accepted_once(verifier, realm, cred, clock)
