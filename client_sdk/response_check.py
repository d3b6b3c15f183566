"""What the client does with a relying service's answer: accept, retry once, or raise.

Rules this file keeps (shared by ``Client.request`` and both plug-ins):

* a response carrying ``Authentication-Info`` is the application's answer,
  whatever its status: it is returned only when the proof checks out for this
  request, this status and these body bytes, else ``MutualAuthFailed``;
* a response without the proof is never returned.  When it is an error
  (status >= 400) with a JSON body carrying a tallystick error code, it is the
  auth layer's refusal and becomes the typed error; otherwise (an application
  or proxy answer stripped of its proof) ``MutualAuthFailed``;
* of the refusals, two may be retried once: ``TicketError`` ("get a new
  ticket") and ``ClockSkew`` carrying ``server_time`` ("correct your clock").
  ``RequestRejected`` (replay, binding) is raised: the same request cannot
  succeed.  A 503 ``StoreUnavailable`` (a store outage, or a replay cache
  recovering from a loss, RFC 4120 §3.2.3) or a 429 ``RateLimited`` is
  retried once with a fresh authenticator after waiting its ``Retry-After``,
  when that is at most ``max_wait_s``; otherwise it is raised, keeping
  ``retry_after``.  ``LockedOut`` (also 429) is never waited out.

No I/O here: the caller applies the verdict (drop the ticket, set the offset).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from tally_protocol.errors import ClockSkew, RateLimited, StoreUnavailable, TallyError, TicketError

from .flow import ApContext
from .wire_errors import error_from_body

AUTH_INFO_HEADER = "Authentication-Info"


class Retry(enum.Enum):
    NEW_TICKET = "new-ticket"
    CORRECT_CLOCK = "correct-clock"
    AFTER_WAIT = "after-wait"


@dataclass(frozen=True, slots=True)
class Verdict:
    """``retry`` is ``None`` when the response is accepted (its proof checked out)."""

    retry: Retry | None = None
    server_time: int | None = None
    #: Seconds to wait before ``Retry.AFTER_WAIT`` (the server's ``Retry-After``).
    wait_s: int = 0


def wait_for(err: TallyError, max_wait_s: float) -> int | None:
    """The ``retry_after`` of a 503 or a rate limit when it is worth waiting for (at most ``max_wait_s``), else None."""
    if not isinstance(err, (StoreUnavailable, RateLimited)):
        return None
    wait = err.data.get("retry_after")
    if isinstance(wait, int) and not isinstance(wait, bool) and 0 <= wait <= max_wait_s:
        return wait
    return None


ACCEPT = Verdict()


def check_response(context: ApContext, *, status: int, proof: str | None, body: bytes,
                   retry_after: str | None = None, may_retry: bool = True, max_wait_s: float = 0) -> Verdict:
    """Judge one response to a request signed with ``context``; raise when it cannot be used."""
    if proof is None and status >= 400:
        err = error_from_body(body, retry_after, known_only=True)
        if err is not None:
            if may_retry and isinstance(err, ClockSkew):
                server_time = err.data.get("server_time")
                if isinstance(server_time, int) and not isinstance(server_time, bool):
                    return Verdict(Retry.CORRECT_CLOCK, server_time)
            if may_retry and isinstance(err, TicketError):
                return Verdict(Retry.NEW_TICKET)
            if may_retry:
                wait = wait_for(err, max_wait_s)
                if wait is not None:
                    return Verdict(Retry.AFTER_WAIT, wait_s=wait)
            raise err
    context.check_reply(proof, status=status, body=body)
    return ACCEPT
