"""The cipher suite: sealed blobs, key separation per usage, X25519, reply and password keys."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tally_protocol.codes import KeyUsage
from tally_protocol.crypto import (
    HEADER_SIZE,
    NONCE_SIZE,
    OVERHEAD,
    TAG_SIZE,
    derive_password_key,
    derive_reply_key,
    derive_usage_key,
    digest,
    peek_unverified_kvno,
    seal,
    unseal,
    x25519_public_key,
    x25519_public_key_and_secret,
    x25519_shared_secret,
)
from tally_protocol.encoding import PROTOCOL_VERSION
from tally_protocol.errors import (
    IntegrityError,
    InvalidRequest,
    MalformedMessage,
    UnknownKeyVersion,
    UnsupportedVersion,
)
from tally_protocol.keys import Key, Keyset, PasswordParams

from . import strategies as s
from .realm import key

P = 2**255 - 19
#: u-coordinates of Curve25519 points of small order (and non-canonical encodings of them).
LOW_ORDER = [
    0,
    1,
    325606250916557431795983626356110631294008115727848805560023387167927233504,
    39382357235489614581723060781553021112529911719440698176882885853963445705823,
    P - 1,
    P,
    P + 1,
]
FAST_ARGON = PasswordParams(salt=b"s" * 16, iterations=1, memory_kib=64, lanes=1)


@given(s.keys32, s.kvnos, s.usages, st.binary(max_size=300), st.binary(max_size=64), st.binary(min_size=12, max_size=12))
def test_sealed_blob_opens_with_the_same_key_usage_and_context(
    material: bytes, kvno: int, usage: KeyUsage, plaintext: bytes, context: bytes, nonce: bytes,
) -> None:
    k = Key(material, kvno)
    blob = seal(k, usage, plaintext, nonce=nonce, context=context)
    assert unseal(k, usage, blob, context=context) == plaintext
    assert unseal(Keyset([k]), usage, blob, context=context) == plaintext


@given(s.kvnos, s.usages, st.binary(max_size=100))
def test_sealed_blob_layout_is_header_nonce_ciphertext_tag(kvno: int, usage: KeyUsage, plaintext: bytes) -> None:
    nonce = bytes(range(12))
    blob = seal(Key(bytes(32), kvno), usage, plaintext, nonce=nonce)
    assert blob[:HEADER_SIZE] == struct.pack(">BBI", PROTOCOL_VERSION, usage, kvno)
    assert blob[HEADER_SIZE:HEADER_SIZE + NONCE_SIZE] == nonce
    assert len(blob) == OVERHEAD + len(plaintext) == 6 + 12 + len(plaintext) + 16
    assert peek_unverified_kvno(blob) == kvno


@pytest.mark.parametrize("usage", list(KeyUsage))
def test_blob_sealed_for_one_usage_is_refused_for_every_other(usage: KeyUsage) -> None:
    k = key("k")
    blob = seal(k, usage, b"payload", nonce=bytes(12))
    for other in KeyUsage:
        if other != usage:
            with pytest.raises(IntegrityError):
                unseal(k, other, blob)


def test_usage_byte_rewritten_in_the_header_fails_integrity() -> None:
    # Even when the reader asks for the forged usage, the header is associated data.
    k = key("k")
    blob = bytearray(seal(k, KeyUsage.TICKET, b"payload", nonce=bytes(12)))
    blob[1] = KeyUsage.AP_REP_ENC_PART
    with pytest.raises(IntegrityError):
        unseal(k, KeyUsage.AP_REP_ENC_PART, bytes(blob))


def test_blob_is_refused_under_another_key() -> None:
    blob = seal(key("right"), KeyUsage.TICKET, b"payload", nonce=bytes(12))
    with pytest.raises(IntegrityError):
        unseal(key("wrong"), KeyUsage.TICKET, blob)


def test_blob_is_refused_with_another_context() -> None:
    blob = seal(key("k"), KeyUsage.TICKET, b"payload", nonce=bytes(12), context=b"api@EXAMPLE.TEST")
    with pytest.raises(IntegrityError):
        unseal(key("k"), KeyUsage.TICKET, blob, context=b"files@EXAMPLE.TEST")
    with pytest.raises(IntegrityError):
        unseal(key("k"), KeyUsage.TICKET, blob)


def test_blob_is_refused_by_a_key_of_another_version() -> None:
    blob = seal(key("k", 1), KeyUsage.TICKET, b"payload", nonce=bytes(12))
    with pytest.raises(IntegrityError):
        unseal(Key(key("k", 1).material, 2), KeyUsage.TICKET, blob)


def test_kvno_rewritten_in_the_header_fails_integrity_even_with_that_version_held() -> None:
    keyset = Keyset([key("k", 1), Key(key("k", 1).material, 2)])  # same material, two versions
    blob = bytearray(seal(keyset.get(1), KeyUsage.TICKET, b"payload", nonce=bytes(12)))
    blob[2:6] = struct.pack(">I", 2)
    with pytest.raises(IntegrityError):
        unseal(keyset, KeyUsage.TICKET, bytes(blob))


def test_keyset_without_the_blobs_version_raises_unknown_key_version() -> None:
    blob = seal(key("k", 7), KeyUsage.TICKET, b"payload", nonce=bytes(12))
    with pytest.raises(UnknownKeyVersion) as info:
        unseal(Keyset([key("k", 1)]), KeyUsage.TICKET, blob)
    assert info.value.data == {"kvno": 7}


def test_short_or_foreign_version_blob_is_malformed() -> None:
    with pytest.raises(MalformedMessage):
        unseal(key("k"), KeyUsage.TICKET, bytes(OVERHEAD - 1))
    blob = seal(key("k"), KeyUsage.TICKET, b"", nonce=bytes(12))
    with pytest.raises(UnsupportedVersion):
        unseal(key("k"), KeyUsage.TICKET, b"\x02" + blob[1:])


def test_seal_refuses_a_nonce_of_the_wrong_size() -> None:
    with pytest.raises(ValueError):
        seal(key("k"), KeyUsage.TICKET, b"", nonce=bytes(16))


def test_usage_keys_differ_per_usage_and_from_the_base_key() -> None:
    k = key("k")
    derived = {derive_usage_key(k, usage) for usage in KeyUsage}
    assert len(derived) == len(KeyUsage)
    assert k.material not in derived


def test_usage_key_depends_only_on_the_key_material_not_its_version() -> None:
    # The kvno is bound through the sealed header instead (associated data).
    assert derive_usage_key(Key(bytes(32), 1), KeyUsage.TICKET) == derive_usage_key(Key(bytes(32), 9), KeyUsage.TICKET)


def test_same_plaintext_and_nonce_give_the_same_blob_and_nothing_more() -> None:
    # GCM-SIV under a repeated nonce: identical inputs give identical outputs (all
    # that leaks), different plaintexts give unrelated ciphertexts.
    k = key("k")
    a = seal(k, KeyUsage.TICKET, b"A" * 32, nonce=bytes(12))
    assert a == seal(k, KeyUsage.TICKET, b"A" * 32, nonce=bytes(12))
    b = seal(k, KeyUsage.TICKET, b"B" * 32, nonce=bytes(12))
    body_a, body_b = a[HEADER_SIZE + NONCE_SIZE:], b[HEADER_SIZE + NONCE_SIZE:]
    xor_ciphertexts = bytes(x ^ y for x, y in zip(body_a[:32], body_b[:32], strict=True))
    xor_plaintexts = bytes(x ^ y for x, y in zip(b"A" * 32, b"B" * 32, strict=True))
    assert xor_ciphertexts != xor_plaintexts  # unlike GCM, no keystream is reused
    assert body_a[-TAG_SIZE:] != body_b[-TAG_SIZE:]


@pytest.mark.parametrize("exchange", [x25519_shared_secret, x25519_public_key_and_secret])
@pytest.mark.parametrize("u", LOW_ORDER, ids=[f"u{i}" for i in range(len(LOW_ORDER))])
def test_low_order_x25519_point_is_refused(u: int, exchange: Any) -> None:
    with pytest.raises(MalformedMessage):
        exchange(bytes(range(32)), u.to_bytes(32, "little"))


@pytest.mark.parametrize("exchange", [x25519_shared_secret, x25519_public_key_and_secret])
@pytest.mark.parametrize("size", [0, 31, 33])
def test_x25519_public_key_of_the_wrong_size_is_refused(size: int, exchange: Any) -> None:
    with pytest.raises(MalformedMessage):
        exchange(bytes(range(32)), bytes(size))


def test_x25519_public_key_and_secret_in_one_set_up_equal_the_two_apart() -> None:
    a, b = bytes(range(32)), bytes(range(32, 64))
    assert x25519_public_key_and_secret(a, x25519_public_key(b)) == (x25519_public_key(a),
                                                                      x25519_shared_secret(a, x25519_public_key(b)))


def test_x25519_both_sides_agree() -> None:
    a, b = bytes(range(32)), bytes(range(32, 64))
    assert x25519_shared_secret(a, x25519_public_key(b)) == x25519_shared_secret(b, x25519_public_key(a))


def test_reply_key_depends_on_long_term_key_shared_secret_and_transcript() -> None:
    lt, shared, transcript = key("alice"), bytes(range(32)), b"request|kdc public"
    base = derive_reply_key(lt, shared, transcript).material
    assert derive_reply_key(key("mallory"), shared, transcript).material != base
    assert derive_reply_key(lt, bytes(32), transcript).material != base
    assert derive_reply_key(lt, shared, transcript + b"!").material != base
    assert base not in (lt.material, shared)


def test_reply_key_keeps_the_long_term_keys_version() -> None:
    assert derive_reply_key(Key(bytes(32), 0), bytes(32), b"t").kvno == 0


def test_digest_frames_its_parts() -> None:
    assert digest(b"ab", b"c") != digest(b"a", b"bc")
    assert digest(b"abc") != digest(b"ab", b"c")


def test_password_key_is_deterministic_and_salted() -> None:
    k = derive_password_key("correct horse", FAST_ARGON)
    assert k == derive_password_key("correct horse", FAST_ARGON)
    assert len(k) == 32
    other_salt = PasswordParams(salt=b"t" * 16, iterations=1, memory_kib=64, lanes=1)
    assert derive_password_key("correct horse", other_salt) != k
    assert derive_password_key("correct horsf", FAST_ARGON) != k


def test_empty_password_is_refused() -> None:
    with pytest.raises(MalformedMessage):
        derive_password_key("", FAST_ARGON)


def test_password_params_round_trip_through_their_json_form() -> None:
    params = PasswordParams(salt=bytes(range(16)))
    assert PasswordParams.from_dict(params.to_dict()) == params
    assert params.to_dict() == {
        "kdf": "argon2id", "salt": "AAECAwQFBgcICQoLDA0ODw", "iterations": 3, "memory_kib": 65536, "lanes": 4,
    }


@pytest.mark.parametrize(
    "change",
    [
        {"kdf": "pbkdf2"}, {"salt": "AAAA"}, {"salt": "A" * 100}, {"salt": "AA=="}, {"iterations": 0},
        {"iterations": 17}, {"memory_kib": 2**21 + 1}, {"memory_kib": 8}, {"lanes": 0}, {"lanes": 17},
        {"iterations": "three"}, {"iterations": None}, {"iterations": float("inf")}, {"salt": 5},
    ],
)
def test_hostile_password_params_are_refused(change: dict[str, object]) -> None:
    data = {**PasswordParams(salt=bytes(16)).to_dict(), **change}
    with pytest.raises(MalformedMessage):
        PasswordParams.from_dict(data)


@pytest.mark.parametrize("data", [[], "params", None, 3, {}])
def test_password_params_that_are_not_an_object_are_refused(data: object) -> None:
    with pytest.raises(MalformedMessage):
        PasswordParams.from_dict(data)  # type: ignore[arg-type]


def test_key_of_the_wrong_size_or_version_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        Key(bytes(31))
    with pytest.raises(InvalidRequest):
        Key(bytes(32), 2**32)
    with pytest.raises(InvalidRequest):
        Keyset([])
    with pytest.raises(InvalidRequest):
        Keyset([Key(bytes(32), 1), Key(bytes(32), 1)])


def test_keyset_current_is_the_newest_version() -> None:
    keyset = Keyset([key("a", 3), key("b", 10), key("c", 7)])
    assert keyset.current.kvno == 10
    assert keyset.versions == [3, 7, 10]
    assert 7 in keyset and 4 not in keyset
