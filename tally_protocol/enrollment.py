"""Enrollment tokens and the pure enrollment exchange (docs/protocol.md §Enrollment).

Rules this module keeps:

* A token is 160 bits from the caller's ``rng``, written as eight groups of
  four RFC 4648 base32 characters (``ABCD-EFGH-...``): readable aloud, no
  0/1/8 look-alikes, case and separators ignored when read back.
* The token never travels and is never stored.  Two one-way derivations
  stand in for it: a public ``token_id`` (the KDC's lookup handle) and a
  ``verifier`` (what the KDC keeps, sealed).  Knowing both does not give
  the token back, but the verifier is enough to prove and to unseal, so the
  KDC keeps it only sealed under its own key.
* The device proves knowledge with an HMAC over the token id and its
  ephemeral X25519 key; the reply is sealed under HKDF(X25519 secret ||
  verifier, transcript).  An eavesdropper lacks the DH secret, someone who
  only saw the token lacks the device's private key, and a request cannot
  be re-pointed at another key without the verifier.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from .codes import KeyUsage
from .crypto import derive_onboarding_key, equal, mac, seal, unseal, x25519_public_key, x25519_shared_secret
from .errors import IntegrityError, MalformedMessage
from .keys import Key, Keyset
from .keytab import load_keytab
from .messages.enrollment import TOKEN_ID_SIZE, EnrollReply, EnrollRequest
from .principal import Principal

TOKEN_SIZE = 20  # 160 bits
_TOKEN_CHARS = 32  # base32 of 20 bytes, no padding
_GROUP = 4
_BASE32 = re.compile(r"[A-Z2-7]{32}")
_SEPARATORS = re.compile(r"[\s-]+")


def format_token(raw: bytes) -> str:
    """``ABCD-EFGH-...``: eight groups of four base32 characters."""
    if len(raw) != TOKEN_SIZE:
        raise ValueError("an enrollment token is 20 bytes")
    text = base64.b32encode(raw).decode("ascii")
    return "-".join(text[i:i + _GROUP] for i in range(0, _TOKEN_CHARS, _GROUP))


def parse_token(text: str) -> bytes:
    """The token's bytes; case, spaces and hyphens do not matter.  Anything else is ``MalformedMessage``."""
    if not isinstance(text, str):
        raise MalformedMessage("an enrollment token is text")
    compact = _SEPARATORS.sub("", text).upper()
    if not _BASE32.fullmatch(compact):
        raise MalformedMessage("not an enrollment token (expected 32 base32 characters, e.g. ABCD-EFGH-...)")
    try:
        return base64.b32decode(compact)
    except binascii.Error as e:  # unreachable for 32 alphabet characters; kept as a guard
        raise MalformedMessage("not an enrollment token") from e


@dataclass(frozen=True, slots=True)
class TokenSecrets:
    """What the KDC needs of a token: its public id and the (secret) verifier."""

    token_id: bytes
    verifier: bytes = field(repr=False)

    @classmethod
    def derive(cls, token: bytes) -> TokenSecrets:
        if len(token) != TOKEN_SIZE:
            raise MalformedMessage("an enrollment token is 20 bytes")
        token_id = derive_onboarding_key(token, KeyUsage.ENROLLMENT_TOKEN_ID)[:TOKEN_ID_SIZE]
        return cls(token_id, derive_onboarding_key(token, KeyUsage.ENROLLMENT_VERIFIER))


def _proof(verifier: bytes, body: bytes) -> bytes:
    return mac(derive_onboarding_key(verifier, KeyUsage.ENROLLMENT_PROOF, body), body)


def _delivery_key(shared_secret: bytes, verifier: bytes, transcript: bytes) -> Key:
    return Key(derive_onboarding_key(shared_secret + verifier, KeyUsage.ENROLLMENT_DELIVERY, transcript), 0)


def _transcript(request: EnrollRequest, kdc_public: bytes) -> bytes:
    return request.to_bytes() + kdc_public


# -- device side ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnrollmentExchange:
    """The device's state between sending the request and reading the reply."""

    request: EnrollRequest
    request_bytes: bytes
    verifier: bytes = field(repr=False)
    device_private: bytes = field(repr=False)


def start_enrollment(token: bytes, device_private: bytes) -> EnrollmentExchange:
    """The request for ``token``; ``device_private`` is 32 fresh random bytes (an X25519 scalar)."""
    secrets = TokenSecrets.derive(token)
    unsigned = EnrollRequest(secrets.token_id, x25519_public_key(device_private), b"")
    request = EnrollRequest(unsigned.token_id, unsigned.device_public,
                            _proof(secrets.verifier, unsigned.body_bytes()))
    return EnrollmentExchange(request, request.to_bytes(), secrets.verifier, device_private)


def finish_enrollment(pending: EnrollmentExchange, reply_bytes: bytes) -> tuple[Principal, Keyset]:
    """Open the delivered keytab; any tampering or a reply for another request is ``IntegrityError``."""
    reply = EnrollReply.from_bytes(reply_bytes)
    shared = x25519_shared_secret(pending.device_private, reply.kdc_public)
    transcript = _transcript(pending.request, reply.kdc_public)
    keytab = unseal(_delivery_key(shared, pending.verifier, transcript), KeyUsage.KEYTAB_DELIVERY,
                    reply.sealed_keytab, context=transcript)
    return load_keytab(keytab)


# -- KDC side ------------------------------------------------------------------


def check_enrollment_proof(request: EnrollRequest, verifier: bytes) -> None:
    """``IntegrityError`` unless the request was made by someone holding the token."""
    if not equal(request.proof, _proof(verifier, request.body_bytes())):
        raise IntegrityError()


@dataclass(frozen=True, slots=True)
class EnrollmentReplySealer:
    """The reply key for one request, made before the token is consumed.

    Building it first means a request with an unusable device key is refused
    while the token is still unspent.
    """

    kdc_public: bytes
    transcript: bytes
    key: Key = field(repr=False)

    def seal(self, keytab: bytes, *, nonce: bytes) -> EnrollReply:
        return EnrollReply(self.kdc_public, seal(self.key, KeyUsage.KEYTAB_DELIVERY, keytab, nonce=nonce,
                                                 context=self.transcript))


def prepare_enrollment_reply(request: EnrollRequest, verifier: bytes, *, kdc_private: bytes) -> EnrollmentReplySealer:
    """The sealer for the device that made ``request``; ``kdc_private`` is 32 fresh random bytes.

    ``MalformedMessage`` for a low-order device key (an all-zero DH secret).
    """
    kdc_public = x25519_public_key(kdc_private)
    shared = x25519_shared_secret(kdc_private, request.device_public)
    transcript = _transcript(request, kdc_public)
    return EnrollmentReplySealer(kdc_public, transcript, _delivery_key(shared, verifier, transcript))
