"""Group commit: concurrent calls from the threads of one process share one round trip.

A threaded server (gunicorn ``gthread``) has several requests claiming
replay keys at once.  Each claim alone pays a whole redis-py round trip
(pool, packing, a write, a read); sent together they pay one.  Rules:

* **No waiting for company.**  A call that finds nothing in flight is sent
  at once, alone.  Calls arriving while a batch is on the wire queue up;
  when that batch is answered, the first of them sends every queued call in
  one batch.  So a batch forms only when calls would have waited anyway,
  and the added latency is at most one round trip.
* **Each caller gets its own reply**, in order: the batch is a list of
  commands run in sequence, so two claims of one key in one batch still
  see exactly one winner.
* **A failure fails every caller of the batch** (fail closed): nobody can
  tell which of its commands ran.  A caller whose batch was interrupted
  before any answer gets ``StoreUnavailable``, never a missing reply.
* **The wire is never left without a sender.**  A caller interrupted while
  it waits (an exception from a signal handler, a gevent timeout) leaves the
  queue, and if the wire had been handed to it, passes it on.  A forked
  child starts with an empty queue: the parent's threads are not its own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from tally_protocol.errors import StoreUnavailable

C = TypeVar("C")
R = TypeVar("R")


class _Waiter(Generic[C, R]):
    """One call's place in a batch.  ``ready`` is a plain lock, held from creation and released once to wake
    the caller: cheaper than an ``Event`` (a condition, a lock and a lock per wait) on every claim."""

    __slots__ = ("error", "item", "leads", "ready", "replied", "reply")

    def __init__(self, item: C) -> None:
        self.item = item
        self.ready = threading.Lock()
        self.ready.acquire()
        self.leads = False
        self.replied = False
        self.reply: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[C, R]):
    """``submit(item)`` returns ``send([..., item, ...])``'s reply for ``item``; see the module's rules."""

    def __init__(self, send: Callable[[list[C]], list[R]]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._queue: list[_Waiter[C, R]] = []
        self._sending = False
        self._pid = os.getpid()

    @property
    def queued(self) -> int:
        """Calls waiting for the batch on the wire to come back."""
        return len(self._queue)

    def submit(self, item: C) -> R:
        if self._pid != os.getpid():  # a forked child: the parent's queue, batch and lock state are not its own
            self._lock, self._queue, self._sending, self._pid = threading.Lock(), [], False, os.getpid()
        me: _Waiter[C, R] = _Waiter(item)
        with self._lock:
            self._queue.append(me)
            me.leads = not self._sending
            self._sending = True
        try:
            if not me.leads:
                me.ready.acquire()  # answered, or handed the wire: the batch before ours is back
            if me.leads:
                self._send_queued(me)
        except BaseException:
            self._withdraw(me)
            raise
        if me.error is not None:
            if isinstance(me.error, StoreUnavailable):  # each caller raises its own, caused by the one failure
                raise StoreUnavailable(me.error.message) from me.error
            raise me.error
        if not me.replied:  # cannot happen: _send_queued answers or fails every waiter it takes
            raise StoreUnavailable("a batched store command got no reply")
        return me.reply  # type: ignore[return-value]  # R may itself include None

    def _withdraw(self, me: _Waiter[C, R]) -> None:
        """An interrupted caller not yet taken into a batch leaves the queue, passing on the wire if it held it."""
        with self._lock:
            if me in self._queue:
                self._queue.remove(me)
                if me.leads:
                    self._pass_wire()

    def _pass_wire(self) -> None:
        """With the lock held: the first queued caller sends next, or nobody is sending."""
        if self._queue:
            successor = self._queue[0]
            successor.leads = True
            successor.ready.release()
        else:
            self._sending = False

    def _send_queued(self, me: _Waiter[C, R]) -> None:
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            replies = self._send([w.item for w in batch])
            if len(replies) != len(batch):
                raise StoreUnavailable(f"{len(replies)} replies to a batch of {len(batch)}")
            for waiter, reply in zip(batch, replies):
                waiter.reply, waiter.replied = reply, True
        except Exception as e:  # noqa: BLE001 - not swallowed: every caller of the batch re-raises it
            for waiter in batch:
                waiter.error = e
        finally:
            for waiter in batch:
                if not waiter.replied and waiter.error is None:  # interrupted (BaseException) before answering
                    waiter.error = StoreUnavailable("the batch carrying this store command was interrupted")
            with self._lock:
                self._pass_wire()  # calls that queued meanwhile: the first of them sends them all
            for waiter in batch:
                if waiter is not me:
                    waiter.ready.release()
