"""Every rate limit of the KDC: per client address, and per client principal for AS and TGS.

Rules this module keeps:

* counters live in the shared Redis, so a limit holds across KDC replicas;
  each is a fixed window, one key per (subject, window) updated with INCR and
  EXPIRE pipelined on that one key (``lockout.RateLimiter``): no multi-key
  operation, so it is Redis Cluster safe, and the key is hash-tagged by its
  subject, spreading principals over the cluster's slots;
* the exchanges count through a ``Batch`` (``queue_address``,
  ``queue_principal``) sent with their other reads, then check the counts
  (``check_address``, ``check_principal``) in the documented order;
* both fail closed: a Redis error is ``StoreUnavailable`` (503), never "allow";
* a refusal is ``RATE_LIMITED`` (429) with ``retry_after``, the seconds until
  the window ends, and is counted in ``tally_kdc_rate_limited_total`` by limit.

The per-principal AS limit counts the *claimed* name, before anything is
decrypted (an unknown name is counted like a real one, so the limit reveals
nothing).  It is counted in the same round trip as the per-address
limit, so a request the address limit refuses has counted against the
claimed name too.  Anyone can therefore spend a victim's AS budget by sending
requests in its name.  What bounds that harm: the counter is fixed-window and
a refusal adds no penalty, so the victim can log in again at the latest one
window (``TALLY_PRINCIPAL_RATE_WINDOW_S``, 10 s) after the flood stops, and
the flood itself is bounded by the per-address limit.  Lockout is the
opposite trade: it counts only failed pre-authentications and then locks the
name for ``duration_s`` whatever follows.  The TGS limit counts the
*authenticated* client, after the TGT opened and the authenticator was
claimed, so only a holder of the client's session key can spend it (a
captured TGS request replayed is refused as a replay before it counts).
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from tally_protocol.errors import ConfigurationError, RateLimited
from tally_protocol.principal import Principal
from tally_runtime.metrics import KDC_RATE_LIMITED

from .lockout import RateLimiter, RateLimitPolicy
from .store_batch import Batch, Reply, send_now


class Exchange(enum.StrEnum):
    AS = "as"
    TGS = "tgs"


@dataclass(frozen=True, slots=True)
class PrincipalRateLimitPolicy:
    """At most ``as_requests`` AS and ``tgs_requests`` TGS requests per client principal per ``window_s``."""

    as_requests: int = 20
    tgs_requests: int = 200
    window_s: int = 10

    def __post_init__(self) -> None:
        if self.as_requests < 1 or self.tgs_requests < 1 or self.window_s < 1:
            raise ConfigurationError("per-principal rate limits and their window must be positive")


_ADDRESS_DEFAULT = RateLimitPolicy()


class RateLimits:
    """The KDC's limiters: AS and TGS count in their batches (``queue_*``, ``check_*``), as do the other ``/v1`` calls."""

    def __init__(self, redis_client: redis.Redis, address: RateLimitPolicy = _ADDRESS_DEFAULT,
                 principal: PrincipalRateLimitPolicy = PrincipalRateLimitPolicy(),
                 clock: Callable[[], float] = time.time) -> None:
        self._redis = redis_client
        self.address = RateLimiter(redis_client, address, clock)
        self.principal = principal
        self._per_principal = {
            exchange: RateLimiter(redis_client, RateLimitPolicy(requests, principal.window_s), clock,
                                  prefix=f"tally:rate:{exchange}")
            for exchange, requests in ((Exchange.AS, principal.as_requests), (Exchange.TGS, principal.tgs_requests))
        }
        self._refused = {name: KDC_RATE_LIMITED.labels(name) for name in ("address", "as_principal",
                                                                          "tgs_principal")}

    def queue_address(self, batch: Batch, address: str) -> Reply[int]:
        """Count one request from ``address`` in ``batch``; ``check_address`` the reply."""
        return self.address.queue(batch, address)

    def check_address(self, count: int) -> None:
        """``RateLimited`` when ``count`` (from ``queue_address``) is beyond the address limit."""
        try:
            self.address.refuse_beyond(count)
        except RateLimited as err:
            self._refused["address"].inc()
            raise RateLimited("too many requests from this address", limit="address", **err.data) from None

    def queue_principal(self, batch: Batch, exchange: Exchange, client: Principal) -> Reply[int]:
        """Count one ``exchange`` request of ``client`` in ``batch``; ``check_principal`` the reply."""
        return self._per_principal[exchange].queue(batch, str(client))

    def hit_principal(self, exchange: Exchange, client: Principal) -> None:
        """Count one ``exchange`` request of ``client``; ``RateLimited`` (with the window's rest) beyond its limit."""
        self.check_principal(exchange, send_now(self._redis, lambda batch: self.queue_principal(batch, exchange, client)))

    def check_principal(self, exchange: Exchange, count: int) -> None:
        """``RateLimited`` when ``count`` (from ``queue_principal``) is beyond ``exchange``'s per-principal limit."""
        try:
            self._per_principal[exchange].refuse_beyond(count)
        except RateLimited as err:
            self._refused[f"{exchange}_principal"].inc()
            rest = err.data["retry_after"]
            raise RateLimited(f"too many {exchange.upper()} requests for this principal; retry in {rest} s",
                              limit=f"{exchange}_principal", **err.data) from None
