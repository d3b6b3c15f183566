"""Replay caches: Redis (shared by every replica) and in-process.

Both keep the ``tally_protocol.replay.ReplayCache`` contract and run the same
contract test suite.  Redis runs one server-side script per claim (``CLAIM``,
by ``EVALSHA``), atomically on the node of the key's shard: exactly one of
any number of concurrent presentations wins, on whichever replica.

Layout (docs/protocol.md §9.5): an accepted authenticator is a 14-byte member
of a set, one set per shard and ``BUCKET_S`` window of its ``ctime``
(``tr:{xx}<ctime // 32>``), and the set expires with its longest-lived
member.  A replay carries the same ``ctime``, so it lands in the same set;
and one member costs ~70 B of Redis memory where a key per entry cost ~118 B
(a key, its own expiry entry and its own dict slot each).

Loss detection (RFC 4120 §3.2.3, docs/protocol.md "Losing the replay
cache"): each cache has a birth time.  Redis keeps it in marker keys written
once (``SET NX``, no expiry) and read by the same script as every claim, so
a flush, a restart without persistence or a failover that missed writes shows
as a missing marker: it is re-created with birth = now and authenticators
dated before birth + skew are refused with ``ReplayCacheRecovering``.  The
in-process cache is born with its process: a new process forgot everything.

Durability (docs/protocol.md §9.5.1): replication is asynchronous, and a
failover to a replica that missed a claim loses it while the markers, written
long before, survive.  So with ``Durability.min_replicas`` > 0 the claim is
followed, in the same write on the same connection (to the master of the
key's slot on a Cluster), by ``WAIT min_replicas timeout``; a claim fewer
replicas acknowledged is ``StoreUnavailable`` (fail closed).
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from tally_protocol.errors import StoreUnavailable
from tally_protocol.replay import REPLAY_KEY_SIZE, refuse_before_recovered

from .group_commit import GroupCommit
from .redis_settings import Durability
from .redis_store import is_cluster, round_trip, store_errors

#: Short prefix: keys stay small and, with the hash tag, spread evenly over cluster slots.
PREFIX = b"tr:"
#: Suffix of a shard's birth marker.  ".2" names this layout: a store written in the earlier
#: one (a key per entry, markers ``tr:{xx}birth``) has no such marker, so it reads as a loss
#: and is refused for one window instead of trusted with entries this code cannot see.
MARKER = b"birth.2"
#: Every bucket of a shard and the shard's marker share a hash tag (the hex of the key's first
#: byte), so one script touches one slot: Redis Cluster safe.  256 tags spread over a
#: cluster's masters; a shard that loses writes loses its markers too.
SHARDS = 256
#: Width of a bucket in seconds of ``ctime``: an entry outlives its TTL by less than this.
BUCKET_S = 32
#: Bytes of the replay key stored as the member, after the first (the shard tag holds it).
#: 14 bytes is the largest member in Redis's 16-byte allocation class; with the shard byte
#: 120 bits of the key remain, so two authenticators share a member with negligible odds,
#: and that could only refuse a fresh one, never accept a replay.
MEMBER_SIZE = 14
#: No replica asked for: a single server, or an operator who chose availability (§9.5.1).
NOT_REPLICATED = Durability()

#: KEYS: marker, bucket.  ARGV: birth if re-born (ceil(now)), member, ttl_ms.
#: Returns {1 if the marker was re-born else 0, the marker's birth, 1 if claimed else 0}.
CLAIM = b"""\
local reborn = redis.call('SET', KEYS[1], ARGV[1], 'NX')
local birth = redis.call('GET', KEYS[1])
local claimed = redis.call('SADD', KEYS[2], ARGV[2])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return {reborn and 1 or 0, birth, claimed}
"""
CLAIM_SHA = hashlib.sha1(CLAIM).hexdigest().encode()


def shard_tag(key: bytes) -> bytes:
    return b"{%02x}" % key[0]


#: One claim's reply from the script: (1 if the marker was re-born else 0, the birth, 1 if claimed else 0).
ClaimReply = list[Any]


class RedisReplayCache:
    """The shared replay cache.  Concurrent claims of one process's threads share round trips
    (``GroupCommit``; ``group_commit=False`` sends each alone), except on a Cluster, where each
    goes to the node of its own shard."""

    def __init__(self, client: redis.Redis, prefix: bytes = PREFIX,
                 clock: Callable[[], float] = time.time, *, durability: Durability = NOT_REPLICATED,
                 group_commit: bool = True) -> None:
        self._client = client
        self._prefix = prefix
        self._clock = clock
        self._durability = durability
        self._batches: GroupCommit[tuple[Any, ...], ClaimReply] | None = (
            GroupCommit(self._run) if group_commit and not is_cluster(client) else None)

    def entry(self, key: bytes, ctime: int) -> tuple[bytes, bytes]:
        """Where a claim of ``key`` (an authenticator dated ``ctime``) is recorded: its set and its member."""
        return self._prefix + shard_tag(key) + b"%d" % (ctime // BUCKET_S), key[1:1 + MEMBER_SIZE]

    def marker_key(self, key: bytes) -> bytes:
        return self._prefix + shard_tag(key) + MARKER

    def holds(self, key: bytes, ctime: int) -> bool:
        """Whether ``key`` is recorded (read-only: ``SISMEMBER``, for diagnosis)."""
        with store_errors():
            return bool(self._client.sismember(*self.entry(key, ctime)))  # type: ignore[arg-type]

    def claim(self, key: bytes, ttl_ms: int, *, ctime: int, max_skew_s: int) -> bool:
        if len(key) != REPLAY_KEY_SIZE or ttl_ms <= 0:
            raise ValueError("replay key must be 16 bytes and ttl positive")
        now = self._clock()
        bucket, member = self.entry(key, ctime)
        command = (CLAIM_SHA, 2, self.marker_key(key), bucket, str(math.ceil(now)).encode(), member, ttl_ms)
        reborn, raw_birth, claimed = self._batches.submit(command) if self._batches else self._run([command])[0]
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

    def _run(self, commands: list[tuple[Any, ...]]) -> list[ClaimReply]:
        """Run claim scripts (``EVALSHA`` arguments) in one write, then ``WAIT`` when replicas are required.

        On a Cluster ``commands`` is one claim, sent to the master of its shard."""
        wait = self._durability.min_replicas
        waits: list[tuple[Any, ...]] = [("WAIT", wait, self._durability.replica_ack_timeout_ms)] if wait else []
        route = commands[0][3]  # the first claim's bucket: every command of a batch goes to the same server
        send = functools.partial(round_trip, self._client, route)  # on the sending thread's own connection
        with store_errors():
            try:
                replies = send([("EVALSHA", *c) for c in commands] + waits)
            except redis.exceptions.NoScriptError:
                # A node that has not run it yet (new, restarted, failed over): nothing ran, so send the
                # script itself first, in the same write, on the same connection; it keeps it from then on.
                first, *rest = commands
                replies = send([("EVAL", CLAIM, *first[1:])] + [("EVALSHA", *c) for c in rest] + waits)
        if wait and replies[-1] < wait:
            # Accepting now would let a failover to a replica without these claims accept an
            # authenticator again.  The entries stay on the master: these are refused either way.
            raise StoreUnavailable(f"the replay claim reached {replies[-1]} of the {wait} replicas it needs")
        return replies[:len(commands)]

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
