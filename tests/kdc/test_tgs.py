"""The TGS exchange over HTTP: service tickets and renewal."""

from __future__ import annotations

import os
from typing import Any

import redis

from client_sdk.flow import make_ap_request
from kdc.master_key import MasterKey
from tally_protocol.binding import RequestBinding
from tally_protocol.codes import TicketFlags
from tally_protocol.encoding import b64encode
from tally_protocol.messages import parse_authorization
from tally_protocol.principal import Principal
from tally_protocol.verify import verify_ap_request
from tests.kdc.conftest import REALM, T0, FixedClock, Realm, make_realm
from tests.kdc.wire import get_ticket, login, post, send_tgs


def tgt_for(realm: Realm, *, renewable: bool = True) -> Any:
    return login(realm.http, realm.alice, realm.alice_keys.current.material, now=realm.clock.now,
                 renewable=renewable)


def error_of(response: Any) -> tuple[int, str]:
    return response.status_code, response.get_json()["error"]


def test_service_ticket_verifies_at_the_service(realm: Realm) -> None:
    ticket = get_ticket(realm.http, tgt_for(realm), realm.api, now=T0)
    assert ticket.service == realm.api and ticket.client == realm.alice
    binding = RequestBinding.for_http("GET", "api.example.test", "/whoami", b"")
    ctx = make_ap_request(ticket, binding, now=T0, rng=os.urandom)
    verified = verify_ap_request(parse_authorization(ctx.authorization), service=realm.api,
                                 keyset=realm.api_keys, binding=binding, now=T0)
    assert verified.client == realm.alice


def test_disabled_client_with_a_valid_tgt_gets_no_service_ticket(realm: Realm) -> None:
    tgt = tgt_for(realm)
    realm.db.disable("alice")
    _, response = send_tgs(realm.http, tgt, realm.api, now=T0)
    assert error_of(response) == (403, "PRINCIPAL_DISABLED")


def test_deleted_client_with_a_valid_tgt_gets_no_service_ticket(realm: Realm) -> None:
    tgt = tgt_for(realm)
    realm.db.delete("alice")
    _, response = send_tgs(realm.http, tgt, realm.api, now=T0)
    assert error_of(response) == (403, "PRINCIPAL_DISABLED")


def test_unknown_service_is_refused(realm: Realm) -> None:
    _, response = send_tgs(realm.http, tgt_for(realm), Principal("nope", REALM), now=T0)
    assert error_of(response) == (404, "UNKNOWN_SERVICE")


def test_a_client_principal_is_not_a_service(realm: Realm) -> None:
    realm.db.add_client("bob")
    _, response = send_tgs(realm.http, tgt_for(realm), Principal("bob", REALM), now=T0)
    assert error_of(response) == (404, "UNKNOWN_SERVICE")


def test_disabled_service_gets_no_tickets(realm: Realm) -> None:
    realm.db.disable("api")
    _, response = send_tgs(realm.http, tgt_for(realm), realm.api, now=T0)
    assert error_of(response) == (403, "PRINCIPAL_DISABLED")


def test_expired_tgt_is_refused_with_ticket_expired(realm: Realm) -> None:
    tgt = tgt_for(realm)
    realm.clock.advance(10 * 3600)
    _, response = send_tgs(realm.http, tgt, realm.api, now=realm.clock.now)
    assert error_of(response) == (401, "TICKET_EXPIRED")


def test_replayed_tgs_request_is_rejected(realm: Realm) -> None:
    pending, first = send_tgs(realm.http, tgt_for(realm), realm.api, now=T0)
    assert first.status_code == 200
    again = post(realm.http, "/v1/tgs", {"tgs_req": b64encode(pending.request_bytes)})
    assert error_of(again) == (401, "REPLAY_DETECTED")


def test_renewal_extends_a_renewable_tgt(realm: Realm) -> None:
    tgt = tgt_for(realm)
    realm.clock.advance(9 * 3600)
    renewed = get_ticket(realm.http, tgt, Principal.tgs(REALM), now=realm.clock.now, renew=True)
    assert renewed.endtime == realm.clock.now + 10 * 3600 > tgt.endtime
    assert renewed.renew_till == tgt.renew_till and renewed.flags & TicketFlags.RENEWABLE
    assert get_ticket(realm.http, renewed, realm.api, now=realm.clock.now).client == realm.alice


def test_renewal_of_a_non_renewable_tgt_is_refused(realm: Realm) -> None:
    tgt = tgt_for(realm, renewable=False)
    _, response = send_tgs(realm.http, tgt, Principal.tgs(REALM), now=T0, renew=True)
    assert error_of(response) == (403, "POLICY_REFUSED")


def test_renewal_never_reaches_past_the_renewable_life(fake_redis: redis.Redis, master_key: MasterKey,
                                                       clock: FixedClock, tmp_path: Any) -> None:
    r = make_realm(fake_redis, master_key, clock, tmp_path, TALLY_RENEWABLE_LIFETIME_S=12 * 3600)
    tgt = login(r.http, r.alice, r.alice_keys.current.material, now=T0)
    clock.advance(9 * 3600)
    renewed = get_ticket(r.http, tgt, Principal.tgs(REALM), now=clock.now, renew=True)
    assert renewed.endtime == tgt.renew_till == T0 + 12 * 3600


def test_a_service_ticket_cannot_be_renewed(realm: Realm) -> None:
    tgt = tgt_for(realm)
    _, response = send_tgs(realm.http, tgt, realm.api, now=T0, renew=True)
    assert error_of(response) == (403, "POLICY_REFUSED")


def test_service_ticket_never_outlives_the_tgt(realm: Realm) -> None:
    tgt = tgt_for(realm)
    realm.clock.advance(8 * 3600)
    ticket = get_ticket(realm.http, tgt, realm.api, now=realm.clock.now)
    assert ticket.endtime == tgt.endtime < realm.clock.now + 10 * 3600


def test_tgt_issued_before_a_krbtgt_rotation_keeps_working(realm: Realm) -> None:
    tgt = tgt_for(realm)
    realm.db.rotate(Principal.tgs(REALM))
    assert get_ticket(realm.http, tgt, realm.api, now=T0).service == realm.api
    assert tgt_for(realm).ticket.kvno == 2


def test_service_ticket_is_sealed_under_the_current_service_key(realm: Realm) -> None:
    keys = realm.db.rotate("api")
    ticket = get_ticket(realm.http, tgt_for(realm), realm.api, now=T0)
    assert ticket.ticket.kvno == keys.current.kvno == 2


def test_tgs_works_against_real_redis(real_redis: redis.Redis, master_key: MasterKey, clock: FixedClock,
                                      tmp_path: Any) -> None:
    r = make_realm(real_redis, master_key, clock, tmp_path)
    tgt = login(r.http, r.alice, r.alice_keys.current.material, now=T0)
    pending, first = send_tgs(r.http, tgt, r.api, now=T0)
    assert first.status_code == 200
    assert error_of(post(r.http, "/v1/tgs", {"tgs_req": b64encode(pending.request_bytes)})) == (401, "REPLAY_DETECTED")
