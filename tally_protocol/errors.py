"""The one exception hierarchy of tallystick.

Every error carries a stable ``code`` (``ErrorCode``), an HTTP ``status_hint``
and a ``message`` that is safe to show to the peer: it never holds a key, a
plaintext or an expected MAC.  Adapters only map these to HTTP or a CLI exit;
``error_from_code`` rebuilds the typed error from a wire code so a client can
catch exactly what the server meant.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .codes import ErrorCode

_BY_CODE: dict[ErrorCode, type[TallyError]] = {}


class TallyError(Exception):
    """Base of every tallystick error."""

    code: ClassVar[ErrorCode] = ErrorCode.INVALID_REQUEST
    status_hint: ClassVar[int] = 400
    default_message: ClassVar[str] = "invalid request"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__:
            _BY_CODE[cls.code] = cls

    def __init__(self, message: str | None = None, **data: Any) -> None:
        self.message = message or self.default_message
        #: Typed, documented extra data (e.g. ``server_time``); safe to show.
        self.data: dict[str, Any] = data
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """The JSON body adapters send: ``{"error": code, "message": ..., **data}``."""
        return {"error": str(self.code), "message": self.message, **self.data}


_BY_CODE[ErrorCode.INVALID_REQUEST] = TallyError


class InvalidRequest(TallyError):
    code = ErrorCode.INVALID_REQUEST
    status_hint = 400


class RequestTooLarge(InvalidRequest):
    """A body beyond what the server reads (HTTP 413); ``data["limit"]`` is the limit in bytes.

    Refused from ``Content-Length`` before reading, or as soon as a chunked
    body passes the limit: a peer cannot make a server buffer without bound.
    """

    code = ErrorCode.REQUEST_TOO_LARGE
    status_hint = 413
    default_message = "request body too large"


class MalformedMessage(TallyError):
    code = ErrorCode.MALFORMED_MESSAGE
    status_hint = 400
    default_message = "malformed message"


class UnsupportedVersion(MalformedMessage):
    code = ErrorCode.UNSUPPORTED_VERSION
    default_message = "unsupported protocol version"


class InvalidPrincipal(MalformedMessage):
    code = ErrorCode.INVALID_PRINCIPAL
    default_message = "invalid principal name"


class IntegrityError(TallyError):
    """Any AEAD failure.  One code, no detail of which step: attackers learn nothing."""

    code = ErrorCode.INTEGRITY_CHECK_FAILED
    status_hint = 401
    default_message = "integrity check failed"


class AuthenticationRequired(TallyError):
    code = ErrorCode.AUTHENTICATION_REQUIRED
    status_hint = 401
    default_message = "a Tally authorization header is required"


class TicketError(TallyError):
    """The ticket cannot be used: get a new ticket and retry once."""

    status_hint = 401


class TicketExpired(TicketError):
    code = ErrorCode.TICKET_EXPIRED
    default_message = "ticket expired"


class TicketNotYetValid(TicketError):
    code = ErrorCode.TICKET_NOT_YET_VALID
    default_message = "ticket not yet valid"


class UnknownKeyVersion(TicketError):
    code = ErrorCode.UNKNOWN_KEY_VERSION
    default_message = "ticket encrypted under an unknown key version"


class WrongService(TicketError):
    code = ErrorCode.WRONG_SERVICE
    default_message = "ticket is for another service"


class WrongRealm(TicketError):
    code = ErrorCode.WRONG_REALM
    default_message = "ticket is for another realm"


class TicketRevoked(TicketError):
    """The realm revoked this ticket, or every ticket of its login (the client's ``authtime``).

    A ``TicketError`` on purpose: the one bounded "get a new ticket" retry
    is the right reaction.  For a revoked ticket id the client's TGT buys a
    fresh ticket and the request succeeds.  For a revoked principal the TGS
    refuses that TGT with this same code, so the client drops it and logs in
    again, which only a holder of the long-term key can do (a stolen ticket
    or credential cache cannot); a disabled principal's login is refused.
    Raising it as "retrying won't help" would leave the dead TGT cached and
    fail every later request until someone ran ``tally login`` by hand.
    """

    code = ErrorCode.TICKET_REVOKED
    default_message = "ticket revoked"


class RequestRejected(TallyError):
    """Retrying the same request will not help."""

    status_hint = 401


class ReplayDetected(RequestRejected):
    code = ErrorCode.REPLAY_DETECTED
    default_message = "authenticator already used (replay)"


class BindingMismatch(RequestRejected):
    """``data["component"]`` names what differed: method, host, path or body."""

    code = ErrorCode.BINDING_MISMATCH
    default_message = "request does not match the authenticator's binding"


class ClockSkew(RequestRejected):
    """``data["server_time"]`` lets the client correct its offset and retry once."""

    code = ErrorCode.CLOCK_SKEW
    default_message = "clock skew too great"


class ClientMismatch(RequestRejected):
    code = ErrorCode.CLIENT_MISMATCH
    default_message = "authenticator client does not match the ticket"


class KdcRefusal(TallyError):
    """The KDC will not issue a ticket."""

    status_hint = 403


class PreauthFailed(KdcRefusal):
    """Also the answer for unknown client names, so names are not revealed."""

    code = ErrorCode.PREAUTH_FAILED
    status_hint = 401
    default_message = "pre-authentication failed"


class PrincipalDisabled(KdcRefusal):
    code = ErrorCode.PRINCIPAL_DISABLED
    default_message = "principal is disabled"


class LockedOut(KdcRefusal):
    """``data["retry_after"]`` is the number of seconds until the lock lifts."""

    code = ErrorCode.LOCKED_OUT
    status_hint = 429
    default_message = "too many failed attempts; principal temporarily locked"


class RateLimited(KdcRefusal):
    code = ErrorCode.RATE_LIMITED
    status_hint = 429
    default_message = "too many requests"


class UnknownService(KdcRefusal):
    code = ErrorCode.UNKNOWN_SERVICE
    status_hint = 404
    default_message = "unknown service principal"


class PolicyRefused(KdcRefusal):
    code = ErrorCode.POLICY_REFUSED
    default_message = "refused by policy"


class EnrollmentInvalid(KdcRefusal):
    """An enrollment token that is unknown, expired, already used or whose proof is wrong.

    One answer for every reason, so a probe learns nothing; the KDC's audit
    log tells them apart (a second use is a possible interception).
    """

    code = ErrorCode.ENROLLMENT_INVALID
    status_hint = 401
    default_message = ("enrollment token invalid, expired or already used; if you did not use it yourself, "
                       "tell your administrator: it may have been intercepted")


class PairingFailed(KdcRefusal):
    """Wrong code, no open pairing for the name, or the pairing closed: one answer for all."""

    code = ErrorCode.PAIRING_FAILED
    status_hint = 401
    default_message = "pairing failed: wrong code, or no open pairing for this name (ask for a new code)"


class MutualAuthFailed(TallyError):
    """Client side: the service's proof is missing or wrong; do not trust the response."""

    code = ErrorCode.MUTUAL_AUTH_FAILED
    status_hint = 502
    default_message = "the service did not prove its identity"


class StoreUnavailable(TallyError):
    """Redis (or another store) unreachable: fail closed."""

    code = ErrorCode.STORE_UNAVAILABLE
    status_hint = 503
    default_message = "backing store unavailable"


class ReplayCacheRecovering(StoreUnavailable):
    """RFC 4120 §3.2.3: the replay cache may have lost entries (a flush, a restart
    without persistence, a failover that missed writes), so authenticators dated
    before its rebirth plus the skew window are refused.  ``data["retry_after"]``
    is the number of seconds until a fresh authenticator will be accepted.
    """

    code = ErrorCode.REPLAY_CACHE_RECOVERING
    default_message = "replay cache recovering from a loss; retry with a fresh authenticator"


class NotFound(TallyError):
    code = ErrorCode.NOT_FOUND
    status_hint = 404
    default_message = "not found"


class AlreadyExists(TallyError):
    code = ErrorCode.ALREADY_EXISTS
    status_hint = 409
    default_message = "already exists"


class PermissionDenied(TallyError):
    """An authenticated administrator whose roles do not grant the operation (or no role could)."""

    code = ErrorCode.PERMISSION_DENIED
    status_hint = 403
    default_message = "permission denied"


class ConfigurationError(TallyError):
    code = ErrorCode.CONFIGURATION_ERROR
    status_hint = 500
    default_message = "invalid configuration"


class KdcUnreachable(TallyError):
    code = ErrorCode.KDC_UNREACHABLE
    status_hint = 502
    default_message = "the KDC could not be reached"


def error_from_code(code: str, message: str | None = None, **data: Any) -> TallyError:
    """Rebuild the typed error for a wire code; unknown codes become ``TallyError``."""
    try:
        cls = _BY_CODE[ErrorCode(code)]
    except ValueError:
        return TallyError(message or f"unknown error code {code!r}", code=code)
    return cls(message, **data)
