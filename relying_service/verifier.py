"""The relying service's verifier: the I/O shell around ``verify_ap_request``.

Data moves core -> adapter once, in the order ``tally_protocol.verify`` writes
down: parse the ``Authorization`` header, run the pure check with the clock's
``now``, then claim the replay key in the shared store, last, so a store
round trip is only spent on a request that is otherwise valid and a skewed
request never adds an entry.  There is no "no store" mode: without a replay
cache nothing is accepted, and a store failure propagates as
``StoreUnavailable`` (503), never as an acceptance.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from tally_protocol import Random
from tally_protocol.binding import RequestBinding
from tally_protocol.errors import TallyError
from tally_protocol.keys import Keyset
from tally_protocol.messages import parse_authorization
from tally_protocol.principal import Principal
from tally_protocol.replay import ReplayCache, claim_or_reject
from tally_protocol.verify import Verified, VerifyPolicy, make_ap_reply, verify_ap_request
from tally_runtime.keytab_file import read_keytab

#: AEAD nonce size for the AP reply.
REPLY_NONCE_SIZE = 12

DEFAULT_POLICY = VerifyPolicy()

_log = logging.getLogger("tally.service")


class Verifier:
    """Checks ``Authorization: Tally ...`` headers for one service principal.

    ``keyset`` is a ``Keyset`` or a zero-argument callable returning the current
    one; every request asks ``current_keyset()``, so a keytab reload only has to
    swap what that method returns.
    """

    def __init__(
        self,
        service: Principal,
        keyset: Keyset | Callable[[], Keyset],
        replay_cache: ReplayCache,
        *,
        policy: VerifyPolicy = DEFAULT_POLICY,
        clock: Callable[[], float] = time.time,
        rng: Random = os.urandom,
    ) -> None:
        if replay_cache is None:  # a verifier without a store would accept replays
            raise TypeError("a replay cache is required: without one nothing can be accepted")
        self._service = service
        self._keyset = keyset
        self._replay_cache = replay_cache
        self._policy = policy
        self._clock = clock
        self._rng = rng

    @classmethod
    def from_keytab(
        cls,
        path: Path | str,
        *,
        replay_cache: ReplayCache,
        policy: VerifyPolicy = DEFAULT_POLICY,
        clock: Callable[[], float] = time.time,
        rng: Random = os.urandom,
    ) -> Verifier:
        """A verifier for the principal and key versions held in the keytab at ``path``."""
        service, keyset = read_keytab(path)
        return cls(service, keyset, replay_cache, policy=policy, clock=clock, rng=rng)

    @property
    def service(self) -> Principal:
        return self._service

    @property
    def realm(self) -> str:
        return self._service.realm

    @property
    def policy(self) -> VerifyPolicy:
        return self._policy

    def current_keyset(self) -> Keyset:
        """The key versions to accept now (the seam a keytab reload will use)."""
        keyset = self._keyset
        return keyset if isinstance(keyset, Keyset) else keyset()

    def verify(self, authorization: str | None, binding: RequestBinding) -> Verified:
        """Verify one request; raise the ``TallyError`` that says why it is refused."""
        try:
            ap_req = parse_authorization(authorization)
            verified = verify_ap_request(
                ap_req, service=self._service, keyset=self.current_keyset(), binding=binding,
                now=self._clock(), policy=self._policy,
            )
            # Last: only an otherwise valid, in-window authenticator reaches the store.
            claim_or_reject(self._replay_cache, verified.replay_key, verified.replay_ttl_ms)
        except TallyError as err:
            _log.info("request refused", extra={"fields": {
                "service": str(self._service), "outcome": "refused", "reason": str(err.code)}})
            raise
        _log.debug("request authenticated", extra={"fields": {
            "service": str(self._service), "client": str(verified.client), "kvno": verified.kvno}})
        return verified

    def reply_header(self, verified: Verified, status: int, body: bytes) -> str:
        """The ``Authentication-Info`` value proving this service, bound to the final status and body."""
        return make_ap_reply(verified, status=status, body=body, nonce=self._rng(REPLY_NONCE_SIZE))
