"""The error tree: every code has one class, codes round-trip, and no error or repr shows a key."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest

from client_sdk.flow import Credential, finish_as_exchange, start_as_exchange
from kdc.exchange import check_preauth
from tally_protocol.binding import response_digest
from tally_protocol.codes import ErrorCode, KeyUsage
from tally_protocol.crypto import seal, unseal
from tally_protocol.encoding import b64encode
from tally_protocol.errors import (
    BindingMismatch,
    ClockSkew,
    IntegrityError,
    KdcRefusal,
    LockedOut,
    MalformedMessage,
    MutualAuthFailed,
    RequestRejected,
    StoreUnavailable,
    TallyError,
    TicketError,
    error_from_code,
)
from tally_protocol.keys import Key, Keyset
from tally_protocol.keytab import dump_keytab, load_keytab
from tally_protocol.messages import AsRequest, EncApRepPart, open_ap_reply
from tally_protocol.verify import VerifyPolicy, verify_ap_request

from .realm import ALICE, API, BINDING, NOW, DeterministicRandom, ap_request, issue_ticket


def _subclasses(cls: type[TallyError]) -> list[type[TallyError]]:
    out: list[type[TallyError]] = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


#: Classes that declare their own code (abstract groupings like TicketError inherit one).
DECLARING = [c for c in _subclasses(TallyError) if "code" in c.__dict__ and c.__module__ == "tally_protocol.errors"]


def test_every_error_code_has_a_class() -> None:
    assert {c.code for c in DECLARING} == set(ErrorCode)


def test_error_codes_are_unique_per_class() -> None:
    codes = [c.code for c in DECLARING]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("cls", DECLARING, ids=[c.__name__ for c in DECLARING])
def test_code_maps_back_to_its_class(cls: type[TallyError]) -> None:
    err = error_from_code(str(cls.code), "from the wire", server_time=5)
    assert type(err) is cls
    assert err.message == "from the wire"
    assert err.data == {"server_time": 5}


@pytest.mark.parametrize("cls", DECLARING, ids=[c.__name__ for c in DECLARING])
def test_error_serialises_to_the_wire_envelope(cls: type[TallyError]) -> None:
    body = cls().to_dict()
    assert body == {"error": str(cls.code), "message": cls.default_message}
    assert json.loads(json.dumps(body)) == body
    assert 400 <= cls.status_hint <= 599


def test_unknown_code_becomes_a_plain_tally_error() -> None:
    err = error_from_code("SOMETHING_NEW", "?")
    assert type(err) is TallyError
    assert err.data == {"code": "SOMETHING_NEW"}


@pytest.mark.parametrize(
    ("group", "status"),
    [(TicketError, 401), (RequestRejected, 401), (IntegrityError, 401), (MalformedMessage, 400),
     (StoreUnavailable, 503), (MutualAuthFailed, 502)],
)
def test_error_groups_carry_their_status(group: type[TallyError], status: int) -> None:
    for cls in [group, *_subclasses(group)]:
        assert cls.status_hint == status, cls.__name__


def test_kdc_refusals_are_client_errors() -> None:
    for cls in _subclasses(KdcRefusal):
        assert 400 <= cls.status_hint < 500, cls.__name__


def test_errors_carry_their_documented_data() -> None:
    assert BindingMismatch(component="path").to_dict()["component"] == "path"
    assert ClockSkew(server_time=10).to_dict()["server_time"] == 10
    assert LockedOut(retry_after=30).to_dict()["retry_after"] == 30


# -- no secret in an error or a repr ------------------------------------------

SECRET = bytes(range(0xA0, 0xC0))  # 32 recognisable bytes


def _spellings(secret: bytes) -> list[str]:
    return [secret.hex(), secret.hex().upper(), b64encode(secret), repr(secret)[2:-1], secret[:8].hex()]


def _assert_no_secret(text: str, secret: bytes = SECRET) -> None:
    for spelling in _spellings(secret):
        assert spelling not in text


def _failures() -> list[Callable[[], object]]:
    rng = DeterministicRandom()
    k = Key(SECRET, 1)
    issued = issue_ticket(rng, Key(SECRET, 1))
    blob = seal(k, KeyUsage.TICKET, SECRET, nonce=bytes(12))
    as_pending = start_as_exchange(ALICE, Key(SECRET, 0), now=NOW, rng=rng)
    return [
        lambda: unseal(Key(bytes(32), 1), KeyUsage.TICKET, blob),
        lambda: unseal(k, KeyUsage.AP_REQ_AUTHENTICATOR, blob),
        lambda: unseal(Keyset([Key(SECRET, 2)]), KeyUsage.TICKET, blob),
        lambda: Key(SECRET[:31]),
        lambda: Keyset([k, Key(SECRET, 1)]),
        lambda: load_keytab(dump_keytab(API, Keyset([k]))[:-1]),
        lambda: verify_ap_request(ap_request(rng, issued, session_key=Key(SECRET, 0)), service=API,
                                  keyset=Keyset([k]), binding=BINDING, now=NOW),
        lambda: verify_ap_request(ap_request(rng, issued, ctime=NOW + 999), service=API,
                                  keyset=Keyset([k]), binding=BINDING, now=NOW),
        lambda: open_ap_reply(Key(SECRET, 0), 'tally="AAAA"', EncApRepPart(1, bytes(16), response_digest(200, b""))),
        lambda: check_preauth(AsRequest.from_bytes(as_pending.request_bytes), Key(bytes(32), 0), now=NOW,
                              verify=VerifyPolicy()),
        lambda: finish_as_exchange(as_pending, b"\x01\x0b" + SECRET),
    ]


@pytest.mark.parametrize("index", range(len(_failures())))
def test_error_never_shows_key_material(index: int) -> None:
    with pytest.raises(TallyError) as info:
        _failures()[index]()
    err = info.value
    for text in (str(err), repr(err), err.message, json.dumps(err.to_dict(), default=str)):
        _assert_no_secret(text)


def test_reprs_of_keys_tickets_and_credentials_hide_the_key() -> None:
    rng = DeterministicRandom()
    issued = issue_ticket(rng, Key(SECRET, 1))
    part = replace(issued.part, session_key=SECRET)
    verified = verify_ap_request(ap_request(rng, issued), service=API, keyset=Keyset([Key(SECRET, 1)]),
                                 binding=BINDING, now=NOW)
    cred = Credential(ALICE, API, issued.ticket, SECRET, part.flags, 0, 0, 1, 0)
    pending = start_as_exchange(ALICE, Key(SECRET, 0), now=NOW, rng=rng)
    for value in (Key(SECRET, 1), part, cred, pending):
        _assert_no_secret(repr(value))
    _assert_no_secret(repr(verified), issued.part.session_key)
