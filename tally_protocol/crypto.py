"""The one cipher suite, and the only module that imports ``cryptography.hazmat``.

Suite (no negotiation, so no downgrade):

* AEAD: AES-256-GCM-SIV (RFC 8452) with a random 96-bit nonce per message.
  GCM-SIV derives fresh per-nonce keys, and a repeated nonce reveals only that
  two identical (plaintext, associated data) pairs were sealed, so nonce
  collisions stay harmless at any realistic volume (docs/protocol.md §Crypto).
* Key separation: each usage gets its own key, HKDF-SHA256(base key,
  info = "tallystick-v1 usage <n>").  Derived once per (key, usage) and kept on
  the ``Key`` object.
* Sealed blob: ``version u8 | usage u8 | kvno u32 | nonce[12] | ciphertext``.
  The 6-byte header plus the caller's context is the associated data, so the
  version, usage and key version cannot be altered without detection.
* Forward secrecy: X25519 between ephemeral keys, mixed into the AS reply key.
* Password keys: Argon2id with a per-principal salt.

Randomness is never drawn here: callers pass nonces and private keys in.
"""

from __future__ import annotations

import hashlib
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import constant_time, hashes, hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .codes import KeyUsage
from .encoding import PROTOCOL_VERSION
from .errors import IntegrityError, MalformedMessage, UnsupportedVersion
from .keys import KEY_SIZE, Key, Keyset, PasswordParams

NONCE_SIZE = 12
TAG_SIZE = 16
HEADER = struct.Struct(">BBI")
HEADER_SIZE = HEADER.size
OVERHEAD = HEADER_SIZE + NONCE_SIZE + TAG_SIZE
X25519_SIZE = 32
_HKDF_SALT = b"tallystick-v1"
_LENGTH = struct.Struct(">I")


def derive_usage_key(key: Key, usage: KeyUsage) -> bytes:
    """The usage-specific key; exposed for known-answer tests only."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=_HKDF_SALT,
        info=b"tallystick-v1 usage %d" % usage,
    ).derive(key.material)


def _aead(key: Key, usage: KeyUsage) -> AESGCMSIV:
    aead = key._derived.get(usage)
    if aead is None:
        aead = key._derived[usage] = AESGCMSIV(derive_usage_key(key, usage))
    return aead


def seal(key: Key, usage: KeyUsage, plaintext: bytes, *, nonce: bytes, context: bytes = b"") -> bytes:
    """Encrypt and authenticate ``plaintext`` for ``usage`` under ``key``.

    ``nonce`` must be 12 fresh random bytes from the caller.  ``context`` is
    extra associated data the reader must supply identically.
    """
    if len(nonce) != NONCE_SIZE:
        raise ValueError("nonce must be 12 bytes")
    header = HEADER.pack(PROTOCOL_VERSION, usage, key.kvno)
    return header + nonce + _aead(key, usage).encrypt(nonce, plaintext, header + context)


def peek_unverified_kvno(blob: bytes) -> int:
    """The key version a sealed blob claims, to pick the key before decrypting."""
    if len(blob) < OVERHEAD:
        raise MalformedMessage("sealed data truncated")
    version, _usage, kvno = HEADER.unpack_from(blob)
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersion(version=version)
    return int(kvno)


def key_for_blob(keys: Key | Keyset, usage: KeyUsage, blob: bytes) -> Key:
    """The key a sealed blob must open under, after the header's checks (version, usage, kvno), in that order."""
    kvno = peek_unverified_kvno(blob)
    if blob[1] != usage:
        raise IntegrityError()
    if isinstance(keys, Keyset):
        return keys.get(kvno)
    if keys.kvno != kvno:
        raise IntegrityError()
    return keys


def unseal(keys: Key | Keyset, usage: KeyUsage, blob: bytes, *, context: bytes = b"") -> bytes:
    """Check and decrypt a sealed blob; every failure past the header is ``IntegrityError``.

    With a ``Keyset`` the key is chosen by the blob's kvno and an absent version
    raises ``UnknownKeyVersion`` (the caller should fetch a new ticket or keytab).
    """
    key = key_for_blob(keys, usage, blob)
    header = blob[:HEADER_SIZE]
    nonce = blob[HEADER_SIZE:HEADER_SIZE + NONCE_SIZE]
    try:
        return _aead(key, usage).decrypt(nonce, blob[HEADER_SIZE + NONCE_SIZE:], header + context)
    except InvalidTag:
        raise IntegrityError() from None


def digest(*parts: bytes) -> bytes:
    """SHA-256 over length-prefixed parts, so ("ab","c") and ("a","bc") differ."""
    # hashlib (the same OpenSSL SHA-256) in one call: a few µs less per request than a hazmat Hash per part.
    return hashlib.sha256(b"".join([_LENGTH.pack(len(part)) + part for part in parts])).digest()


def body_digest(body: bytes) -> bytes:
    """Plain SHA-256 of an HTTP body (what the request binding carries)."""
    return hashlib.sha256(body).digest()


def mac(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256, used for stable pseudorandom values (e.g. decoy salts)."""
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(message)
    return h.finalize()


def equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison."""
    return constant_time.bytes_eq(a, b)


def x25519_public_key(private: bytes) -> bytes:
    """The public key for a 32-byte private scalar chosen by the caller."""
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw
    )


def x25519_shared_secret(private: bytes, peer_public: bytes) -> bytes:
    """X25519(private, peer); a low-order peer key (all-zero secret) is refused."""
    return _exchange(X25519PrivateKey.from_private_bytes(private), peer_public)


def x25519_public_key_and_secret(private: bytes, peer_public: bytes) -> tuple[bytes, bytes]:
    """``(x25519_public_key(private), x25519_shared_secret(private, peer))`` with one key set-up, not two."""
    key = X25519PrivateKey.from_private_bytes(private)
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw), _exchange(key, peer_public)


def _exchange(key: X25519PrivateKey, peer_public: bytes) -> bytes:
    if len(peer_public) != X25519_SIZE:
        raise MalformedMessage("X25519 public key must be 32 bytes")
    try:
        return key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as e:  # cryptography refuses an all-zero shared secret
        raise MalformedMessage("invalid X25519 public key") from e


def derive_reply_key(long_term: Key, shared_secret: bytes, transcript: bytes) -> Key:
    """AS reply key: both the client's long-term key and the ephemeral DH secret.

    Without the DH secret (ephemeral, discarded) a later leak of the long-term
    key does not open past replies; without the long-term key an active
    attacker cannot produce or read them.  ``transcript`` binds the reply to
    the exact request and the KDC's public key.
    """
    material = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=digest(b"tallystick-v1 as transcript", transcript),
        info=b"tallystick-v1 as reply key",
    ).derive(long_term.material + shared_secret)
    return Key(material, long_term.kvno)


def derive_onboarding_key(secret: bytes, usage: KeyUsage, transcript: bytes = b"") -> bytes:
    """A 256-bit key for one onboarding purpose (docs/protocol.md §Onboarding).

    HKDF-SHA256 over ``secret`` (an enrollment token, an X25519 secret joined
    with the token's verifier, or a SPAKE2 key), with the usage as info and a
    digest of ``transcript`` as salt: each purpose and each exchange gets its
    own key, so a MAC or ciphertext made for one never passes for another.
    """
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_SIZE,
        salt=digest(b"tallystick-v1 onboarding", transcript),
        info=b"tallystick-v1 onboarding usage %d" % usage,
    ).derive(secret)


def derive_password_key(password: str, params: PasswordParams) -> bytes:
    """Argon2id(password, salt): the long-term key of a password principal."""
    if not password:
        raise MalformedMessage("empty password")
    return Argon2id(
        salt=params.salt,
        length=KEY_SIZE,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    ).derive(password.encode("utf-8"))
