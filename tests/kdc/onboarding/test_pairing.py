"""PIN pairing at the KDC: one guess per attempt, nothing revealed by a wrong code, exhaustion, delivery."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from kdc.master_key import MasterKey
from kdc.pairing import Pairings
from tally_protocol.encoding import b64encode
from tally_protocol.errors import InvalidRequest, PairingFailed, PolicyRefused
from tally_protocol.messages.pairing import PairFinish
from tally_protocol.pairing import confirm_pairing, start_pairing
from tally_protocol.principal import Principal
from tests.kdc.conftest import REALM, AuditCapture, FixedClock, Realm, make_realm
from tests.kdc.onboarding.device import error_of, pair, pair_finish, pair_start, paired_keys
from tests.kdc.wire import answer, login

FAILED = (401, "PAIRING_FAILED")


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**8:08d}"


def events(audit: AuditCapture, name: str) -> list[dict[str, Any]]:
    return [e for e in audit.events if e.get("event") == name]


def test_right_code_delivers_a_new_key_that_logs_in(realm: Realm, pairings: Pairings) -> None:
    code = pairings.open(realm.alice)
    keyset = paired_keys(realm.http, realm.alice, code.code)
    assert keyset.versions == [2]
    assert login(realm.http, realm.alice, keyset.current.material, now=realm.clock()).client == realm.alice


def test_code_is_eight_digits_shown_in_two_groups(realm: Realm, pairings: Pairings) -> None:
    code = pairings.open(realm.alice)
    assert len(code.code) == 8 and code.code.isascii() and code.code.isdigit()
    assert code.display == f"{code.code[:4]} {code.code[4:]}"
    assert code.code not in repr(code)


def test_success_closes_the_pairing(realm: Realm, pairings: Pairings) -> None:
    code = pairings.open(realm.alice)
    paired_keys(realm.http, realm.alice, code.code)
    assert error_of(pair(realm.http, realm.alice, code.code)[1]) == FAILED


def test_wrong_code_gives_the_same_answers_as_an_unknown_principal(realm: Realm, pairings: Pairings) -> None:
    code = pairings.open(realm.alice)
    confirmed_wrong, start_wrong = pair_start(realm.http, realm.alice, wrong(code.code))
    confirmed_unknown, start_unknown = pair_start(realm.http, Principal("nobody", REALM), code.code)
    assert (start_wrong.status_code, sorted(start_wrong.get_json())) == (
        start_unknown.status_code, sorted(start_unknown.get_json()))
    finish_wrong = pair_finish(realm.http, confirmed_wrong)
    finish_unknown = pair_finish(realm.http, confirmed_unknown)
    assert (finish_wrong.status_code, answer(finish_wrong)) == (finish_unknown.status_code, answer(finish_unknown))
    assert error_of(finish_wrong) == FAILED


def test_wrong_code_and_closed_pairing_give_the_same_answer(realm: Realm, pairings: Pairings) -> None:
    code = pairings.open(realm.alice)
    wrong_answer = pair(realm.http, realm.alice, wrong(code.code))[1]
    pairings.close(realm.alice)
    closed_answer = pair(realm.http, realm.alice, code.code)[1]
    assert (wrong_answer.status_code, answer(wrong_answer)) == (closed_answer.status_code, answer(closed_answer))


class CountingRedis(redis.Redis):
    """Counts the commands sent, to show two refusals cost the same store work."""

    def __init__(self, inner: redis.Redis) -> None:
        super().__init__(connection_pool=inner.connection_pool)
        self.commands: list[str] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands.append(str(args[0]))
        return super().execute_command(*args, **options)


def test_wrong_code_and_unknown_principal_cost_the_same_store_commands(real_redis: redis.Redis,
                                                                       master_key: MasterKey, clock: FixedClock,
                                                                       tmp_path: Path) -> None:
    store = CountingRedis(real_redis)
    realm = make_realm(real_redis, master_key, clock, tmp_path)
    pairings = Pairings(store, REALM, realm.db, clock)
    code = pairings.open(realm.alice)

    def run(principal: Principal, guess: str) -> list[str]:
        store.commands.clear()
        device = start_pairing(principal, guess, os.urandom)
        challenge = pairings.start(device.start)
        confirmed = confirm_pairing(device, challenge.to_bytes())
        with pytest.raises(PairingFailed):
            pairings.finish(confirmed.finish)
        return list(store.commands)

    counted = run(realm.alice, wrong(code.code))
    # The one difference: a counted attempt decrements where a decoy run reads the same key.
    assert counted == [c.replace("EXISTS", "DECRBY") for c in run(Principal("nobody", REALM), code.code)]
    assert "DECRBY" in counted


def test_attempts_run_out_after_wrong_codes_and_close_the_pairing(realm: Realm, pairings: Pairings,
                                                                  audit_events: AuditCapture) -> None:
    code = pairings.open(realm.alice, attempts=3)
    for _ in range(3):
        assert error_of(pair(realm.http, realm.alice, wrong(code.code))[1]) == FAILED
    assert [e["outcome"] for e in events(audit_events, "pairing.close")] == ["exhausted"]
    assert error_of(pair(realm.http, realm.alice, code.code)[1]) == FAILED  # the right code comes too late
    assert realm.db.get(realm.alice).kvnos == [1]


def test_starts_past_the_attempts_close_the_pairing_even_without_finishing(realm: Realm, pairings: Pairings,
                                                                          audit_events: AuditCapture) -> None:
    code = pairings.open(realm.alice, attempts=2)
    runs = [pair_start(realm.http, realm.alice, code.code)[0] for _ in range(3)]
    assert [e.get("attempts_left") for e in events(audit_events, "pairing.start")] == [1, 0, None]
    assert [e["outcome"] for e in events(audit_events, "pairing.close")] == ["exhausted"]
    assert error_of(pair_finish(realm.http, runs[0])) == FAILED  # the pairing is closed under the earlier runs


def test_attempts_decrement_atomically_under_concurrent_starts(real_redis: redis.Redis, master_key: MasterKey,
                                                               clock: FixedClock, tmp_path: Path,
                                                               audit_events: AuditCapture) -> None:
    realm = make_realm(real_redis, master_key, clock, tmp_path)
    pairings = Pairings(real_redis, REALM, realm.db, clock)
    code = pairings.open(realm.alice, attempts=5)
    barrier = threading.Barrier(12)

    def start() -> None:
        device = start_pairing(realm.alice, code.code, os.urandom)
        barrier.wait()
        pairings.start(device.start)

    threads = [threading.Thread(target=start) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts = events(audit_events, "pairing.start")
    assert sorted(e["attempts_left"] for e in starts if e["outcome"] == "attempt") == [0, 1, 2, 3, 4]
    assert sum(e["outcome"] == "refused" for e in starts) == 7


def test_confirmation_mac_is_checked(realm: Realm, pairings: Pairings) -> None:
    code = pairings.open(realm.alice)
    confirmed, _ = pair_start(realm.http, realm.alice, code.code)
    flipped = bytes([confirmed.finish.confirmation[0] ^ 1]) + confirmed.finish.confirmation[1:]
    forged = replace(confirmed.finish, confirmation=flipped)
    assert error_of(pair_finish(realm.http, confirmed, forged.to_bytes())) == FAILED


def test_a_run_checks_only_one_confirmation(realm: Realm, pairings: Pairings) -> None:
    code = pairings.open(realm.alice)
    confirmed, _ = pair_start(realm.http, realm.alice, code.code)
    assert error_of(pair_finish(realm.http, confirmed, PairFinish(confirmed.finish.pairing_id,
                                                                  bytes(32)).to_bytes())) == FAILED
    assert error_of(pair_finish(realm.http, confirmed)) == FAILED  # the right confirmation, but the run is spent


def test_pairing_expires_on_the_injected_clock(realm: Realm, pairings: Pairings) -> None:
    code = pairings.open(realm.alice, ttl_s=600)
    realm.clock.advance(600)
    assert error_of(pair(realm.http, realm.alice, code.code)[1]) == FAILED


def test_a_run_left_unfinished_expires(realm: Realm, pairings: Pairings) -> None:
    code = pairings.open(realm.alice)
    confirmed, _ = pair_start(realm.http, realm.alice, code.code)
    realm.clock.advance(121)
    assert error_of(pair_finish(realm.http, confirmed)) == FAILED


def test_reopening_replaces_the_code_and_voids_runs_of_the_old_one(realm: Realm, pairings: Pairings) -> None:
    old = pairings.open(realm.alice)
    confirmed, _ = pair_start(realm.http, realm.alice, old.code)
    new = pairings.open(realm.alice)
    assert error_of(pair_finish(realm.http, confirmed)) == FAILED
    if new.code != old.code:
        assert error_of(pair(realm.http, realm.alice, old.code)[1]) == FAILED
    assert paired_keys(realm.http, realm.alice, new.code).versions == [2]


def test_code_is_never_stored_in_clear(realm: Realm, pairings: Pairings, fake_redis: redis.Redis) -> None:
    code = pairings.open(realm.alice)
    pair_start(realm.http, realm.alice, code.code)
    for key in fake_redis.keys("*"):
        assert code.code.encode() not in key + (fake_redis.dump(key) or b"")


def test_outcomes_are_audited_without_the_code(realm: Realm, pairings: Pairings, audit_events: AuditCapture) -> None:
    code = pairings.open(realm.alice)
    pair(realm.http, realm.alice, wrong(code.code))
    paired_keys(realm.http, realm.alice, code.code)
    finishes = [(e["outcome"], e.get("reason")) for e in events(audit_events, "pairing.finish")]
    assert finishes == [("refused", "wrong_code"), ("success", None)]
    assert not any(code.code in line for line in audit_events.lines)


def test_services_and_password_clients_cannot_pair(realm: Realm, pairings: Pairings) -> None:
    realm.db.add_client("bob", password="correct horse")
    for name in ("api", "bob"):
        with pytest.raises(PolicyRefused):
            pairings.open(Principal(name, REALM))


@pytest.mark.parametrize(("ttl", "attempts"), [(0, 5), (86401, 5), (600, 0), (600, 21)])
def test_limits_out_of_range_are_refused(realm: Realm, pairings: Pairings, ttl: int, attempts: int) -> None:
    with pytest.raises(InvalidRequest):
        pairings.open(realm.alice, ttl_s=ttl, attempts=attempts)


@pytest.mark.parametrize(("path", "body"), [("/v1/pair/start", {"pair_start": "!!"}),
                                            ("/v1/pair/finish", {"pair_finish": "AQ"}),
                                            ("/v1/pair/start", {})])
def test_bad_pairing_bodies_are_400(realm: Realm, path: str, body: object) -> None:
    assert realm.http.post(path, json=body).status_code == 400


def test_start_with_an_invalid_spake2_element_is_400(realm: Realm, pairings: Pairings) -> None:
    pairings.open(realm.alice)
    start = start_pairing(realm.alice, "12345678", os.urandom).start
    bad = replace(start, message=b"A" + bytes(32))  # not a point of the group's prime-order subgroup
    response = realm.http.post("/v1/pair/start", json={"pair_start": b64encode(bad.to_bytes())})
    assert error_of(response) == (400, "MALFORMED_MESSAGE")


def test_outstanding_lists_open_pairings_with_attempts_left_and_never_the_code(realm: Realm,
                                                                               pairings: Pairings) -> None:
    realm.db.add_client("bob")
    code = pairings.open(realm.alice, attempts=3)
    pairings.open(Principal("bob", REALM), ttl_s=30)
    pair(realm.http, realm.alice, wrong(code.code))
    realm.clock.advance(31)  # bob's pairing has expired
    listed = pairings.outstanding()
    assert [(o.principal, o.attempts_left) for o in listed] == [(realm.alice, 2)]
    assert code.code not in repr(listed)


def test_closed_pairing_is_no_longer_listed(realm: Realm, pairings: Pairings, audit_events: AuditCapture) -> None:
    pairings.open(realm.alice)
    assert pairings.close(realm.alice) and not pairings.close(realm.alice)
    assert pairings.outstanding() == []
    assert [e["outcome"] for e in events(audit_events, "pairing.close")] == ["cancelled"]
