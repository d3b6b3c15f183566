"""Enrollment tokens at the KDC: single use, interception made visible, expiry, storage and delivery."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path

import fakeredis
import pytest
import redis

from kdc.enrollment import EnrollmentTokens, enrollment_id
from kdc.master_key import MasterKey
from tally_protocol.codes import KeyUsage
from tally_protocol.crypto import derive_onboarding_key, mac
from tally_protocol.enrollment import TokenSecrets, finish_enrollment, parse_token, start_enrollment
from tally_protocol.errors import (
    EnrollmentInvalid,
    IntegrityError,
    InvalidRequest,
    NotFound,
    PolicyRefused,
    PrincipalDisabled,
    StoreUnavailable,
)
from tally_protocol.messages.enrollment import EnrollRequest
from tally_protocol.principal import Principal
from tests.kdc.conftest import REALM, AuditCapture, FixedClock, Realm, make_realm
from tests.kdc.onboarding.device import error_of, reply_bytes, resend_enroll, send_enroll
from tests.kdc.wire import answer, login, send_as

INVALID = (401, "ENROLLMENT_INVALID")


def redeem_events(audit: AuditCapture) -> list[dict[str, object]]:
    return [e for e in audit.events if e.get("event") == "enrollment.redeem"]


def test_token_delivers_a_new_key_that_logs_in(realm: Realm, tokens: EnrollmentTokens) -> None:
    pending, response = send_enroll(realm.http, tokens.create(realm.alice))
    principal, keyset = finish_enrollment(pending, reply_bytes(response, "enroll_rep"))
    assert principal == realm.alice and keyset.versions == [2]
    tgt = login(realm.http, realm.alice, keyset.current.material, now=realm.clock())
    assert tgt.client == realm.alice


def test_enrollment_retires_the_old_key(realm: Realm, tokens: EnrollmentTokens) -> None:
    send_enroll(realm.http, tokens.create(realm.alice))
    _, response = send_as(realm.http, realm.alice, realm.alice_keys.current.material, now=realm.clock())
    assert error_of(response) == (401, "PREAUTH_FAILED")


def test_second_use_of_a_token_is_refused(realm: Realm, tokens: EnrollmentTokens) -> None:
    token = tokens.create(realm.alice)
    pending, first = send_enroll(realm.http, token)
    assert first.status_code == 200
    assert error_of(resend_enroll(realm.http, pending.request_bytes)) == INVALID
    assert error_of(send_enroll(realm.http, token)[1]) == INVALID  # a fresh request with the same token too


def test_second_use_is_audited_as_possible_interception_naming_the_principal(
    realm: Realm, tokens: EnrollmentTokens, audit_events: AuditCapture
) -> None:
    token = tokens.create(realm.alice)
    send_enroll(realm.http, token)
    send_enroll(realm.http, token)
    first, second = redeem_events(audit_events)
    assert first["outcome"] == "success"
    assert (second["outcome"], second["reason"], second["principal"]) == (
        "possible_interception", "already_used", str(realm.alice))
    assert second["enrollment_id"] == first["enrollment_id"]


def test_unknown_token_gets_the_same_answer_as_a_used_one_but_a_different_audit(
    realm: Realm, tokens: EnrollmentTokens, audit_events: AuditCapture
) -> None:
    token = tokens.create(realm.alice)
    send_enroll(realm.http, token)
    used = send_enroll(realm.http, token)[1]
    unknown = send_enroll(realm.http, "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA")[1]
    assert (unknown.status_code, answer(unknown)) == (used.status_code, answer(used))
    assert [(e["outcome"], e["reason"]) for e in redeem_events(audit_events)[1:]] == [
        ("possible_interception", "already_used"), ("refused", "unknown")]


def test_token_expires_on_the_injected_clock(realm: Realm, tokens: EnrollmentTokens,
                                             audit_events: AuditCapture) -> None:
    token = tokens.create(realm.alice, ttl_s=600)
    realm.clock.advance(600)
    assert error_of(send_enroll(realm.http, token)[1]) == INVALID
    assert error_of(send_enroll(realm.http, token)[1]) == INVALID
    outcomes = [(e["outcome"], e["reason"]) for e in redeem_events(audit_events)]
    assert outcomes == [("refused", "expired"), ("refused", "expired")]  # never mistaken for an interception


def test_token_works_until_its_last_second(realm: Realm, tokens: EnrollmentTokens) -> None:
    token = tokens.create(realm.alice, ttl_s=600)
    realm.clock.advance(599)
    assert send_enroll(realm.http, token)[1].status_code == 200


def test_token_is_never_stored_in_clear(realm: Realm, tokens: EnrollmentTokens, fake_redis: redis.Redis) -> None:
    token = tokens.create(realm.alice)
    raw = parse_token(token)
    secret = TokenSecrets.derive(raw)
    forms = [raw, token.encode(), token.replace("-", "").encode(), token.lower().encode(), secret.verifier]
    for key in fake_redis.keys("*"):
        value = fake_redis.dump(key) or b""
        for form in forms:
            assert form not in key and form not in value, key


def test_delivered_key_opens_only_with_the_device_private_key_and_the_token(
    realm: Realm, tokens: EnrollmentTokens
) -> None:
    pending = start_enrollment(parse_token(tokens.create(realm.alice)), os.urandom(32))
    reply = reply_bytes(resend_enroll(realm.http, pending.request_bytes), "enroll_rep")
    with pytest.raises(IntegrityError):  # an eavesdropper who even knew the token
        finish_enrollment(replace(pending, device_private=os.urandom(32)), reply)
    with pytest.raises(IntegrityError):  # the device's key without the token
        finish_enrollment(replace(pending, verifier=TokenSecrets.derive(os.urandom(20)).verifier), reply)
    assert finish_enrollment(pending, reply)[0] == realm.alice


def test_wrong_proof_is_refused_and_leaves_the_token_unspent(realm: Realm, tokens: EnrollmentTokens,
                                                             audit_events: AuditCapture) -> None:
    token = tokens.create(realm.alice)
    pending = start_enrollment(parse_token(token), os.urandom(32))
    forged = replace(pending.request, proof=bytes(32))
    assert error_of(resend_enroll(realm.http, forged.to_bytes())) == INVALID
    assert redeem_events(audit_events)[-1]["reason"] == "bad_proof"
    assert resend_enroll(realm.http, pending.request_bytes).status_code == 200


def test_captured_request_cannot_be_pointed_at_another_device_key(realm: Realm, tokens: EnrollmentTokens) -> None:
    pending = start_enrollment(parse_token(tokens.create(realm.alice)), os.urandom(32))
    attacker = start_enrollment(os.urandom(20), os.urandom(32))
    stolen = replace(pending.request, device_public=attacker.request.device_public)
    assert error_of(resend_enroll(realm.http, stolen.to_bytes())) == INVALID
    assert resend_enroll(realm.http, pending.request_bytes).status_code == 200


def test_low_order_device_key_is_refused_before_the_token_is_spent(realm: Realm, tokens: EnrollmentTokens) -> None:
    text = tokens.create(realm.alice)
    secrets = TokenSecrets.derive(parse_token(text))
    body = EnrollRequest(secrets.token_id, bytes(32), b"").body_bytes()  # the all-zero point has low order
    proof = mac(derive_onboarding_key(secrets.verifier, KeyUsage.ENROLLMENT_PROOF, body), body)
    assert error_of(resend_enroll(realm.http, EnrollRequest(secrets.token_id, bytes(32), proof).to_bytes())) == INVALID
    assert send_enroll(realm.http, text)[1].status_code == 200


def test_record_forged_in_the_store_is_refused(realm: Realm, fake_redis: redis.Redis, clock: FixedClock,
                                               tmp_path: Path, audit_events: AuditCapture) -> None:
    # Somebody who can write Redis but lacks this realm's keys plants a record for a token of their own.
    other_store = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    elsewhere = make_realm(other_store, MasterKey.generate(), clock, tmp_path)
    token = EnrollmentTokens(other_store, REALM, elsewhere.db, clock).create(elsewhere.alice)
    for key in other_store.keys("*:enroll:*"):
        fake_redis.set(key, other_store.get(key))
    assert error_of(send_enroll(realm.http, token)[1]) == INVALID
    assert redeem_events(audit_events)[-1]["reason"] == "unreadable"


def test_concurrent_redemptions_spend_a_token_once(real_redis: redis.Redis, master_key: MasterKey,
                                                   clock: FixedClock, tmp_path: Path) -> None:
    realm = make_realm(real_redis, master_key, clock, tmp_path)
    tokens = EnrollmentTokens(real_redis, REALM, realm.db, clock)
    pending = start_enrollment(parse_token(tokens.create(realm.alice)), os.urandom(32))
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def redeem() -> None:
        barrier.wait()
        try:
            tokens.redeem(pending.request)
            outcomes.append("ok")
        except EnrollmentInvalid:
            outcomes.append("refused")

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] + ["refused"] * 7
    assert realm.db.get(realm.alice).kvnos == [2]  # rotated once


@pytest.mark.parametrize(("name", "error"), [("api", PolicyRefused), ("nobody", NotFound),
                                             (f"krbtgt/{REALM}", PolicyRefused)])
def test_only_existing_clients_get_tokens(tokens: EnrollmentTokens, name: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        tokens.create(Principal(name, REALM))


def test_password_clients_get_no_token(realm: Realm, tokens: EnrollmentTokens) -> None:
    realm.db.add_client("bob", password="correct horse")
    with pytest.raises(PolicyRefused):
        tokens.create(Principal("bob", REALM))


def test_disabled_client_gets_no_token(realm: Realm, tokens: EnrollmentTokens) -> None:
    realm.db.disable(realm.alice)
    with pytest.raises(PrincipalDisabled):
        tokens.create(realm.alice)


def test_client_disabled_after_the_token_was_made_is_refused(realm: Realm, tokens: EnrollmentTokens) -> None:
    token = tokens.create(realm.alice)
    realm.db.disable(realm.alice)
    assert error_of(send_enroll(realm.http, token)[1]) == (403, "PRINCIPAL_DISABLED")
    assert realm.db.get(realm.alice).kvnos == [1]


@pytest.mark.parametrize("ttl", [0, -1, 7 * 86400 + 1])
def test_ttl_out_of_range_is_refused(realm: Realm, tokens: EnrollmentTokens, ttl: int) -> None:
    with pytest.raises(InvalidRequest):
        tokens.create(realm.alice, ttl_s=ttl)


def test_unreachable_store_is_store_unavailable(realm: Realm, down_redis: redis.Redis) -> None:
    tokens = EnrollmentTokens(down_redis, REALM, realm.db, realm.clock)
    with pytest.raises(StoreUnavailable):
        tokens.redeem(start_enrollment(os.urandom(20), os.urandom(32)).request)


@pytest.mark.parametrize(("body", "code"), [
    ({"enroll_req": "!!"}, "MALFORMED_MESSAGE"),
    ({"enroll_req": "AAAA"}, "UNSUPPORTED_VERSION"),
    ({}, "INVALID_REQUEST"),
    ({"enroll_req": 5}, "INVALID_REQUEST"),
])
def test_bad_enrollment_bodies_are_400(realm: Realm, body: object, code: str) -> None:
    assert error_of(realm.http.post("/v1/enroll", json=body)) == (400, code)


def test_outstanding_lists_unspent_tokens_without_the_token(realm: Realm, tokens: EnrollmentTokens) -> None:
    realm.db.add_client("bob")
    spent = tokens.create(realm.alice, ttl_s=60)
    send_enroll(realm.http, spent)
    kept = tokens.create(Principal("bob", REALM), ttl_s=300)
    tokens.create(realm.alice, ttl_s=30)
    realm.clock.advance(31)  # the 30-second token has expired
    listed = tokens.outstanding()
    assert [(e.principal.name, e.expires_at - e.created) for e in listed] == [("bob", 300)]
    assert listed[0].enrollment_id == enrollment_id(TokenSecrets.derive(parse_token(kept)).token_id)
    assert kept not in repr(listed)


def test_revoked_token_is_refused_and_audited_as_revoked(realm: Realm, tokens: EnrollmentTokens,
                                                         audit_events: AuditCapture) -> None:
    token = tokens.create(realm.alice)
    (entry,) = tokens.outstanding()
    assert tokens.revoke(entry.enrollment_id)
    assert error_of(send_enroll(realm.http, token)[1]) == INVALID
    assert (redeem_events(audit_events)[-1]["reason"], tokens.outstanding()) == ("revoked", [])
    assert not tokens.revoke(entry.enrollment_id)


def test_a_spent_token_cannot_be_revoked_and_stays_flagged(realm: Realm, tokens: EnrollmentTokens,
                                                           audit_events: AuditCapture) -> None:
    token = tokens.create(realm.alice)
    (entry,) = tokens.outstanding()
    send_enroll(realm.http, token)
    assert not tokens.revoke(entry.enrollment_id) and not tokens.revoke("not base64!")
    send_enroll(realm.http, token)
    assert redeem_events(audit_events)[-1]["outcome"] == "possible_interception"
