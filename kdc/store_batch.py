"""Independent Redis commands of one exchange, sent in one round trip.

An AS or TGS exchange needs a handful of unrelated reads and counters (rate
limits, lockout, policies, principal records, the revocation list's
version).  Sent one by one they cost a round trip and a trip through
redis-py each; queued here they go out in one write on one connection
(``redis_store.round_trip``: no per-command pipeline bookkeeping), or, on a
Redis Cluster, as one non-transactional pipeline that redis-py splits by node.

Rules this module keeps:

* only *independent* commands are batched: nothing queued depends on
  another queued command's answer, and every multi-command unit touches a
  single key (Redis Cluster splits the pipeline by node; each command keeps
  its own slot, so no hash tag has to be shared);
* the order of the *checks* is the caller's: replies are decoded lazily, in
  the order the caller asks for them, so a refusal that comes first in the
  documented order still wins;
* any failure of the round trip is ``StoreUnavailable`` (fail closed), and
  so is asking for a reply before the batch was sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import redis

from tally_protocol.errors import StoreUnavailable
from tally_runtime.redis_store import is_cluster, round_trip, store_errors

T = TypeVar("T")
Command = tuple[Any, ...]


class Reply(Generic[T]):
    """The decoded answer to the commands one unit queued, available once the batch was sent."""

    __slots__ = ("_batch", "_count", "_decode", "_start")

    def __init__(self, batch: Batch, start: int, count: int, decode: Callable[[list[Any]], T]) -> None:
        self._batch, self._start, self._count, self._decode = batch, start, count, decode

    @property
    def value(self) -> T:
        return self._decode(self._batch.replies(self._start, self._count))


class Batch:
    """Independent units sent together; ``send`` runs them, each ``Reply`` decodes its part.

    Decoders see raw replies on a single node and redis-py's converted ones
    (``EXPIRE`` as a bool) on a Cluster: they accept both.
    """

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._commands: list[Command] = []
        self._replies: list[Any] | None = None

    def add(self, decode: Callable[[list[Any]], T], *commands: Command) -> Reply[T]:
        """Queue ``commands`` (one unit); ``decode`` turns their replies, in order, into the unit's answer."""
        if self._replies is not None:
            raise RuntimeError("the batch was already sent")
        reply = Reply(self, len(self._commands), len(commands), decode)
        self._commands.extend(commands)
        return reply

    def send(self) -> None:
        """One round trip for everything queued (nothing when empty)."""
        if self._replies is not None:
            return
        if not self._commands:
            self._replies = []
            return
        with store_errors():
            if is_cluster(self._client):
                pipe: Any = self._client.pipeline(transaction=False)
                for command in self._commands:
                    pipe.execute_command(*command)
                self._replies = list(pipe.execute())
            else:
                # The route key only matters on a Cluster: one node holds every key here.
                self._replies = round_trip(self._client, b"", self._commands)

    def replies(self, start: int, count: int) -> list[Any]:
        if self._replies is None:
            raise StoreUnavailable("a stored value was read before its batch was sent")
        return self._replies[start:start + count]


def send_now(client: redis.Redis, queue: Callable[[Batch], Reply[T]]) -> T:
    """What ``queue`` adds to a batch of its own, sent at once (for a caller with no exchange's batch to join)."""
    batch = Batch(client)
    reply = queue(batch)
    batch.send()
    return reply.value
