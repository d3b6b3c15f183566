"""Why a captured ``Authorization`` header is refused: every check, not just the first failure.

``verify_ap_request`` stops at the first failed check and says as little as
it must.  Here the same checks, in the same order (see ``tally_protocol.verify``),
are run one by one with the core's own functions and each outcome is kept,
with the numbers an operator needs (both clocks, key versions, the request
the client bound) and the fix for the common causes.

Two views:

* the service's (``ServiceView``: its keytab) opens the ticket, then the
  authenticator under the ticket's session key; the verdict is also asked of
  ``verify_ap_request`` itself, so the report cannot disagree with the service;
* the client's (``ClientView``: its credentials) cannot open the ticket, but
  holds the session key, so it opens the authenticator; ticket times come
  from the credential.

Pure: ``now`` and an optional replay-cache lookup are passed in; a diagnosis
looks the authenticator up but never claims it.  The report holds
names, times, key versions and digests only: never a key, a session key or
the ticket's sealed contents.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from client_sdk.flow import Credential
from tally_protocol.encoding import PROTOCOL_VERSION
from tally_protocol.errors import IntegrityError, TallyError, UnknownKeyVersion
from tally_protocol.keys import Key, Keyset
from tally_protocol.messages import ApRequest, Authenticator, parse_authorization
from tally_protocol.principal import Principal
from tally_protocol.replay import replay_key
from tally_protocol.verify import SESSION_KVNO, VerifyPolicy, verify_ap_request

from .request_rewrites import SeenRequest, compare, remedies

_CLOCK_FIX = ("synchronise the clocks (NTP: chrony or systemd-timesyncd, `timedatectl status` shows whether "
              "the clock is synchronised)")


class Status(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"  # could not be checked (an earlier failure, or the input it needs was not given)


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    summary: str
    fix: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "status": self.status.value, "summary": self.summary, "fix": self.fix,
                "details": self.details}


@dataclass(frozen=True, slots=True)
class Diagnosis:
    view: str
    checks: tuple[Check, ...]
    #: Service view with the full request seen: the code ``verify_ap_request`` gives (None: accepted).
    verdict: str | None = None

    @property
    def ok(self) -> bool:
        return all(c.status is not Status.FAIL for c in self.checks)

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "view": self.view, "verdict": self.verdict,
                "checks": [c.to_dict() for c in self.checks]}


@dataclass(frozen=True, slots=True)
class ServiceView:
    """The service's keytab: its principal and key versions."""

    service: Principal
    keyset: Keyset = field(repr=False)


@dataclass(frozen=True, slots=True)
class ClientView:
    """The client's credentials (from its credential cache)."""

    credentials: Sequence[Credential] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Clocks:
    """This machine's clock and, when known, the service's (e.g. ``server_time`` from a CLOCK_SKEW refusal)."""

    local: float
    server: float | None = None

    @property
    def reference(self) -> float:
        """The clock the service judges by: its own when given, else this machine's."""
        return self.server if self.server is not None else self.local

    def describe(self, t: float) -> dict[str, int]:
        out = {"local_now": int(self.local), "local_minus_t": int(self.local - t)}
        if self.server is not None:
            out |= {"server_now": int(self.server), "server_minus_t": int(self.server - t)}
        return out


def _when(t: float) -> str:
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _nows(clocks: Clocks) -> str:
    here = f"{_when(clocks.local)} on this machine"
    return here if clocks.server is None else f"{_when(clocks.server)} on the service, {here}"


def _duration(seconds: float) -> str:
    s = int(abs(seconds))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


_NOTHING_SEEN = SeenRequest()
_DEFAULT_POLICY = VerifyPolicy()


def diagnose(header: str, view: ServiceView | ClientView, *, clocks: Clocks,
             seen: SeenRequest = _NOTHING_SEEN, policy: VerifyPolicy = _DEFAULT_POLICY,
             replay_seen: Callable[[bytes, int], bool] | None = None) -> Diagnosis:
    """Run every check on ``header``; ``replay_seen(key, ctime)`` is a read-only lookup, never a claim."""
    kind = "service" if isinstance(view, ServiceView) else "client"
    checks: list[Check] = []
    try:
        ap_req = parse_authorization(header)
    except TallyError as err:
        checks.append(Check("header", Status.FAIL, f"the header does not decode: {err.message} ({err.code})",
                            "capture the whole value of the Authorization header (`Tally <token>`)"))
        return Diagnosis(kind, tuple(checks))
    ticket = ap_req.ticket
    checks.append(Check("header", Status.PASS, f"decodes; protocol version {PROTOCOL_VERSION}",
                        details={"protocol_version": PROTOCOL_VERSION, "service": str(ticket.service),
                                 "kvno": ticket.kvno}))
    if isinstance(view, ServiceView):
        auth, client = _service_side(ap_req, view, clocks, policy, checks)
    else:
        auth, client = _client_side(ap_req, view, clocks, policy, checks)
    _authenticator_checks(auth, client, clocks, policy, seen, checks)
    if auth is not None and client is not None and replay_seen is not None:
        checks.append(_replay(replay_seen(replay_key(ticket.service, client, auth.ctime, auth.nonce), auth.ctime)))
    verdict = None
    if isinstance(view, ServiceView) and seen.complete:
        try:
            verify_ap_request(ap_req, service=view.service, keyset=view.keyset, binding=seen.binding(),
                              now=clocks.reference, policy=policy)
        except TallyError as err:
            verdict = str(err.code)
    return Diagnosis(kind, tuple(checks), verdict)


def _service_side(ap_req: ApRequest, view: ServiceView, clocks: Clocks, policy: VerifyPolicy,
                  checks: list[Check]) -> tuple[Authenticator | None, Principal | None]:
    ticket = ap_req.ticket
    service = view.service
    if ticket.service == service:
        checks.append(Check("service", Status.PASS, f"the ticket is for {service}, the keytab's principal"))
    else:
        code = "WRONG_REALM" if ticket.service.realm != service.realm else "WRONG_SERVICE"
        checks.append(Check(
            "service", Status.FAIL,
            f"{code}: the ticket is for {ticket.service}, this keytab is {service}",
            "the client asked for a ticket to another service: make it request a ticket for "
            f"{service} (the name its URL maps to), or run the service with {ticket.service}'s keytab",
            {"code": code, "ticket_service": str(ticket.service), "keytab_service": str(service)}))
        return None, None
    kvno, versions = ticket.kvno, view.keyset.versions
    held = ", ".join(map(str, versions))
    if kvno not in view.keyset:
        older = all(v < kvno for v in versions)
        cause = ("the keytab is older than the KDC's key: export it again and reload the service (SIGHUP)"
                 if older else "the ticket was sealed under a key version this keytab no longer holds "
                 "(purged): the client needs a new ticket (`tally kdestroy` then retry), or keep older "
                 "versions in the keytab")
        checks.append(Check("key_version", Status.FAIL,
                            f"UNKNOWN_KEY_VERSION: the ticket is sealed under kvno {kvno}; this keytab holds {held}",
                            cause, {"ticket_kvno": kvno, "keytab_kvnos": versions}))
        return None, None
    checks.append(Check("key_version", Status.PASS, f"kvno {kvno} is in the keytab ({held})",
                        details={"ticket_kvno": kvno, "keytab_kvnos": versions}))
    try:
        part = ticket.open(view.keyset)
    except (IntegrityError, UnknownKeyVersion) as err:
        checks.append(Check("ticket", Status.FAIL,
                            f"{err.code}: the ticket does not open under this keytab's kvno {kvno}",
                            "the keytab's key for this version is not the KDC's: the keytab belongs to "
                            "another realm or an earlier install; export it again from this realm's KDC"))
        return None, None
    checks.append(Check("ticket", Status.PASS, f"opens under kvno {kvno}; client {part.client}",
                        details={"client": str(part.client)}))
    checks.append(_times(part.starttime, part.endtime, clocks, policy))
    return _open(ap_req, Key(part.session_key, SESSION_KVNO), checks), part.client


def _client_side(ap_req: ApRequest, view: ClientView, clocks: Clocks, policy: VerifyPolicy,
                 checks: list[Check]) -> tuple[Authenticator | None, Principal | None]:
    ticket = ap_req.ticket
    same = [c for c in view.credentials if c.ticket == ticket]
    others = [c for c in view.credentials if c.service == ticket.service and c.ticket != ticket]
    if not same:
        why = (f"it holds another ticket for {ticket.service} (renewed since the capture?)" if others
               else f"it holds no ticket for {ticket.service}")
        checks.append(Check("credential", Status.FAIL,
                            f"this credential cache does not hold the ticket in the header: {why}",
                            "diagnose with the cache of the client that sent the request, or with the "
                            "service's keytab (--keytab)", {"ticket_service": str(ticket.service)}))
        return None, None
    cred = same[0]
    checks.append(Check("credential", Status.PASS,
                        f"the ticket is this cache's ticket for {cred.service} (kvno {ticket.kvno}); "
                        "the client cannot open it, its own record is used",
                        details={"client": str(cred.client), "service": str(cred.service), "kvno": ticket.kvno}))
    checks.append(_times(cred.starttime, cred.endtime, clocks, policy))
    return _open(ap_req, cred.key, checks), cred.client


def _times(start: int, end: int, clocks: Clocks, policy: VerifyPolicy) -> Check:
    now = clocks.reference
    details: dict[str, Any] = {"starttime": start, "endtime": end, "local_now": int(clocks.local)}
    if clocks.server is not None:
        details["server_now"] = int(clocks.server)
    if now < start - policy.max_skew_s:
        return Check("ticket_times", Status.FAIL,
                     f"TICKET_NOT_YET_VALID: the ticket starts at {_when(start)}, {_duration(start - now)} after now "
                     f"({_nows(clocks)}), beyond the {policy.max_skew_s} s allowance",
                     f"the KDC's clock is ahead of the service's: {_CLOCK_FIX}", details)
    if now >= end:
        return Check("ticket_times", Status.FAIL,
                     f"TICKET_EXPIRED: the ticket ended at {_when(end)}, expired {_duration(now - end)} ago "
                     f"(now {_nows(clocks)})",
                     "get a new ticket (the SDK does on a 401; on the command line: `tally login` again); "
                     "if it was just issued, the service's clock is ahead: " + _CLOCK_FIX, details)
    return Check("ticket_times", Status.PASS,
                 f"valid from {_when(start)} to {_when(end)}; {_duration(end - now)} left (now {_nows(clocks)})", details=details)


def _open(ap_req: ApRequest, session_key: Key, checks: list[Check]) -> Authenticator | None:
    try:
        auth = ap_req.open_authenticator(session_key)
    except TallyError as err:
        checks.append(Check("authenticator", Status.FAIL,
                            f"{err.code}: the authenticator does not open under the ticket's session key",
                            "the header was assembled from two requests or altered: capture it again"))
        return None
    checks.append(Check("authenticator", Status.PASS, "opens under the ticket's session key"))
    return auth


def _authenticator_checks(auth: Authenticator | None, client: Principal | None, clocks: Clocks,
                          policy: VerifyPolicy, seen: SeenRequest, checks: list[Check]) -> None:
    if auth is None or client is None:
        for name in ("client", "clock_skew", "binding"):
            checks.append(Check(name, Status.SKIP, "not checked: an earlier check failed"))
        return
    if auth.client == client:
        checks.append(Check("client", Status.PASS, f"the authenticator is from {auth.client}, the ticket's client"))
    else:
        checks.append(Check("client", Status.FAIL,
                            f"CLIENT_MISMATCH: the authenticator names {auth.client}, the ticket {client}",
                            "the client combined one principal's ticket with another's authenticator: "
                            "clear its credential cache and log in again"))
    checks.append(_skew(auth.ctime, clocks, policy))
    checks.append(_binding(auth, seen))


def _skew(ctime: int, clocks: Clocks, policy: VerifyPolicy) -> Check:
    details: dict[str, Any] = {"client_time": ctime, "max_skew": policy.max_skew_s, **clocks.describe(ctime)}
    offset = clocks.reference - ctime  # > 0: the client's clock is behind the service's
    parts = [(f"the client's clock said {_when(ctime)}; this machine's says {_when(clocks.local)} "
             f"({_signed(clocks.local - ctime)})")]
    if clocks.server is not None:
        parts.append(f"the service's says {_when(clocks.server)} ({_signed(clocks.server - ctime)})")
    reading = "; ".join(parts)
    if abs(offset) <= policy.max_skew_s:
        return Check("clock_skew", Status.PASS,
                     f"{reading}: within the ±{policy.max_skew_s} s window", details=details)
    who = "behind" if offset > 0 else "ahead of"
    fix = _CLOCK_FIX
    if clocks.server is not None and abs(clocks.local - ctime) <= policy.max_skew_s:
        fix = f"this machine agrees with the client but not with the service: the service's clock is off; {fix}"
    elif clocks.server is not None and abs(clocks.local - clocks.server) <= policy.max_skew_s:
        fix = f"this machine agrees with the service: the client's clock is off; {fix}"
    elif abs(offset) > 30 * 86400:
        fix = f"that is more than 30 days: the header may be an old capture; capture a fresh one, or {fix}"
    return Check("clock_skew", Status.FAIL,
                 f"CLOCK_SKEW: {reading}: the client's clock is {_duration(offset)} {who} the service's, "
                 f"beyond the ±{policy.max_skew_s} s window (TALLY_MAX_SKEW)", fix, details)


def _signed(seconds: float) -> str:
    s = int(seconds)
    return f"{abs(s)} s {'ahead of' if s >= 0 else 'behind'} the client's"


def _binding(auth: Authenticator, seen: SeenRequest) -> Check:
    bound = auth.binding.describe()
    if seen.empty:
        return Check("binding", Status.SKIP,
                     "the client bound {method} {host}{path}, body sha256 {body_sha256}; give what the "
                     "service saw (--url or --host/--path, --method, --body-file/--body-sha256) to compare"
                     .format(**bound), details={"bound": bound})
    differences = compare(auth.binding, seen)
    details = {"bound": bound, "differences": [{"component": d.component, "bound": d.bound, "seen": d.seen}
                                               for d in differences]}
    if not differences:
        given = [n for n, v in (("method", seen.method), ("host", seen.host), ("path", seen.path),
                                ("body", seen.body_sha256)) if v is not None]
        return Check("binding", Status.PASS,
                     f"the request matches the one the client bound ({', '.join(given)} compared)",
                     details=details)
    lines = [f"{d.component}: client bound {d.bound!r}, service saw {d.seen!r}: {d.cause}" for d in differences]
    fixes = " | ".join(remedies(auth.binding, seen, differences))
    return Check("binding", Status.FAIL, "BINDING_MISMATCH: " + " | ".join(lines), fixes, details)


def _replay(seen_before: bool) -> Check:
    if not seen_before:
        return Check("replay", Status.PASS, "not in the replay cache (looked up, not claimed)")
    return Check("replay", Status.FAIL,
                 "REPLAY_DETECTED: this authenticator is already in the replay cache: the header was used before",
                 "each request needs a fresh header: do not resend a captured one (a retrying proxy, or a "
                 "client library resending the same headers, does)")
