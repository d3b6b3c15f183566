"""Verifier: the pure check, then the replay claim, last; errors say exactly why."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from client_sdk.flow import Credential
from relying_service.verifier import Verifier
from tally_protocol.binding import RequestBinding
from tally_protocol.codes import ErrorCode
from tally_protocol.errors import (
    AuthenticationRequired,
    BindingMismatch,
    ClockSkew,
    ReplayDetected,
    StoreUnavailable,
    TallyError,
    TicketExpired,
    TicketNotYetValid,
    UnknownKeyVersion,
    WrongRealm,
    WrongService,
)
from tally_protocol.keys import Keyset
from tally_protocol.principal import Principal
from tally_runtime.keytab_file import write_keytab
from tally_runtime.replay_cache import RedisReplayCache
from tests.relying_service.memory_realm import HOST, NOW, MakeVerifier, MemoryRealm, new_key
from tests.relying_service.recording_cache import RecordingCache
from tests.support.redis_proc import RedisProcess


def whoami() -> RequestBinding:
    return RequestBinding.for_http("GET", HOST, "/whoami", b"")


def test_valid_request_is_verified_as_the_client(realm: MemoryRealm, cred: Credential,
                                                 make_verifier: MakeVerifier) -> None:
    verified = make_verifier().verify(realm.authorize(cred).authorization, whoami())
    assert (verified.client, verified.service) == (realm.client, realm.service)


def test_valid_request_claims_its_replay_key_once(realm: MemoryRealm, cred: Credential,
                                                  make_verifier: MakeVerifier) -> None:
    cache = RecordingCache()
    verified = make_verifier(cache).verify(realm.authorize(cred).authorization, whoami())
    assert cache.claims == [(verified.replay_key, verified.replay_ttl_ms)]


def test_replayed_request_is_rejected_with_replay_code(realm: MemoryRealm, cred: Credential,
                                                       make_verifier: MakeVerifier) -> None:
    verifier, header = make_verifier(), realm.authorize(cred).authorization
    verifier.verify(header, whoami())
    with pytest.raises(ReplayDetected) as caught:
        verifier.verify(header, whoami())
    assert caught.value.code == ErrorCode.REPLAY_DETECTED


def test_replay_to_another_replica_sharing_redis_is_rejected(realm: MemoryRealm, cred: Credential,
                                                             make_verifier: MakeVerifier,
                                                             real_redis: redis.Redis,
                                                             redis_server: RedisProcess) -> None:
    RedisReplayCache(real_redis).seed(birth=0)  # a long-running store
    replica_a = make_verifier(RedisReplayCache(real_redis))
    replica_b = make_verifier(RedisReplayCache(redis.Redis.from_url(redis_server.url)))  # its own connections
    header = realm.authorize(cred).authorization
    replica_a.verify(header, whoami())
    with pytest.raises(ReplayDetected):
        replica_b.verify(header, whoami())


def test_two_requests_with_one_ticket_are_both_accepted(realm: MemoryRealm, cred: Credential,
                                                        make_verifier: MakeVerifier) -> None:
    verifier = make_verifier()
    verifier.verify(realm.authorize(cred).authorization, whoami())
    assert verifier.verify(realm.authorize(cred).authorization, whoami()).client == realm.client


@pytest.mark.parametrize(
    ("component", "server_binding"),
    [
        ("method", RequestBinding.for_http("DELETE", HOST, "/echo", b"pay 10")),
        ("host", RequestBinding.for_http("POST", "evil.example.test", "/echo", b"pay 10")),
        ("path", RequestBinding.for_http("POST", HOST, "/echo?to=mallory", b"pay 10")),
        ("body", RequestBinding.for_http("POST", HOST, "/echo", b"pay 10000")),
    ],
)
def test_tampered_request_is_rejected_naming_the_component(realm: MemoryRealm, cred: Credential,
                                                           make_verifier: MakeVerifier, component: str,
                                                           server_binding: RequestBinding) -> None:
    header = realm.authorize(cred, "POST", "/echo", b"pay 10").authorization
    with pytest.raises(BindingMismatch) as caught:
        make_verifier().verify(header, server_binding)
    assert caught.value.data["component"] == component


def test_tampered_request_does_not_reach_the_store(realm: MemoryRealm, cred: Credential,
                                                   make_verifier: MakeVerifier) -> None:
    cache = RecordingCache()
    with pytest.raises(BindingMismatch):
        make_verifier(cache).verify(realm.authorize(cred, path="/admin").authorization, whoami())
    assert cache.claims == []


def test_expired_ticket_is_rejected(realm: MemoryRealm, make_verifier: MakeVerifier) -> None:
    cred = realm.forge_ticket(starttime=NOW - 7200, endtime=NOW - 3600)
    with pytest.raises(TicketExpired):
        make_verifier().verify(realm.authorize(cred).authorization, whoami())


def test_ticket_not_yet_valid_is_rejected(realm: MemoryRealm, make_verifier: MakeVerifier) -> None:
    cred = realm.forge_ticket(starttime=NOW + 3600, endtime=NOW + 7200)
    with pytest.raises(TicketNotYetValid):
        make_verifier().verify(realm.authorize(cred).authorization, whoami())


def test_ticket_for_another_service_is_rejected_as_wrong_service(realm: MemoryRealm,
                                                                 make_verifier: MakeVerifier) -> None:
    cred = realm.forge_ticket(service=Principal("billing", realm.realm))
    with pytest.raises(WrongService):
        make_verifier().verify(realm.authorize(cred).authorization, whoami())


def test_ticket_from_another_realm_is_rejected_as_wrong_realm(realm: MemoryRealm,
                                                              make_verifier: MakeVerifier) -> None:
    cred = realm.forge_ticket(service=Principal("api", "OTHER.TEST"))
    with pytest.raises(WrongRealm):
        make_verifier().verify(realm.authorize(cred).authorization, whoami())


def test_ticket_under_an_unknown_key_version_is_rejected(realm: MemoryRealm, make_verifier: MakeVerifier) -> None:
    cred = realm.service_ticket(service_key=new_key(7))
    with pytest.raises(UnknownKeyVersion):
        make_verifier().verify(realm.authorize(cred).authorization, whoami())


def test_ticket_under_the_previous_key_version_verifies_after_rotation(realm: MemoryRealm,
                                                                       make_verifier: MakeVerifier) -> None:
    old_ticket = realm.service_ticket()
    rotated = Keyset([*realm.service_keys, new_key(2)])
    verified = make_verifier(keyset=rotated).verify(realm.authorize(old_ticket).authorization, whoami())
    assert verified.kvno == 1


def test_keyset_is_asked_for_on_every_request(realm: MemoryRealm, cred: Credential) -> None:
    # The seam for keytab reload: a callable keyset is consulted per request.
    current = [Keyset([new_key(1)])]
    verifier = Verifier(realm.service, lambda: current[0], RecordingCache(), clock=lambda: NOW)
    with pytest.raises(TallyError):
        verifier.verify(realm.authorize(cred).authorization, whoami())
    current[0] = realm.service_keys
    assert verifier.verify(realm.authorize(cred).authorization, whoami()).client == realm.client


def test_skewed_authenticator_is_rejected_with_the_server_time(realm: MemoryRealm, cred: Credential,
                                                               make_verifier: MakeVerifier) -> None:
    header = realm.authorize(cred, now=NOW - 1000).authorization
    with pytest.raises(ClockSkew) as caught:
        make_verifier().verify(header, whoami())
    assert caught.value.data["server_time"] == int(NOW)


def test_skewed_request_never_touches_the_store(realm: MemoryRealm, cred: Credential,
                                                make_verifier: MakeVerifier) -> None:
    cache = RecordingCache()
    with pytest.raises(ClockSkew):
        make_verifier(cache).verify(realm.authorize(cred, now=NOW + 1000).authorization, whoami())
    assert cache.claims == []


def test_unreachable_redis_raises_store_unavailable(realm: MemoryRealm, cred: Credential,
                                                    make_verifier: MakeVerifier, dead_redis: redis.Redis) -> None:
    with pytest.raises(StoreUnavailable):
        make_verifier(RedisReplayCache(dead_redis)).verify(realm.authorize(cred).authorization, whoami())


def test_nothing_is_accepted_while_redis_is_down(realm: MemoryRealm, cred: Credential,
                                                 make_verifier: MakeVerifier, dead_redis: redis.Redis) -> None:
    verifier = make_verifier(RedisReplayCache(dead_redis))
    outcomes = []
    for _ in range(3):
        try:
            verifier.verify(realm.authorize(cred).authorization, whoami())
            outcomes.append("accepted")
        except StoreUnavailable:
            outcomes.append("unavailable")
    assert outcomes == ["unavailable"] * 3


def test_missing_authorization_header_requires_authentication(make_verifier: MakeVerifier) -> None:
    with pytest.raises(AuthenticationRequired):
        make_verifier().verify(None, whoami())


def test_verifier_without_a_replay_cache_cannot_be_built(realm: MemoryRealm) -> None:
    with pytest.raises(TypeError):
        Verifier(realm.service, realm.service_keys, None)  # type: ignore[arg-type]


def test_reply_header_is_accepted_by_the_client_for_that_response(realm: MemoryRealm, cred: Credential,
                                                                  make_verifier: MakeVerifier) -> None:
    verifier, ctx = make_verifier(), realm.authorize(cred)
    verified = verifier.verify(ctx.authorization, whoami())
    ctx.check_reply(verifier.reply_header(verified, 200, b"ok"), status=200, body=b"ok")


def test_from_keytab_takes_the_service_principal_from_the_keytab(realm: MemoryRealm, cred: Credential,
                                                                 tmp_path: Path) -> None:
    path = write_keytab(tmp_path / "api.keytab", realm.service, realm.service_keys)
    verifier = Verifier.from_keytab(path, replay_cache=RecordingCache(), clock=lambda: NOW)
    assert verifier.service == realm.service
    assert verifier.verify(realm.authorize(cred).authorization, whoami()).client == realm.client
