"""What a KDC app instance holds, kept in ``app.extensions["tally_kdc"]`` (never a global)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from flask import Flask, current_app

from tally_protocol import Random
from tally_protocol.ticket_cache import TicketCache
from tally_protocol.verify import VerifyPolicy
from tally_runtime.replay_cache import RedisReplayCache

from .exchange import TicketPolicy
from .lockout import Lockout
from .principal_db import PrincipalDB
from .rate_limits import RateLimits
from .revocation import RevocationList

EXTENSION = "tally_kdc"


@dataclass(frozen=True)
class KdcState:
    realm: str
    redis: redis.Redis
    db: PrincipalDB
    lockout: Lockout
    #: Per client address (every ``/v1`` request) and per client principal (AS, TGS).
    rate_limiter: RateLimits
    replay_cache: RedisReplayCache
    ticket_policy: TicketPolicy
    verify_policy: VerifyPolicy
    clock: Callable[[], float]
    rng: Random
    #: Checked at the TGS with no cache (cache_s=0): one GET per TGS request.
    revocation: RevocationList
    #: TGTs already opened (a client presents one TGT for every TGS request until it expires).  An entry is
    #: used only while the TGS keyset hands out the very key object that opened it, which the principal
    #: store's unwrap cache keeps for as long as the stored krbtgt version and the master keyring are unchanged.
    tgts: TicketCache = field(default_factory=TicketCache)


def kdc_state(app: Flask | None = None) -> KdcState:
    state = (app or current_app).extensions[EXTENSION]
    assert isinstance(state, KdcState)
    return state
