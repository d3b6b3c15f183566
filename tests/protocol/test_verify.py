"""``verify_ap_request``: each refusal has its own class and code, and the success path.

Every case changes one thing about an otherwise valid request, so the test
shows which check refuses it (the order of checks is in ``verify.py``).
"""

from __future__ import annotations

import pytest

from tally_protocol.binding import RequestBinding
from tally_protocol.codes import ErrorCode
from tally_protocol.errors import (
    BindingMismatch,
    ClientMismatch,
    ClockSkew,
    IntegrityError,
    TallyError,
    TicketExpired,
    TicketNotYetValid,
    UnknownKeyVersion,
    WrongRealm,
    WrongService,
)
from tally_protocol.keys import Key, Keyset
from tally_protocol.messages import ApRequest
from tally_protocol.principal import Principal
from tally_protocol.replay import replay_key
from tally_protocol.verify import Verified, VerifyPolicy, verify_ap_request

from .realm import (
    ALICE,
    API,
    BINDING,
    BOB,
    NOW,
    OTHER_REALM,
    REALM,
    DeterministicRandom,
    ap_request,
    issue_ticket,
    key,
    service_keyset,
)

SKEW = VerifyPolicy().max_skew_s


def _verify(ap_req: ApRequest, *, keyset: Keyset | None = None, binding: RequestBinding = BINDING,
            now: float = NOW, service: Principal = API) -> Verified:
    return verify_ap_request(ap_req, service=service, keyset=keyset or service_keyset(),
                             binding=binding, now=now)


def _refusal(ap_req: ApRequest, **kwargs: object) -> TallyError:
    with pytest.raises(TallyError) as info:
        _verify(ap_req, **kwargs)  # type: ignore[arg-type]
    return info.value


@pytest.fixture
def rng() -> DeterministicRandom:
    return DeterministicRandom()


def test_valid_request_verifies_and_names_the_client(rng: DeterministicRandom) -> None:
    issued = issue_ticket(rng, service_keyset().current)
    ap_req = ap_request(rng, issued)
    verified = _verify(ap_req)
    auth = ap_req.open_authenticator(issued.session_key)
    assert verified.client == ALICE
    assert verified.service == API
    assert verified.kvno == 1
    assert verified.ticket == issued.part
    assert verified.authenticator == auth
    assert verified.session_key.material == issued.part.session_key
    assert verified.replay_key == replay_key(API, ALICE, auth.ctime, auth.nonce)
    assert verified.replay_ttl_ms == (SKEW + VerifyPolicy().replay_margin_s) * 1000


def test_expired_ticket_is_refused_as_ticket_expired(rng: DeterministicRandom) -> None:
    issued = issue_ticket(rng, service_keyset().current, start=NOW - 3600, end=NOW)
    err = _refusal(ap_request(rng, issued))
    assert type(err) is TicketExpired
    assert err.code is ErrorCode.TICKET_EXPIRED
    assert err.status_hint == 401
    assert err.data == {"endtime": int(NOW), "server_time": int(NOW)}


def test_ticket_is_valid_until_just_before_its_end_time(rng: DeterministicRandom) -> None:
    issued = issue_ticket(rng, service_keyset().current, start=NOW - 3600, end=NOW + 1)
    assert _verify(ap_request(rng, issued), now=NOW + 0.999).client == ALICE


def test_ticket_starting_beyond_the_skew_window_is_not_yet_valid(rng: DeterministicRandom) -> None:
    issued = issue_ticket(rng, service_keyset().current, start=NOW + SKEW + 1, end=NOW + 7200)
    err = _refusal(ap_request(rng, issued))
    assert type(err) is TicketNotYetValid
    assert err.code is ErrorCode.TICKET_NOT_YET_VALID
    assert err.data["server_time"] == int(NOW)


def test_ticket_starting_within_the_skew_window_is_accepted(rng: DeterministicRandom) -> None:
    issued = issue_ticket(rng, service_keyset().current, start=NOW + SKEW, end=NOW + 7200)
    assert _verify(ap_request(rng, issued)).client == ALICE


def test_ticket_for_another_service_is_refused_as_wrong_service(rng: DeterministicRandom) -> None:
    issued = issue_ticket(rng, key("files"), service=Principal("files", REALM))
    err = _refusal(ap_request(rng, issued))
    assert type(err) is WrongService
    assert err.code is ErrorCode.WRONG_SERVICE
    assert err.data == {"expected": str(API)}


def test_ticket_for_another_realm_is_refused_as_wrong_realm(rng: DeterministicRandom) -> None:
    issued = issue_ticket(rng, service_keyset().current, service=Principal("api", OTHER_REALM))
    err = _refusal(ap_request(rng, issued))
    assert type(err) is WrongRealm
    assert err.code is ErrorCode.WRONG_REALM


def test_ticket_under_an_unknown_key_version_is_refused_as_unknown_key_version(rng: DeterministicRandom) -> None:
    issued = issue_ticket(rng, service_keyset(3).current)
    err = _refusal(ap_request(rng, issued), keyset=service_keyset(1, 2))
    assert type(err) is UnknownKeyVersion
    assert err.code is ErrorCode.UNKNOWN_KEY_VERSION
    assert err.data == {"kvno": 3}


@pytest.mark.parametrize("offset", [-(SKEW + 1), SKEW + 1, -86400, 86400])
def test_skewed_authenticator_is_refused_with_the_server_time(rng: DeterministicRandom, offset: int) -> None:
    issued = issue_ticket(rng, service_keyset().current, start=NOW - 86400 * 2, end=NOW + 86400 * 2)
    err = _refusal(ap_request(rng, issued, ctime=NOW + offset))
    assert type(err) is ClockSkew
    assert err.code is ErrorCode.CLOCK_SKEW
    assert err.data == {"server_time": int(NOW), "client_time": int(NOW) + offset, "max_skew": SKEW}


@pytest.mark.parametrize("offset", [-SKEW, SKEW])
def test_authenticator_at_the_edge_of_the_skew_window_is_accepted(rng: DeterministicRandom, offset: int) -> None:
    issued = issue_ticket(rng, service_keyset().current, start=NOW - 3600, end=NOW + 3600)
    assert _verify(ap_request(rng, issued, ctime=NOW + offset)).client == ALICE


def test_skew_window_follows_the_policy(rng: DeterministicRandom) -> None:
    issued = issue_ticket(rng, service_keyset().current)
    ap_req = ap_request(rng, issued, ctime=NOW + 60)
    with pytest.raises(ClockSkew):
        verify_ap_request(ap_req, service=API, keyset=service_keyset(), binding=BINDING, now=NOW,
                          policy=VerifyPolicy(max_skew_s=30))


def test_authenticator_naming_another_client_is_refused_as_client_mismatch(rng: DeterministicRandom) -> None:
    issued = issue_ticket(rng, service_keyset().current, client=ALICE)
    err = _refusal(ap_request(rng, issued, client=BOB))
    assert type(err) is ClientMismatch
    assert err.code is ErrorCode.CLIENT_MISMATCH


@pytest.mark.parametrize(
    ("component", "received"),
    [
        ("method", RequestBinding.for_http("POST", "api.example.test", "/whoami?x=1", b"")),
        ("host", RequestBinding.for_http("GET", "evil.example.test", "/whoami?x=1", b"")),
        ("host", RequestBinding.for_http("GET", "api.example.test:8443", "/whoami?x=1", b"")),
        ("path", RequestBinding.for_http("GET", "api.example.test", "/whoami", b"")),
        ("path", RequestBinding.for_http("GET", "api.example.test", "/whoami?x=2", b"")),
        ("path", RequestBinding.for_http("GET", "api.example.test", "/WHOAMI?x=1", b"")),
        ("body", RequestBinding.for_http("GET", "api.example.test", "/whoami?x=1", b"{}")),
    ],
)
def test_request_differing_from_the_binding_is_refused_naming_the_component(
    rng: DeterministicRandom, component: str, received: RequestBinding,
) -> None:
    issued = issue_ticket(rng, service_keyset().current)
    err = _refusal(ap_request(rng, issued), binding=received)
    assert type(err) is BindingMismatch
    assert err.code is ErrorCode.BINDING_MISMATCH
    assert err.data == {"component": component}


def test_ticket_sealed_under_a_different_key_of_the_same_version_fails_integrity(rng: DeterministicRandom) -> None:
    issued = issue_ticket(rng, Key(key("impostor").material, 1))
    err = _refusal(ap_request(rng, issued))
    assert type(err) is IntegrityError
    assert err.code is ErrorCode.INTEGRITY_CHECK_FAILED


def test_authenticator_sealed_under_another_session_key_fails_integrity(rng: DeterministicRandom) -> None:
    issued = issue_ticket(rng, service_keyset().current)
    err = _refusal(ap_request(rng, issued, session_key=Key(rng(32), 0)))
    assert type(err) is IntegrityError


def test_authenticator_from_another_ticket_fails_integrity(rng: DeterministicRandom) -> None:
    first = issue_ticket(rng, service_keyset().current)
    second = issue_ticket(rng, service_keyset().current)
    spliced = ApRequest(second.ticket, ap_request(rng, first).authenticator)
    assert type(_refusal(spliced)) is IntegrityError


def test_ticket_issued_before_a_rotation_verifies_with_both_versions(rng: DeterministicRandom) -> None:
    old = issue_ticket(rng, service_keyset(1).current)
    assert _verify(ap_request(rng, old), keyset=service_keyset(1, 2)).kvno == 1


def test_ticket_issued_after_a_rotation_uses_the_newest_version(rng: DeterministicRandom) -> None:
    keyset = service_keyset(1, 2)
    new = issue_ticket(rng, keyset.current)
    assert new.ticket.kvno == 2
    assert _verify(ap_request(rng, new), keyset=keyset).kvno == 2


def test_ticket_under_a_retired_version_needs_a_new_ticket(rng: DeterministicRandom) -> None:
    old = issue_ticket(rng, service_keyset(1).current)
    assert type(_refusal(ap_request(rng, old), keyset=service_keyset(2, 3))) is UnknownKeyVersion


def test_service_check_comes_before_any_decryption(rng: DeterministicRandom) -> None:
    # A ticket for another service under a key this service does not even hold:
    # the refusal is WRONG_SERVICE, not UNKNOWN_KEY_VERSION or an integrity failure.
    issued = issue_ticket(rng, Key(key("files").material, 9), service=Principal("files", REALM))
    assert type(_refusal(ap_request(rng, issued))) is WrongService


def test_time_checks_come_before_the_authenticator_is_opened(rng: DeterministicRandom) -> None:
    issued = issue_ticket(rng, service_keyset().current, start=NOW - 7200, end=NOW - 1)
    bad_auth = ap_request(rng, issued, session_key=Key(rng(32), 0))
    assert type(_refusal(bad_auth)) is TicketExpired


def test_skew_is_checked_before_the_binding(rng: DeterministicRandom) -> None:
    # A skewed request never reaches the binding check (nor, after it, the replay store).
    issued = issue_ticket(rng, service_keyset().current)
    other = RequestBinding.for_http("DELETE", "x", "/", b"")
    assert type(_refusal(ap_request(rng, issued, ctime=NOW + SKEW + 1), binding=other)) is ClockSkew
