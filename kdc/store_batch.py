"""Independent Redis commands of one exchange, sent in one round trip.

An AS or TGS exchange needs a handful of unrelated reads and counters (rate
limits, lockout, policies, principal records, the revocation list's
version).  Sent one by one they cost a round trip and a trip through
redis-py each; queued here they go out as one non-transactional pipeline.

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
from tally_runtime.redis_store import store_errors

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
    """A non-transactional pipeline of independent units; ``send`` runs it, each ``Reply`` decodes its part."""

    def __init__(self, client: redis.Redis) -> None:
        self._pipe: Any = client.pipeline(transaction=False)
        self._queued = 0
        self._replies: list[Any] | None = None

    def add(self, decode: Callable[[list[Any]], T], *commands: Command) -> Reply[T]:
        """Queue ``commands`` (one unit); ``decode`` turns their replies, in order, into the unit's answer."""
        if self._replies is not None:
            raise RuntimeError("the batch was already sent")
        for command in commands:
            self._pipe.execute_command(*command)
        reply = Reply(self, self._queued, len(commands), decode)
        self._queued += len(commands)
        return reply

    def send(self) -> None:
        """One round trip for everything queued (nothing when empty)."""
        if self._replies is not None:
            return
        if not self._queued:
            self._replies = []
            return
        with store_errors():
            self._replies = list(self._pipe.execute())  # execute() resets the pipeline, releasing its connection

    def replies(self, start: int, count: int) -> list[Any]:
        if self._replies is None:
            raise StoreUnavailable("a stored value was read before its batch was sent")
        return self._replies[start:start + count]
