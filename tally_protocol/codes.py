"""Enumerations that travel on the wire or in logs.

Every value here is part of the protocol: renumbering a ``KeyUsage`` or
renaming an ``ErrorCode`` breaks interoperability, so values are explicit.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """Stable, machine-readable error codes (the analogue of KDC_ERR_*)."""

    MALFORMED_MESSAGE = "MALFORMED_MESSAGE"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    INVALID_PRINCIPAL = "INVALID_PRINCIPAL"
    INTEGRITY_CHECK_FAILED = "INTEGRITY_CHECK_FAILED"
    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"
    # "get a new ticket"
    TICKET_EXPIRED = "TICKET_EXPIRED"
    TICKET_NOT_YET_VALID = "TICKET_NOT_YET_VALID"
    UNKNOWN_KEY_VERSION = "UNKNOWN_KEY_VERSION"
    WRONG_SERVICE = "WRONG_SERVICE"
    WRONG_REALM = "WRONG_REALM"
    TICKET_REVOKED = "TICKET_REVOKED"
    # "retrying will not help"
    REPLAY_DETECTED = "REPLAY_DETECTED"
    BINDING_MISMATCH = "BINDING_MISMATCH"
    CLOCK_SKEW = "CLOCK_SKEW"
    CLIENT_MISMATCH = "CLIENT_MISMATCH"
    # KDC refusals
    PREAUTH_FAILED = "PREAUTH_FAILED"
    PRINCIPAL_DISABLED = "PRINCIPAL_DISABLED"
    LOCKED_OUT = "LOCKED_OUT"
    RATE_LIMITED = "RATE_LIMITED"
    UNKNOWN_SERVICE = "UNKNOWN_SERVICE"
    POLICY_REFUSED = "POLICY_REFUSED"
    # client side
    MUTUAL_AUTH_FAILED = "MUTUAL_AUTH_FAILED"
    # operations
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    REPLAY_CACHE_RECOVERING = "REPLAY_CACHE_RECOVERING"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    INVALID_REQUEST = "INVALID_REQUEST"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    CONFIGURATION_ERROR = "CONFIGURATION_ERROR"
    KDC_UNREACHABLE = "KDC_UNREACHABLE"
    # onboarding (docs/protocol.md §Onboarding): one code each, whatever the reason
    ENROLLMENT_INVALID = "ENROLLMENT_INVALID"
    PAIRING_FAILED = "PAIRING_FAILED"


class KeyUsage(enum.IntEnum):
    """Key usage numbers (RFC 3961 §3): one HKDF label per kind of sealed data.

    A key is never used for two purposes, so a ciphertext made for one
    message kind can never be accepted as another (cut-and-paste attacks).
    """

    AS_REQ_PREAUTH = 1
    TICKET = 2
    AS_REP_ENC_PART = 3
    AP_REQ_AUTHENTICATOR = 7
    TGS_REP_ENC_PART = 8
    AP_REP_ENC_PART = 12
    MASTER_KEY_WRAP = 64
    KEYTAB_DELIVERY = 65  # a keytab sealed for a device (enrollment and pairing replies)
    # Onboarding secrets derived with HKDF (crypto.derive_onboarding_key), one label each.
    ENROLLMENT_TOKEN_ID = 66
    ENROLLMENT_VERIFIER = 67
    ENROLLMENT_PROOF = 68
    ENROLLMENT_DELIVERY = 69
    PAIRING_CONFIRM_DEVICE = 70
    PAIRING_CONFIRM_KDC = 71
    PAIRING_DELIVERY = 72
    ONBOARDING_RECORD = 73  # the KDC's own enrollment / pairing records at rest in Redis


class MessageType(enum.IntEnum):
    """Type byte of every framed message (RFC 4120 §5.10 msg-type values)."""

    TICKET = 1
    AS_REQ = 10
    AS_REP = 11
    TGS_REQ = 12
    TGS_REP = 13
    AP_REQ = 14
    AP_REP = 15
    TGS_REQ_BODY = 16
    AUTHENTICATOR = 2
    ENC_TICKET_PART = 3
    ENC_KDC_REP_PART = 25
    ENC_AP_REP_PART = 27
    PA_ENC_TIMESTAMP = 40
    KEYTAB = 100
    ENROLL_REQ = 101
    ENROLL_REP = 102
    PAIR_START = 103
    PAIR_CHALLENGE = 104
    PAIR_FINISH = 105
    PAIR_REP = 106
    ENROLLMENT_RECORD = 110
    PAIRING_RECORD = 111
    PAIRING_SESSION = 112


class TicketFlags(enum.IntFlag):
    """Ticket flags (RFC 4120 §5.3), the subset tallystick issues."""

    NONE = 0
    INITIAL = 1 << 0  # issued by the AS exchange, not the TGS
    PRE_AUTHENTICATED = 1 << 1
    RENEWABLE = 1 << 2
    FORWARD_SECRET = 1 << 3  # session key protected by an ephemeral X25519 exchange


class TgsOptions(enum.IntFlag):
    """KDC options a TGS request may carry (RFC 4120 §5.4.1)."""

    NONE = 0
    RENEW = 1 << 0
