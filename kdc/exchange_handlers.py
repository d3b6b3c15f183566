"""The AS and TGS exchanges against the store: plain functions of the KDC's state, the address and the body.

``exchange.py`` holds the pure exchanges; here they meet the store, the
limits, the replay cache and the audit log.  ``exchange_front`` calls
``answer_as`` and ``answer_tgs`` for ``POST /v1/as`` and ``POST /v1/tgs``;
nothing here knows about Flask or WSGI.

Order of checks in the AS exchange (each line stops an attack):

1. rate limit per client address: the first verdict, whatever the body says (its count rides the first round trip)
2. parse (``MalformedMessage`` -> 400)
3. realm, then the rate limit per claimed client name, then lockout for that
   name (known or not): both before any key is unwrapped or anything opened
4. look up the client; an unknown name gets a decoy key, so it fails in
   ``check_preauth`` on the same code path as a wrong key (PREAUTH_FAILED)
5. pre-authentication (failures counted for lockout), clock skew
6. replay claim of the pre-authentication (a captured AS request is refused)
7. disabled? (only revealed to someone who proved the key)
8. issue the TGT under the TGS's current key

The TGS exchange verifies the TGT with the relying services' verifier,
consults the realm's revocation list (a revoked TGT buys nothing, not even a
renewal), claims the authenticator, counts the now authenticated client
against its rate limit, then re-checks the client (a disabled
client's TGT buys no new tickets) and the requested service.  Tickets are
issued under the newest *active* key version (a pending one is only
accepted).  Every issuance and refusal is audited with names and codes only;
an issuance also names the ticket's ``ticket_id`` (hex), ``authtime`` and
``endtime``, so an administrator can revoke one ticket
(``tally admin revoke-ticket``) or every ticket of one login.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tally_protocol.codes import TgsOptions
from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.errors import (
    InvalidRequest,
    PreauthFailed,
    PrincipalDisabled,
    TallyError,
    TicketRevoked,
    UnknownService,
    WrongRealm,
)
from tally_protocol.keys import Key
from tally_protocol.messages import AsReply, AsRequest, TgsReply, TgsRequest
from tally_protocol.principal import Principal
from tally_protocol.replay import claim_or_reject
from tally_runtime.logs import audit

from .admin.policies import EffectivePolicy, PolicyStore
from .exchange import Issued, check_preauth, check_tgs_request, issue_service_ticket, issue_tgt
from .lockout import Lockout, LockState
from .rate_limits import Exchange
from .records import PrincipalKind, PrincipalRecord
from .state import KdcState
from .store_batch import Batch, Reply


def json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object (whatever the Content-Type says); ``InvalidRequest`` otherwise."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


def json_field(body: bytes, name: str) -> bytes:
    """The base64url string field ``name`` of the JSON object ``body``, decoded; ``InvalidRequest`` otherwise."""
    value = json_object(body).get(name)
    if not isinstance(value, str):
        raise InvalidRequest(f"missing field {name!r} (a base64url string)")
    return b64decode(value)


def _audit(address: str, event: str, outcome: str, **fields: Any) -> None:
    audit(event, outcome, address=address, **{k: v for k, v in fields.items() if v is not None})


def send_first(state: KdcState, batch: Batch, counted: Reply[int], *, endpoint: str, address: str) -> None:
    """Send an endpoint's first round trip; the address limit is its first verdict, before any on the body.

    Every ``/v1`` endpoint of the KDC counts its address here, AS and TGS
    with the other reads of their exchange (``counted`` from ``queue_address``),
    the others alone (``limit_address``).
    """
    try:
        batch.send()
        state.rate_limiter.check_address(counted.value)
    except TallyError as err:
        _audit(address, "kdc.refuse", "refused", endpoint=endpoint, error=str(err.code))
        raise


def limit_address(state: KdcState, address: str, *, endpoint: str) -> None:
    """The address limit alone, refused and audited as in the exchanges: for a ``/v1`` endpoint with no reads to join."""
    batch = Batch(state.redis)
    send_first(state, batch, state.rate_limiter.queue_address(batch, address), endpoint=endpoint, address=address)


def _issue_fields(issued: Issued[Any]) -> dict[str, Any]:
    """What an issuance audit event says about the ticket: enough to revoke it, nothing secret."""
    part = issued.part
    return {"kvno": issued.reply.ticket.kvno, "ticket_id": part.ticket_id.hex(), "authtime": part.authtime,
            "endtime": part.endtime}


@dataclass(frozen=True, slots=True)
class _AsReads:
    """What the AS exchange reads and counts in its first round trip, with the address limit."""

    principal_count: Reply[int]
    lock: Reply[LockState]
    policy: Reply[tuple[EffectivePolicy, ...]]
    client: Reply[PrincipalRecord | None]
    tgs: Reply[PrincipalRecord | None]


def _queue_as_reads(state: KdcState, policies: PolicyStore, batch: Batch, client: Principal) -> _AsReads | None:
    """Queue the AS exchange's reads; None for a client of another realm (nothing of it is read or counted)."""
    if client.realm != state.realm:
        return None
    db = state.db
    return _AsReads(
        principal_count=state.rate_limiter.queue_principal(batch, Exchange.AS, client),
        lock=state.lockout.queue_state(batch, str(client)),
        policy=policies.queue_resolve(batch, client),  # realm default and the client's override
        client=db.queue_find(batch, client),
        tgs=db.queue_find(batch, db.tgs),
    )


def _as_exchange(state: KdcState, as_req: AsRequest, as_req_bytes: bytes, reads: _AsReads | None) -> Issued[AsReply]:
    now = state.clock()
    client, db = as_req.client, state.db
    if reads is None:
        raise WrongRealm(expected=state.realm)
    name = str(client)
    state.rate_limiter.check_principal(Exchange.AS, reads.principal_count.value)  # the claimed name: nothing opened
    lock = reads.lock.value
    state.lockout.check(name, lock)
    policy, = reads.policy.value
    record = reads.client.value
    if record is not None and record.kind is not PrincipalKind.TGS:
        # Clients seal with kvno 0, "the current key" (Kerberos omits the kvno).
        client_key = Key(db.unwrap_current(record).material, 0)
    else:
        record, client_key = None, db.decoy_key(client)
    try:
        checked = check_preauth(as_req, client_key, now=now, verify=state.verify_policy)
    except PreauthFailed:
        lockout = state.lockout if policy.lockout == state.lockout.policy else Lockout(
            state.redis, state.realm, policy.lockout, state.clock, state.rng)
        lockout.record_failure(name)
        raise
    if record is None:  # unreachable without the realm's decoy secret; never issue for a decoy
        raise PreauthFailed()
    claim_or_reject(state.replay_cache, checked.replay_key, checked.replay_ttl_ms, ctime=checked.ctime,
                    max_skew_s=state.verify_policy.max_skew_s)
    state.lockout.record_success(name, lock)
    if record.disabled:
        raise PrincipalDisabled()
    tgs_key = db.unwrap_current(db.require(reads.tgs.value, db.tgs))
    return issue_tgt(checked, as_req_bytes, client_key=client_key, tgs_key=tgs_key, policy=policy.ticket,
                     now=now, rng=state.rng)


def answer_as(state: KdcState, policies: PolicyStore, address: str, body: bytes) -> dict[str, str]:
    """``POST /v1/as``: the JSON answer to ``body`` from ``address``; a refusal is raised, audited."""
    batch = Batch(state.redis)
    counted = state.rate_limiter.queue_address(batch, address)
    try:
        as_req_bytes = json_field(body, "as_req")
        as_req = AsRequest.from_bytes(as_req_bytes)
    except TallyError as err:
        send_first(state, batch, counted, endpoint="/v1/as", address=address)  # a limited address hears 429
        _audit(address, "as.refuse", "refused", error=str(err.code))
        raise
    seen = {"principal": str(as_req.client), "service": str(as_req.service)}
    reads = _queue_as_reads(state, policies, batch, as_req.client)
    send_first(state, batch, counted, endpoint="/v1/as", address=address)
    try:
        issued = _as_exchange(state, as_req, as_req_bytes, reads)
    except TallyError as err:
        _audit(address, "as.refuse", "refused", **seen, error=str(err.code))
        raise
    _audit(address, "as.issue", "success", **seen, **_issue_fields(issued))
    return {"as_rep": b64encode(issued.reply.to_bytes())}


def _tgs_exchange(state: KdcState, policies: PolicyStore, tgs_req: TgsRequest,
                  krbtgt: Reply[PrincipalRecord | None], revocation: Reply[int],
                  seen: dict[str, str]) -> Issued[TgsReply]:
    now, db = state.clock(), state.db
    tgs = db.require(krbtgt.value, db.tgs)
    tgs_keys = db.unwrap_keys(tgs)  # pending versions too: every version a TGT may be sealed under
    verified, body = check_tgs_request(tgs_req, realm=state.realm, tgs_keys=tgs_keys, now=now,
                                       verify=state.verify_policy, tgts=state.tgts)
    seen.update(principal=str(verified.client), service=str(body.service))
    tgt = verified.ticket
    if state.revocation.revoked_at(revocation.value, verified.client, tgt.authtime, tgt.ticket_id):
        raise TicketRevoked("the ticket-granting ticket was revoked; log in again")
    claim_or_reject(state.replay_cache, verified.replay_key, verified.replay_ttl_ms,
                    ctime=verified.authenticator.ctime, max_skew_s=state.verify_policy.max_skew_s)
    # Second round trip, after the claim: only the session key's holder spends the client's budget, and the
    # client, the service and their policies are read as they are now.
    batch = Batch(state.redis)
    count = state.rate_limiter.queue_principal(batch, Exchange.TGS, verified.client)
    in_realm = verified.client.realm == state.realm
    client_read = db.queue_find(batch, verified.client) if in_realm else None
    renew = bool(body.options & TgsOptions.RENEW) or body.service == db.tgs
    service_read = db.queue_find(batch, body.service) if not renew and body.service.realm == state.realm else None
    # One HMGET: a service ticket lives at most the shorter of the client's and the service's lifetime.
    target = body.service if body.service.realm == state.realm else db.tgs
    resolved = policies.queue_resolve(batch, verified.client, target) if in_realm else None
    batch.send()
    state.rate_limiter.check_principal(Exchange.TGS, count.value)
    client = client_read.value if client_read is not None else None
    if client is None or client.disabled:
        raise PrincipalDisabled("client principal is disabled or no longer exists")
    if renew:
        service_key = tgs_keys.get(tgs.active(now).kvno)  # the exchange refuses a TGS target without RENEW
    else:
        if body.service.realm != state.realm or service_read is None:
            raise WrongRealm("cross-realm tickets are not supported", expected=state.realm)
        service = service_read.value
        if service is None or service.kind is not PrincipalKind.SERVICE:
            raise UnknownService()
        if service.disabled:
            raise PrincipalDisabled("service principal is disabled")
        service_key = db.unwrap_current(service)
    assert resolved is not None  # a client of this realm, checked above
    client_policy, service_policy = resolved.value
    return issue_service_ticket(verified, body, service_key=service_key,
                                policy=client_policy.for_service(service_policy), now=now, rng=state.rng)


def answer_tgs(state: KdcState, policies: PolicyStore, address: str, body: bytes) -> dict[str, str]:
    """``POST /v1/tgs``: the JSON answer to ``body`` from ``address``; a refusal is raised, audited."""
    batch = Batch(state.redis)
    counted = state.rate_limiter.queue_address(batch, address)
    try:
        tgs_req = TgsRequest.from_bytes(json_field(body, "tgs_req"))
    except TallyError as err:
        send_first(state, batch, counted, endpoint="/v1/tgs", address=address)  # a limited address hears 429
        _audit(address, "tgs.refuse", "refused", error=str(err.code))
        raise
    krbtgt = state.db.queue_find(batch, state.db.tgs)
    revocation = state.revocation.queue_version(batch)
    send_first(state, batch, counted, endpoint="/v1/tgs", address=address)
    seen: dict[str, str] = {}
    try:
        issued = _tgs_exchange(state, policies, tgs_req, krbtgt, revocation, seen)
    except TallyError as err:
        _audit(address, "tgs.refuse", "refused", **seen, error=str(err.code))
        raise
    _audit(address, "tgs.issue", "success", **seen, **_issue_fields(issued))
    return {"tgs_rep": b64encode(issued.reply.to_bytes())}
