"""The AS exchange over HTTP, driven by the client's pure flow."""

from __future__ import annotations

from typing import Any

import redis
from flask.testing import FlaskClient

from kdc.master_key import MasterKey
from tally_protocol.codes import TicketFlags
from tally_protocol.crypto import derive_password_key
from tally_protocol.encoding import b64encode
from tally_protocol.keys import PasswordParams
from tally_protocol.principal import Principal
from tests.kdc.conftest import REALM, T0, FixedClock, Realm, make_realm
from tests.kdc.wire import answer, login, post, send_as

WRONG = bytes(32)


def test_client_with_its_key_file_gets_a_tgt(realm: Realm) -> None:
    tgt = login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    assert tgt.client == realm.alice and tgt.service == Principal.tgs(REALM)
    assert tgt.flags & TicketFlags.INITIAL and tgt.flags & TicketFlags.FORWARD_SECRET
    part = tgt.ticket.open(realm.db.keyset(Principal.tgs(REALM)))
    assert part.client == realm.alice and part.session_key == tgt.session_key


def test_tgt_lifetimes_follow_the_realm_policy(realm: Realm) -> None:
    tgt = login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    assert tgt.endtime == T0 + 10 * 3600
    assert tgt.renew_till == T0 + 7 * 86400 and tgt.flags & TicketFlags.RENEWABLE


def test_configured_tgt_lifetime_is_used(fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock,
                                         tmp_path: Any) -> None:
    r = make_realm(fake_redis, master_key, clock, tmp_path, TALLY_TGT_LIFETIME_S=600, TALLY_RENEWABLE_LIFETIME_S=0)
    tgt = login(r.http, r.alice, r.alice_keys.current.material, now=T0)
    assert tgt.endtime == T0 + 600 and not tgt.flags & TicketFlags.RENEWABLE


def test_password_client_logs_in_with_parameters_from_the_kdc(realm: Realm) -> None:
    realm.db.add_client("bob", password="correct horse")
    params = PasswordParams.from_dict(post(realm.http, "/v1/as/params", {"principal": f"bob@{REALM}"}).get_json())
    material = derive_password_key("correct horse", params)
    assert login(realm.http, Principal("bob", REALM), material, now=T0).client == Principal("bob", REALM)


def test_params_for_unknown_and_key_file_names_have_the_real_shape(realm: Realm) -> None:
    realm.db.add_client("bob", password="pw")
    answers = [post(realm.http, "/v1/as/params", {"principal": n}) for n in (f"bob@{REALM}", "alice", "ghost")]
    assert [a.status_code for a in answers] == [200, 200, 200]
    bodies = [a.get_json() for a in answers]
    assert len({frozenset(b) for b in bodies}) == 1
    assert all(len(PasswordParams.from_dict(b).salt) == 16 for b in bodies)
    assert post(realm.http, "/v1/as/params", {"principal": "ghost"}).get_json() == bodies[2]


def refusal(response: Any) -> tuple[int, set[str], str, set[str]]:
    body = response.get_json()
    return response.status_code, set(body), body["error"], set(response.headers.keys()) - {"Content-Length"}


def test_wrong_key_and_unknown_principal_get_the_same_refusal(realm: Realm) -> None:
    _, wrong_key = send_as(realm.http, realm.alice, WRONG, now=T0)
    _, unknown = send_as(realm.http, Principal("ghost", REALM), WRONG, now=T0)
    assert refusal(wrong_key) == refusal(unknown) == (401, {"error", "message", "request_id"}, "PREAUTH_FAILED",
                                                       {"Content-Type", "X-Request-Id"})
    assert answer(wrong_key) == answer(unknown)


def test_service_and_tgs_names_cannot_log_in_as_unknown_does(realm: Realm) -> None:
    _, tgs = send_as(realm.http, Principal.tgs(REALM), WRONG, now=T0)
    assert tgs.get_json()["error"] == "PREAUTH_FAILED"


def test_disabled_client_is_refused_after_proving_its_key(realm: Realm) -> None:
    realm.db.disable("alice")
    _, response = send_as(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    assert (response.status_code, response.get_json()["error"]) == (403, "PRINCIPAL_DISABLED")


def test_disabled_status_is_not_revealed_without_the_key(realm: Realm) -> None:
    realm.db.disable("alice")
    _, response = send_as(realm.http, realm.alice, WRONG, now=T0)
    assert response.get_json()["error"] == "PREAUTH_FAILED"


def fail_times(http: FlaskClient, client: Principal, n: int) -> list[str]:
    return [send_as(http, client, WRONG, now=T0)[1].get_json()["error"] for _ in range(n)]


def test_client_is_locked_out_after_repeated_failures(realm: Realm) -> None:
    assert fail_times(realm.http, realm.alice, 3) == ["PREAUTH_FAILED"] * 3
    _, response = send_as(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    assert (response.status_code, response.get_json()["error"]) == (429, "LOCKED_OUT")
    assert response.get_json()["retry_after"] == 900 and response.headers["Retry-After"] == "900"


def test_unknown_names_are_locked_out_the_same_way(realm: Realm) -> None:
    ghost = Principal("ghost", REALM)
    assert fail_times(realm.http, ghost, 4) == ["PREAUTH_FAILED"] * 3 + ["LOCKED_OUT"]


def test_lockout_lifts_after_its_duration(realm: Realm) -> None:
    fail_times(realm.http, realm.alice, 3)
    realm.clock.advance(900)
    login(realm.http, realm.alice, realm.alice_keys.current.material, now=realm.clock.now)


def test_successful_login_resets_the_failure_count(realm: Realm) -> None:
    fail_times(realm.http, realm.alice, 2)
    login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    assert fail_times(realm.http, realm.alice, 2) == ["PREAUTH_FAILED"] * 2
    login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)


def test_replayed_as_request_is_rejected(realm: Realm) -> None:
    pending, first = send_as(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    assert first.status_code == 200
    again = post(realm.http, "/v1/as", {"as_req": b64encode(pending.request_bytes)})
    assert (again.status_code, again.get_json()["error"]) == (401, "REPLAY_DETECTED")


def test_clock_skew_is_reported_with_the_server_time(realm: Realm) -> None:
    _, response = send_as(realm.http, realm.alice, realm.alice_keys.current.material, now=T0 - 301)
    body = response.get_json()
    assert (response.status_code, body["error"], body["server_time"]) == (401, "CLOCK_SKEW", int(T0))


def test_skew_within_the_limit_is_accepted(realm: Realm) -> None:
    login(realm.http, realm.alice, realm.alice_keys.current.material, now=T0 + 300)


def test_clients_of_another_realm_are_refused(realm: Realm) -> None:
    _, response = send_as(realm.http, Principal("alice", "OTHER.TEST"), WRONG, now=T0)
    assert response.get_json()["error"] == "WRONG_REALM"


def test_rate_limit_applies_per_client_address(fake_redis: redis.Redis, master_key: MasterKey,
                                               clock: FixedClock, tmp_path: Any) -> None:
    r = make_realm(fake_redis, master_key, clock, tmp_path, TALLY_RATE_LIMIT_REQUESTS=2)
    codes = [send_as(r.http, r.alice, WRONG, now=T0, address="127.0.0.2")[1].status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    limited = send_as(r.http, r.alice, WRONG, now=T0, address="127.0.0.2")[1]
    assert limited.get_json()["error"] == "RATE_LIMITED" and limited.headers["Retry-After"] == "1"
    assert send_as(r.http, r.alice, WRONG, now=T0, address="127.0.0.3")[1].status_code == 401
    clock.advance(1)
    assert send_as(r.http, r.alice, WRONG, now=clock.now, address="127.0.0.2")[1].status_code == 401


def test_after_rotation_only_the_new_client_key_logs_in(realm: Realm) -> None:
    new = realm.db.rotate("alice").current
    login(realm.http, realm.alice, new.material, now=T0)
    _, old = send_as(realm.http, realm.alice, realm.alice_keys.current.material, now=T0)
    assert old.get_json()["error"] == "PREAUTH_FAILED"
