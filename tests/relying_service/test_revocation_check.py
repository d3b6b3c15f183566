"""Relying services refuse revoked tickets: principal revoked-before times and ticket ids, cached at most 1 s."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from client_sdk.flow import Credential
from kdc.revocation import RevocationList
from relying_service.demo_app import create_demo_app
from relying_service.flask_ext import TicketAuth
from relying_service.verifier import Verifier
from tally_protocol.errors import StoreUnavailable, TicketError, TicketRevoked
from tally_runtime.keytab_file import write_keytab
from tests.relying_service.memory_realm import HOST, Clock, MemoryRealm, whoami
from tests.relying_service.recording_cache import RecordingCache
from tests.support.redis_proc import RedisProcess


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def admin(fake_redis: redis.Redis, clock: Clock) -> RevocationList:
    return RevocationList(fake_redis, "EXAMPLE.TEST", clock, cache_s=0)


def make(realm: MemoryRealm, store: redis.Redis, clock: Clock, cache: RecordingCache | None = None) -> Verifier:
    return Verifier(realm.service, realm.service_keys, cache or RecordingCache(), clock=clock,
                    revocation=RevocationList(store, realm.realm, clock))


def test_a_ticket_of_a_revoked_principal_is_refused(realm: MemoryRealm, cred: Credential, fake_redis: redis.Redis,
                                                    clock: Clock, admin: RevocationList) -> None:
    admin.revoke_principal(realm.client)
    with pytest.raises(TicketRevoked) as caught:
        make(realm, fake_redis, clock).verify(realm.authorize(cred, now=clock.now).authorization, whoami())
    assert (caught.value.status_hint, str(caught.value.code)) == (401, "TICKET_REVOKED")
    assert isinstance(caught.value, TicketError)


def test_a_revoked_ticket_id_is_refused_and_others_accepted(realm: MemoryRealm, fake_redis: redis.Redis,
                                                           clock: Clock, admin: RevocationList) -> None:
    revoked, other = realm.service_ticket(), realm.service_ticket()
    admin.revoke_ticket(revoked.ticket.open(realm.service_keys).ticket_id, revoked.endtime)
    verifier = make(realm, fake_redis, clock)
    with pytest.raises(TicketRevoked):
        verifier.verify(realm.authorize(revoked).authorization, whoami())
    assert verifier.verify(realm.authorize(other).authorization, whoami()).client == realm.client


def test_a_ticket_from_a_later_login_is_accepted(realm: MemoryRealm, fake_redis: redis.Redis, clock: Clock,
                                                 admin: RevocationList) -> None:
    admin.revoke_principal(realm.client)
    clock.now += 1
    later = realm.service_ticket(now=clock.now)
    assert make(realm, fake_redis, clock).verify(realm.authorize(later, now=clock.now).authorization,
                                                 whoami()).client == realm.client


def test_a_revocation_reaches_a_running_verifier_within_one_second(realm: MemoryRealm, cred: Credential,
                                                                   fake_redis: redis.Redis, clock: Clock,
                                                                   admin: RevocationList) -> None:
    verifier = make(realm, fake_redis, clock)
    verifier.verify(realm.authorize(cred, now=clock.now).authorization, whoami())
    admin.revoke_principal(realm.client)
    clock.now += 0.9
    verifier.verify(realm.authorize(cred, now=clock.now).authorization, whoami())  # the cached copy
    clock.now += 0.1
    with pytest.raises(TicketRevoked):
        verifier.verify(realm.authorize(cred, now=clock.now).authorization, whoami())


def test_a_revoked_request_claims_no_replay_entry(realm: MemoryRealm, cred: Credential, fake_redis: redis.Redis,
                                                  clock: Clock, admin: RevocationList) -> None:
    admin.revoke_principal(realm.client)
    cache = RecordingCache()
    with pytest.raises(TicketRevoked):
        make(realm, fake_redis, clock, cache).verify(realm.authorize(cred).authorization, whoami())
    assert cache.claims == []


def test_an_unreachable_revocation_store_fails_closed(realm: MemoryRealm, cred: Credential,
                                                      dead_redis: redis.Redis, clock: Clock) -> None:
    with pytest.raises(StoreUnavailable):
        make(realm, dead_redis, clock).verify(realm.authorize(cred).authorization, whoami())


def test_the_demo_service_answers_a_revoked_ticket_with_401(realm: MemoryRealm, cred: Credential,
                                                           fake_redis: redis.Redis, clock: Clock,
                                                           admin: RevocationList) -> None:
    admin.revoke_principal(realm.client)
    demo: FlaskClient = create_demo_app(verifier=make(realm, fake_redis, clock)).test_client()
    r = demo.get("/whoami", base_url=f"http://{HOST}",
                 headers={"Authorization": realm.authorize(cred).authorization})
    assert (r.status_code, r.get_json()["error"]) == (401, "TICKET_REVOKED")
    assert 'error="TICKET_REVOKED"' in r.headers["WWW-Authenticate"]


def test_ticket_auth_consults_the_revocation_list_in_its_store(realm: MemoryRealm, cred: Credential,
                                                               real_redis: redis.Redis, redis_server: RedisProcess,
                                                               clock: Clock, tmp_path: Path) -> None:
    app = Flask(__name__)
    app.config.update(TALLY_KEYTAB=str(write_keytab(tmp_path / "api.keytab", realm.service, realm.service_keys)),
                      TALLY_REDIS_URL=redis_server.url)
    auth = TicketAuth(app, clock=clock)

    @app.get("/whoami")
    @auth.required
    def whoami_view() -> dict[str, str]:
        return {"principal": auth.principal}

    RevocationList(real_redis, realm.realm, clock).revoke_principal(realm.client)
    r = app.test_client().get("/whoami", base_url=f"http://{HOST}",
                              headers={"Authorization": realm.authorize(cred).authorization})
    assert (r.status_code, r.get_json()["error"]) == (401, "TICKET_REVOKED")


def test_ticket_auth_can_be_told_not_to_consult_it(realm: MemoryRealm, tmp_path: Path,
                                                   redis_server: RedisProcess) -> None:
    app = Flask(__name__)
    app.config.update(TALLY_KEYTAB=str(write_keytab(tmp_path / "api.keytab", realm.service, realm.service_keys)),
                      TALLY_REDIS_URL=redis_server.url, TALLY_CHECK_REVOCATION=False)
    TicketAuth(app)
    assert TicketAuth.state(app).verifier._revocation is None
