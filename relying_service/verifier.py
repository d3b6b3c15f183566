"""The relying service's verifier: the I/O shell around ``verify_ap_request``.

Data moves core -> adapter once, in the order ``tally_protocol.verify`` writes
down: parse the ``Authorization`` header, run the pure check with the clock's
``now``, then the realm's revocation list (a cached copy, at most one Redis
GET per second), then claim the replay key in the shared store, last, so a
store round trip is only spent on a request that is otherwise valid and a
skewed or revoked request never adds an entry.  There is no "no store" mode:
without a replay cache nothing is accepted, and a store failure propagates
as ``StoreUnavailable`` (503), never as an acceptance.

Tickets already opened are kept (``TicketCache``: exact bytes, the very key
that opened them, never past their end time), so a client's next request
with the same ticket skips only the ticket's AEAD and parse; every check of
the request itself runs each time.

A ticket under a key version the keyset lacks makes a ``KeytabSource``
look at its file again (rate-limited) and the check run once more: a
replica that missed the SIGHUP after a rotation heals on the first ticket
under the new version.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from tally_protocol import Random
from tally_protocol.binding import RequestBinding
from tally_protocol.errors import ReplayDetected, TallyError, TicketRevoked, UnknownKeyVersion
from tally_protocol.keys import Keyset
from tally_protocol.messages import ApRequest, parse_authorization
from tally_protocol.principal import Principal
from tally_protocol.replay import ReplayCache, claim_or_reject
from tally_protocol.ticket_cache import DEFAULT_MAX_ENTRIES, TicketCache
from tally_protocol.verify import Verified, VerifyPolicy, make_ap_reply, verify_ap_request
from tally_runtime.metrics import SERVICE_REFUSALS, SERVICE_REPLAYS, SERVICE_VERIFICATIONS, SERVICE_VERIFY_SECONDS

from .keytab_source import DEFAULT_MIN_INTERVAL_S, KeytabSource

#: AEAD nonce size for the AP reply.
REPLY_NONCE_SIZE = 12

DEFAULT_POLICY = VerifyPolicy()

_log = logging.getLogger("tally.service")


class RevocationCheck(Protocol):
    """The realm's revocation list as a verifier consults it (``kdc.revocation.RevocationList``)."""

    def is_revoked(self, client: Principal, authtime: int, ticket_id: bytes) -> bool: ...


class Verifier:
    """Checks ``Authorization: Tally ...`` headers for one service principal.

    ``keyset`` is a ``Keyset``, a zero-argument callable returning the current
    one, or a ``KeytabSource`` (reloaded on SIGHUP and on unknown versions);
    every request asks ``current_keyset()``.  ``revocation``, when given, is
    consulted for every otherwise valid ticket (``TicketRevoked``).
    ``opened_tickets`` bounds the cache of opened tickets (0: none).
    """

    def __init__(
        self,
        service: Principal,
        keyset: Keyset | Callable[[], Keyset] | KeytabSource,
        replay_cache: ReplayCache,
        *,
        policy: VerifyPolicy = DEFAULT_POLICY,
        revocation: RevocationCheck | None = None,
        clock: Callable[[], float] = time.time,
        rng: Random = os.urandom,
        opened_tickets: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if replay_cache is None:  # a verifier without a store would accept replays
            raise TypeError("a replay cache is required: without one nothing can be accepted")
        self._service = service
        self._keyset = keyset
        self._replay_cache = replay_cache
        self._policy = policy
        self._revocation = revocation
        self._clock = clock
        self._rng = rng
        self._tickets = TicketCache(opened_tickets) if opened_tickets else None
        # Label children made once: a request pays increments and one observation, no label lookups
        # (except the refusal's code).  The service principal is the only name in a label.
        self._name = name = str(service)
        self._accepted = SERVICE_VERIFICATIONS.labels(name, "accepted")
        self._refused = SERVICE_VERIFICATIONS.labels(name, "refused")
        self._replays = SERVICE_REPLAYS.labels(name)
        self._seconds = SERVICE_VERIFY_SECONDS.labels(name)

    @classmethod
    def from_keytab(
        cls,
        path: Path | str,
        *,
        replay_cache: ReplayCache,
        policy: VerifyPolicy = DEFAULT_POLICY,
        revocation: RevocationCheck | None = None,
        reload_interval_s: float = DEFAULT_MIN_INTERVAL_S,
        clock: Callable[[], float] = time.time,
        rng: Random = os.urandom,
    ) -> Verifier:
        """A verifier for the principal and key versions held in the keytab at ``path``, kept current."""
        source = KeytabSource(path, min_interval_s=reload_interval_s)
        return cls(source.principal, source, replay_cache, policy=policy, revocation=revocation, clock=clock,
                   rng=rng)

    @property
    def service(self) -> Principal:
        return self._service

    @property
    def realm(self) -> str:
        return self._service.realm

    @property
    def policy(self) -> VerifyPolicy:
        return self._policy

    @property
    def keytab(self) -> KeytabSource | None:
        """The keytab file this verifier reloads, when it was built from one."""
        return self._keyset if isinstance(self._keyset, KeytabSource) else None

    def reload_keys_on_sighup(self) -> bool:
        """Reload the keytab on SIGHUP; False when there is no keytab file or no handler could be installed."""
        keytab = self.keytab
        return keytab is not None and keytab.reload_on_sighup()

    def current_keyset(self) -> Keyset:
        """The key versions to accept now."""
        keyset = self._keyset
        if isinstance(keyset, Keyset):
            return keyset
        return keyset.keyset() if isinstance(keyset, KeytabSource) else keyset()

    def _check(self, ap_req: ApRequest, binding: RequestBinding) -> Verified:
        try:
            return verify_ap_request(ap_req, service=self._service, keyset=self.current_keyset(), binding=binding,
                                     now=self._clock(), policy=self._policy, tickets=self._tickets)
        except UnknownKeyVersion as err:
            keytab = self.keytab
            if keytab is None or not keytab.reload_for_unknown(ap_req.ticket.kvno):
                raise
            _log.info("verifying again after a keytab reload", extra={"fields": {
                "service": self._name, "kvno": err.data.get("kvno")}})
        return verify_ap_request(ap_req, service=self._service, keyset=self.current_keyset(), binding=binding,
                                 now=self._clock(), policy=self._policy, tickets=self._tickets)

    def verify(self, authorization: str | None, binding: RequestBinding) -> Verified:
        """Verify one request; raise the ``TallyError`` that says why it is refused."""
        start = time.perf_counter()
        try:
            ap_req = parse_authorization(authorization)
            verified = self._check(ap_req, binding)
            ticket = verified.ticket
            if self._revocation is not None and self._revocation.is_revoked(verified.client, ticket.authtime,
                                                                            ticket.ticket_id):
                raise TicketRevoked()
            # Last: only an otherwise valid, in-window authenticator reaches the store.
            claim_or_reject(self._replay_cache, verified.replay_key, verified.replay_ttl_ms,
                            ctime=verified.authenticator.ctime, max_skew_s=self._policy.max_skew_s)
        except TallyError as err:
            self._seconds.observe(time.perf_counter() - start)
            self._refused.inc()
            SERVICE_REFUSALS.labels(self._name, str(err.code)).inc()
            if isinstance(err, ReplayDetected):
                self._replays.inc()
            _log.info("request refused", extra={"fields": {
                "service": self._name, "outcome": "refused", "reason": str(err.code)}})
            raise
        self._seconds.observe(time.perf_counter() - start)
        self._accepted.inc()
        _log.info("request authenticated", extra={"fields": {
            "service": self._name, "client": str(verified.client), "kvno": verified.kvno}})
        return verified

    def reply_header(self, verified: Verified, status: int, body: bytes) -> str:
        """The ``Authentication-Info`` value proving this service, bound to the final status and body."""
        return make_ap_reply(verified, status=status, body=body, nonce=self._rng(REPLY_NONCE_SIZE))
