"""AS and TGS exchanges in memory: client flow <-> KDC exchange <-> verifier, no HTTP.

These pin the security properties of the exchanges: pre-authentication is
bound to the request body, the AS reply is forward secret, a TGS request is
bound to its body, lifetimes nest (service ticket <= TGT <= renewable life).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from client_sdk.flow import (
    AsExchange,
    Credential,
    finish_as_exchange,
    finish_tgs_exchange,
    make_ap_request,
    start_as_exchange,
    start_tgs_exchange,
)
from kdc.exchange import PreauthChecked, TicketPolicy, check_preauth, check_tgs_request, issue_service_ticket, issue_tgt
from tally_protocol.binding import RequestBinding
from tally_protocol.codes import KeyUsage, TgsOptions, TicketFlags
from tally_protocol.crypto import unseal, x25519_public_key, x25519_shared_secret
from tally_protocol.errors import (
    BindingMismatch,
    ClockSkew,
    IntegrityError,
    MutualAuthFailed,
    PolicyRefused,
    PreauthFailed,
    TicketExpired,
    WrongRealm,
    WrongService,
)
from tally_protocol.keys import Key, Keyset
from tally_protocol.messages import (
    ApRequest,
    AsReply,
    AsRequest,
    EncTicketPart,
    TgsReply,
    TgsRequest,
    TgsRequestBody,
    Ticket,
    parse_authorization,
)
from tally_protocol.principal import Principal
from tally_protocol.replay import claim_or_reject
from tally_protocol.verify import VerifyPolicy, verify_ap_request

from .realm import ALICE, API, BINDING, NOW, OTHER_REALM, REALM, TGS, DeterministicRandom, SetReplayCache, key

HOUR = 3600
DAY = 86400
POLICY = TicketPolicy()
VERIFY = VerifyPolicy()
ALICE_KEY = Key(key("alice").material, 0)  # kvno 0: "the principal's current key"
TGS_KEYS = Keyset([key("krbtgt", 1)])
API_KEYS = Keyset([key("api", 1)])


@pytest.fixture
def rng() -> DeterministicRandom:
    return DeterministicRandom()


def _kdc_as(request_bytes: bytes, rng: DeterministicRandom, *, now: float = NOW,
            client_key: Key = ALICE_KEY) -> bytes:
    checked = check_preauth(AsRequest.from_bytes(request_bytes), client_key, now=now, verify=VERIFY)
    return issue_tgt(checked, request_bytes, client_key=client_key, tgs_key=TGS_KEYS.current,
                     policy=POLICY, now=now, rng=rng).reply.to_bytes()


def _login(rng: DeterministicRandom, *, now: float = NOW, renewable: bool = True, till: int = 0) -> Credential:
    pending = start_as_exchange(ALICE, ALICE_KEY, now=now, rng=rng, renewable=renewable, till=till)
    return finish_as_exchange(pending, _kdc_as(pending.request_bytes, rng, now=now))


def _kdc_tgs(request_bytes: bytes, rng: DeterministicRandom, *, now: float) -> bytes:
    verified, body = check_tgs_request(TgsRequest.from_bytes(request_bytes), realm=REALM, tgs_keys=TGS_KEYS,
                                       now=now, verify=VERIFY)
    service_keys = TGS_KEYS if body.service == TGS else API_KEYS
    return issue_service_ticket(verified, body, service_key=service_keys.current, policy=POLICY, now=now,
                                rng=rng).reply.to_bytes()


def _get_ticket(rng: DeterministicRandom, tgt: Credential, service: Principal = API, *, now: float = NOW,
                till: int = 0, renew: bool = False) -> Credential:
    pending = start_tgs_exchange(tgt, service, now=now, rng=rng, till=till, renew=renew)
    return finish_tgs_exchange(pending, _kdc_tgs(pending.request_bytes, rng, now=now))


def _forged(pending: AsExchange, **changes: object) -> bytes:
    """The captured AS request with body fields changed and the original PA-ENC-TIMESTAMP kept."""
    return replace(pending.request, **changes).to_bytes()  # type: ignore[arg-type]


# -- AS exchange ---------------------------------------------------------------

def test_login_yields_a_forward_secret_renewable_tgt(rng: DeterministicRandom) -> None:
    tgt = _login(rng)
    assert (tgt.client, tgt.service) == (ALICE, TGS)
    assert tgt.flags == (TicketFlags.INITIAL | TicketFlags.PRE_AUTHENTICATED | TicketFlags.FORWARD_SECRET
                         | TicketFlags.RENEWABLE)
    assert (tgt.authtime, tgt.starttime) == (int(NOW), int(NOW))
    assert tgt.endtime == int(NOW) + 10 * HOUR
    assert tgt.renew_till == int(NOW) + 7 * DAY
    part = tgt.ticket.open(TGS_KEYS)
    assert part.session_key == tgt.session_key and part.client == ALICE


def test_non_renewable_login_gets_no_renewable_life(rng: DeterministicRandom) -> None:
    tgt = _login(rng, renewable=False)
    assert not tgt.flags & TicketFlags.RENEWABLE
    assert tgt.renew_till == 0


def test_login_honours_a_shorter_requested_end(rng: DeterministicRandom) -> None:
    assert _login(rng, till=int(NOW) + HOUR).endtime == int(NOW) + HOUR


def test_login_with_an_end_in_the_past_is_refused(rng: DeterministicRandom) -> None:
    with pytest.raises(PolicyRefused):
        _login(rng, till=int(NOW) - 1)


def test_wrong_client_key_is_refused_as_preauth_failed(rng: DeterministicRandom) -> None:
    pending = start_as_exchange(ALICE, Key(key("guess").material, 0), now=NOW, rng=rng)
    with pytest.raises(PreauthFailed) as info:
        _kdc_as(pending.request_bytes, rng)
    assert info.value.status_hint == 401


def test_preauth_sealed_under_another_key_version_is_refused_as_preauth_failed(rng: DeterministicRandom) -> None:
    pending = start_as_exchange(ALICE, Key(ALICE_KEY.material, 1), now=NOW, rng=rng)
    with pytest.raises(PreauthFailed):
        _kdc_as(pending.request_bytes, rng)


@pytest.mark.parametrize("field", ["client_public", "nonce", "till", "renewable", "client"])
def test_captured_preauth_grafted_onto_an_altered_body_is_refused(rng: DeterministicRandom, field: str) -> None:
    pending = start_as_exchange(ALICE, ALICE_KEY, now=NOW, rng=rng)
    changes: dict[str, object] = {
        "client_public": x25519_public_key(rng(32)),  # the attacker's own DH key: a MITM
        "nonce": rng(16),
        "till": int(NOW) + 100 * DAY,
        "renewable": not pending.request.renewable,
        "client": Principal("mallory", REALM),
    }
    with pytest.raises(PreauthFailed):
        _kdc_as(_forged(pending, **{field: changes[field]}), rng)


def test_skewed_preauth_timestamp_is_refused_with_the_server_time(rng: DeterministicRandom) -> None:
    pending = start_as_exchange(ALICE, ALICE_KEY, now=NOW - VERIFY.max_skew_s - 1, rng=rng)
    with pytest.raises(ClockSkew) as info:
        _kdc_as(pending.request_bytes, rng)
    assert info.value.data["server_time"] == int(NOW)


def test_as_request_for_a_service_other_than_the_realms_tgs_is_refused(rng: DeterministicRandom) -> None:
    pending = start_as_exchange(ALICE, ALICE_KEY, now=NOW, rng=rng)
    forged = replace(pending.request, service=API).with_preauth(ALICE_KEY, int(NOW), nonce=rng(12))
    with pytest.raises(WrongRealm):
        _kdc_as(forged.to_bytes(), rng)


def test_replayed_as_request_has_the_same_replay_key(rng: DeterministicRandom) -> None:
    pending = start_as_exchange(ALICE, ALICE_KEY, now=NOW, rng=rng)
    req = AsRequest.from_bytes(pending.request_bytes)
    first: PreauthChecked = check_preauth(req, ALICE_KEY, now=NOW, verify=VERIFY)
    second = check_preauth(req, ALICE_KEY, now=NOW + 5, verify=VERIFY)
    cache = SetReplayCache()
    claim_or_reject(cache, first.replay_key, first.replay_ttl_ms, ctime=first.ctime, max_skew_s=VERIFY.max_skew_s)
    assert second.replay_key == first.replay_key
    assert not cache.claim(second.replay_key, second.replay_ttl_ms, ctime=second.ctime, max_skew_s=VERIFY.max_skew_s)


def test_as_reply_cannot_be_opened_with_the_long_term_key_alone(rng: DeterministicRandom) -> None:
    # Forward secrecy: an eavesdropper who later steals Alice's key holds the
    # request, the reply and the key, but not either ephemeral X25519 secret.
    pending = start_as_exchange(ALICE, ALICE_KEY, now=NOW, rng=rng)
    reply = AsReply.from_bytes(_kdc_as(pending.request_bytes, rng))
    with pytest.raises(IntegrityError):
        unseal(ALICE_KEY, KeyUsage.AS_REP_ENC_PART, reply.enc_part)
    attacker_secret = x25519_shared_secret(rng(32), reply.kdc_public)
    with pytest.raises(IntegrityError):
        reply.open(ALICE_KEY, attacker_secret, pending.request_bytes)
    real_secret = x25519_shared_secret(pending.private, reply.kdc_public)
    assert reply.open(ALICE_KEY, real_secret, pending.request_bytes).nonce == pending.request.nonce


def test_as_reply_is_bound_to_the_exact_request(rng: DeterministicRandom) -> None:
    pending = start_as_exchange(ALICE, ALICE_KEY, now=NOW, rng=rng)
    reply = AsReply.from_bytes(_kdc_as(pending.request_bytes, rng))
    secret = x25519_shared_secret(pending.private, reply.kdc_public)
    other_request = start_as_exchange(ALICE, ALICE_KEY, now=NOW, rng=rng).request_bytes
    with pytest.raises(IntegrityError):
        reply.open(ALICE_KEY, secret, other_request)


def test_as_reply_with_a_substituted_kdc_public_key_is_refused_by_the_client(rng: DeterministicRandom) -> None:
    pending = start_as_exchange(ALICE, ALICE_KEY, now=NOW, rng=rng)
    reply = AsReply.from_bytes(_kdc_as(pending.request_bytes, rng))
    mitm = replace(reply, kdc_public=x25519_public_key(rng(32)))
    with pytest.raises(MutualAuthFailed):
        finish_as_exchange(pending, mitm.to_bytes())


def test_as_reply_from_a_kdc_without_the_clients_key_is_refused(rng: DeterministicRandom) -> None:
    pending = start_as_exchange(ALICE, ALICE_KEY, now=NOW, rng=rng)
    checked = PreauthChecked(pending.request, b"\x00" * 16, 1000, int(NOW))  # a fake KDC skips pre-auth
    fake = issue_tgt(checked, pending.request_bytes, client_key=Key(key("fake").material, 0),
                     tgs_key=TGS_KEYS.current, policy=POLICY, now=NOW, rng=rng).reply
    with pytest.raises(MutualAuthFailed):
        finish_as_exchange(pending, fake.to_bytes())


def test_as_reply_to_another_request_is_refused_by_the_client(rng: DeterministicRandom) -> None:
    first = start_as_exchange(ALICE, ALICE_KEY, now=NOW, rng=rng)
    second = start_as_exchange(ALICE, ALICE_KEY, now=NOW, rng=rng)
    with pytest.raises(MutualAuthFailed):
        finish_as_exchange(second, _kdc_as(first.request_bytes, rng))


# -- TGS exchange --------------------------------------------------------------

def test_service_ticket_from_the_tgs_verifies_at_the_service(rng: DeterministicRandom) -> None:
    ticket = _get_ticket(rng, _login(rng))
    assert (ticket.client, ticket.service) == (ALICE, API)
    assert ticket.flags == TicketFlags.PRE_AUTHENTICATED | TicketFlags.FORWARD_SECRET
    assert ticket.endtime == int(NOW) + 10 * HOUR
    ctx = make_ap_request(ticket, BINDING, now=NOW, rng=rng)
    verified = verify_ap_request(parse_authorization(ctx.authorization), service=API, keyset=API_KEYS,
                                 binding=BINDING, now=NOW)
    assert verified.client == ALICE
    assert verified.ticket.authtime == int(NOW)


def test_service_ticket_never_outlives_the_tgt(rng: DeterministicRandom) -> None:
    tgt = _login(rng)
    later = NOW + 9 * HOUR
    ticket = _get_ticket(rng, tgt, now=later)
    assert ticket.starttime == int(later)
    assert ticket.endtime == tgt.endtime


def test_service_ticket_requested_beyond_the_tgt_is_capped(rng: DeterministicRandom) -> None:
    tgt = _login(rng)
    assert _get_ticket(rng, tgt, till=tgt.endtime + DAY).endtime == tgt.endtime
    assert _get_ticket(rng, tgt, till=int(NOW) + 60).endtime == int(NOW) + 60


def test_service_ticket_session_key_is_fresh(rng: DeterministicRandom) -> None:
    tgt = _login(rng)
    ticket = _get_ticket(rng, tgt)
    assert ticket.session_key != tgt.session_key
    assert ticket.renew_till == 0


def test_expired_tgt_gets_no_service_ticket(rng: DeterministicRandom) -> None:
    tgt = _login(rng)
    with pytest.raises(TicketExpired):
        _get_ticket(rng, tgt, now=tgt.endtime)


def test_altering_the_requested_service_in_a_captured_tgs_request_fails_the_binding(rng: DeterministicRandom) -> None:
    pending = start_tgs_exchange(_login(rng), API, now=NOW, rng=rng)
    captured = TgsRequest.from_bytes(pending.request_bytes)
    other = replace(pending.body, service=Principal("files", REALM)).to_bytes()
    with pytest.raises(BindingMismatch) as info:
        _kdc_tgs(TgsRequest(other, captured.ap_req).to_bytes(), rng, now=NOW)
    assert info.value.data == {"component": "body"}


def test_altering_the_requested_end_in_a_captured_tgs_request_fails_the_binding(rng: DeterministicRandom) -> None:
    pending = start_tgs_exchange(_login(rng), API, now=NOW, rng=rng)
    captured = TgsRequest.from_bytes(pending.request_bytes)
    longer = replace(pending.body, till=int(NOW) + 100 * DAY).to_bytes()
    with pytest.raises(BindingMismatch):
        _kdc_tgs(TgsRequest(longer, captured.ap_req).to_bytes(), rng, now=NOW)


def test_tgs_request_authenticator_is_bound_to_the_realm(rng: DeterministicRandom) -> None:
    pending = start_tgs_exchange(_login(rng), API, now=NOW, rng=rng)
    req = TgsRequest.from_bytes(pending.request_bytes)
    with pytest.raises(BindingMismatch) as info:
        verify_ap_request(req.ap_req, service=TGS, keyset=TGS_KEYS,
                          binding=RequestBinding.for_tgs("ELSEWHERE.TEST", req.body), now=NOW)
    assert info.value.data == {"component": "host"}


def test_service_ticket_cannot_be_used_at_the_tgs(rng: DeterministicRandom) -> None:
    ticket = _get_ticket(rng, _login(rng))
    with pytest.raises(WrongService):
        _get_ticket(rng, ticket)


def test_cross_realm_service_is_refused(rng: DeterministicRandom) -> None:
    with pytest.raises(WrongRealm):
        _get_ticket(rng, _login(rng), Principal("api", OTHER_REALM))


def test_asking_for_the_tgs_without_renewal_is_refused(rng: DeterministicRandom) -> None:
    with pytest.raises(PolicyRefused):
        _get_ticket(rng, _login(rng), TGS)


def test_tgs_reply_to_another_request_is_refused_by_the_client(rng: DeterministicRandom) -> None:
    tgt = _login(rng)
    first = start_tgs_exchange(tgt, API, now=NOW, rng=rng)
    second = start_tgs_exchange(tgt, API, now=NOW, rng=rng)
    with pytest.raises(MutualAuthFailed):
        finish_tgs_exchange(second, _kdc_tgs(first.request_bytes, rng, now=NOW))


def test_tgs_reply_under_another_session_key_is_refused_by_the_client(rng: DeterministicRandom) -> None:
    tgt = _login(rng)
    pending = start_tgs_exchange(tgt, API, now=NOW, rng=rng)
    reply = TgsReply.from_bytes(_kdc_tgs(pending.request_bytes, rng, now=NOW))
    with pytest.raises(MutualAuthFailed):
        finish_tgs_exchange(replace(pending, tgt=replace(tgt, session_key=rng(32))), reply.to_bytes())


def test_tgs_request_bytes_carry_the_encoded_body_verbatim(rng: DeterministicRandom) -> None:
    pending = start_tgs_exchange(_login(rng), API, now=NOW, rng=rng)
    req = TgsRequest.from_bytes(pending.request_bytes)
    assert TgsRequestBody.from_bytes(req.body) == pending.body
    assert isinstance(req.ap_req, ApRequest)


# -- renewal -------------------------------------------------------------------

def test_renewal_extends_the_tgt_and_keeps_its_session_key(rng: DeterministicRandom) -> None:
    tgt = _login(rng)
    later = NOW + 9 * HOUR
    renewed = _get_ticket(rng, tgt, TGS, now=later, renew=True)
    assert renewed.service == TGS
    assert renewed.endtime == int(later) + 10 * HOUR
    assert renewed.renew_till == tgt.renew_till
    assert renewed.session_key == tgt.session_key
    assert renewed.authtime == tgt.authtime
    assert not renewed.flags & TicketFlags.INITIAL
    assert renewed.flags & TicketFlags.RENEWABLE


def test_renewal_never_passes_the_renewable_life(rng: DeterministicRandom) -> None:
    tgt = _login(rng)
    t = float(tgt.renew_till - HOUR)
    for _ in range(20):  # keep renewing every 9 hours until near the end of the week
        if tgt.endtime > t:
            break
        now = float(tgt.endtime - HOUR)
        tgt = _get_ticket(rng, tgt, TGS, now=now, renew=True)
    tgt = _get_ticket(rng, tgt, TGS, now=t, renew=True)
    assert tgt.endtime == tgt.renew_till


def test_renewal_at_or_after_renew_till_is_refused(rng: DeterministicRandom) -> None:
    # Issued TGTs never end after their renew_till, so hand-craft one that does
    # to reach the KDC's own check rather than the verifier's expiry check.
    tgt = _login(rng)
    flags = TicketFlags.PRE_AUTHENTICATED | TicketFlags.RENEWABLE
    part = EncTicketPart(flags, tgt.session_key, ALICE, int(NOW), int(NOW), int(NOW) + DAY, int(NOW) + HOUR, rng(16))
    odd = replace(tgt, ticket=Ticket.issue(TGS, TGS_KEYS.current, part, nonce=rng(12)), flags=flags,
                  endtime=part.endtime, renew_till=part.renew_till)
    assert _get_ticket(rng, odd, TGS, now=NOW + HOUR - 1, renew=True).endtime == int(NOW) + HOUR
    with pytest.raises(PolicyRefused):
        _get_ticket(rng, odd, TGS, now=NOW + HOUR, renew=True)


def test_renewal_of_an_expired_tgt_is_refused(rng: DeterministicRandom) -> None:
    tgt = _login(rng)
    with pytest.raises(TicketExpired):
        _get_ticket(rng, tgt, TGS, now=float(tgt.endtime), renew=True)


def test_non_renewable_tgt_cannot_be_renewed(rng: DeterministicRandom) -> None:
    with pytest.raises(PolicyRefused):
        _get_ticket(rng, _login(rng, renewable=False), TGS, renew=True)


def test_renewal_request_naming_a_service_is_refused(rng: DeterministicRandom) -> None:
    tgt = _login(rng)
    pending = start_tgs_exchange(tgt, API, now=NOW, rng=rng, renew=True)
    assert pending.body.options & TgsOptions.RENEW
    with pytest.raises(PolicyRefused):
        _kdc_tgs(pending.request_bytes, rng, now=NOW)


def test_credential_reports_validity_and_renewability(rng: DeterministicRandom) -> None:
    tgt = _login(rng)
    assert tgt.valid_at(NOW) and not tgt.valid_at(tgt.endtime)
    assert tgt.renewable_at(NOW) and not tgt.renewable_at(tgt.endtime)
    assert Credential.from_dict(tgt.to_dict()) == tgt
