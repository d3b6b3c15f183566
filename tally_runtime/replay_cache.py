"""Replay caches: Redis (shared by every replica) and in-process.

Both keep the ``tally_protocol.replay.ReplayCache`` contract and run the same
contract test suite.  Redis uses one atomic ``SET key 1 NX PX ttl``: exactly
one of any number of concurrent presentations wins, on whichever replica.

Loss detection (RFC 4120 §3.2.3, docs/protocol.md "Losing the replay
cache"): each cache has a birth time.  Redis keeps it in marker keys written
once (``SET NX``, no expiry) and read in the same ``MULTI`` as every claim, so
a flush, a restart without persistence or a failover that missed writes shows
as a missing marker: it is re-created with birth = now and authenticators
dated before birth + skew are refused with ``ReplayCacheRecovering``.  The
in-process cache is born with its process: a new process forgot everything.

Durability (docs/protocol.md §9.5.1): replication is asynchronous, and a
failover to a replica that missed a claim loses it while the markers, written
long before, survive.  So with ``Durability.min_replicas`` > 0 the claim's
MULTI/EXEC is followed, in the same write on the same connection (to the
master of the key's slot on a Cluster), by ``WAIT min_replicas timeout``; a
claim fewer replicas acknowledged is ``StoreUnavailable`` (fail closed).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import redis

from tally_protocol.errors import StoreUnavailable
from tally_protocol.replay import REPLAY_KEY_SIZE, refuse_before_recovered

from .redis_settings import Durability
from .redis_store import round_trip, store_errors

#: Short prefix: the key is the prefix, a hash tag and 16 raw hash bytes, so
#: memory per entry stays small and keys hash uniformly over cluster slots.
PREFIX = b"tr:"
#: Suffix of a shard's birth marker; no replay key (16 bytes) ends this way at this length.
MARKER = b"birth"
#: Every replay key and its shard's marker share a hash tag (the hex of the key's
#: first byte), so one MULTI touches one slot: Redis Cluster safe.  256 tags
#: spread over a cluster's masters; a shard that loses writes loses its markers too.
SHARDS = 256
#: No replica asked for: a single server, or an operator who chose availability (§9.5.1).
NOT_REPLICATED = Durability()


def shard_tag(key: bytes) -> bytes:
    return b"{%02x}" % key[0]


class RedisReplayCache:
    def __init__(self, client: redis.Redis, prefix: bytes = PREFIX,
                 clock: Callable[[], float] = time.time, *, durability: Durability = NOT_REPLICATED) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._durability = durability

    def entry_key(self, key: bytes) -> bytes:
        return self._prefix + shard_tag(key) + key

    def marker_key(self, key: bytes) -> bytes:
        return self._prefix + shard_tag(key) + MARKER

    def claim(self, key: bytes, ttl_ms: int, *, ctime: int, max_skew_s: int) -> bool:
        if len(key) != REPLAY_KEY_SIZE or ttl_ms <= 0:
            raise ValueError("replay key must be 16 bytes and ttl positive")
        now = self._clock()
        marker, entry = self.marker_key(key), self.entry_key(key)
        wait = self._durability.min_replicas
        commands: list[tuple[object, ...]] = [
            ("MULTI",),
            ("SET", marker, str(math.ceil(now)).encode(), "NX"),  # re-born after a loss, else untouched
            ("GET", marker),
            ("SET", entry, b"1", "NX", "PX", ttl_ms),
            ("EXEC",),
        ]
        if wait:
            commands.append(("WAIT", wait, self._durability.replica_ack_timeout_ms))
        with store_errors():
            replies = round_trip(self._client, entry, commands)
        reborn, raw_birth, claimed = replies[4]
        if wait and replies[5] < wait:
            # Accepting now would let a failover to a replica without this claim accept the
            # authenticator again.  The entry stays on the master: this one is refused either way.
            raise StoreUnavailable(f"the replay claim reached {replies[5]} of the {wait} replicas it needs")
        try:
            birth = float(raw_birth)
        except (TypeError, ValueError):  # someone wrote the marker by hand: we cannot tell, so fail closed
            raise StoreUnavailable("the replay cache's birth marker is unreadable") from None
        if reborn:
            # The first claim to see a loss dates every shard's rebirth, so one window covers
            # the whole store (shards that kept their marker keep their birth: SET NX).
            self.seed(birth=birth)
        # A refused authenticator stays recorded: the client retries with a fresh one.
        refuse_before_recovered(birth, ctime, max_skew_s, now)
        return bool(claimed)

    def seed(self, birth: float = 0.0) -> None:
        """Write every shard's marker unless present (``SET NX``, one pipeline, split per node on a Cluster).

        With ``birth=0``: for a store created empty with its realm, where no
        authenticator can predate the keys (``kdc init``).  After a loss, with
        the loss's rebirth, so every shard recovers in the same window."""
        with store_errors():
            pipe = self._client.pipeline(transaction=False)
            for tag in range(SHARDS):
                pipe.set(self._prefix + shard_tag(bytes([tag])) + MARKER, str(math.ceil(birth)).encode(), nx=True)
            pipe.execute()


class InMemoryReplayCache:
    """For a single process (tests, one-replica deployments without Redis).

    ``birth`` defaults to the construction time: a new process has no record
    of what an earlier one accepted.
    """

    def __init__(self, clock: Callable[[], float] = time.time, *, birth: float | None = None) -> None:
        self._clock = clock
        self._birth = clock() if birth is None else birth
        self._entries: dict[bytes, float] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0

    def claim(self, key: bytes, ttl_ms: int, *, ctime: int, max_skew_s: int) -> bool:
        if len(key) != REPLAY_KEY_SIZE or ttl_ms <= 0:
            raise ValueError("replay key must be 16 bytes and ttl positive")
        now = self._clock()
        refuse_before_recovered(self._birth, ctime, max_skew_s, now)
        with self._lock:
            if now >= self._next_sweep:  # amortised expiry keeps memory bounded
                self._entries = {k: exp for k, exp in self._entries.items() if exp > now}
                self._next_sweep = now + 1.0
            expires = self._entries.get(key)
            if expires is not None and expires > now:
                return False
            self._entries[key] = now + ttl_ms / 1000
            return True

    def __len__(self) -> int:
        return len(self._entries)
