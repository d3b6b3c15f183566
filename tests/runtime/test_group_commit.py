"""GroupCommit: calls that would wait for the wire share the next round trip; a failure fails all of them."""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from tally_protocol.errors import StoreUnavailable
from tally_runtime.group_commit import GroupCommit

TIMEOUT_S = 10


class Wire:
    """A ``send`` that records each batch and, when told to, holds a batch until released."""

    def __init__(self, fail: Callable[[list[str]], bool] = lambda batch: False) -> None:
        self.batches: list[list[str]] = []
        self.hold = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()
        self.fail = fail

    def send(self, batch: list[str]) -> list[str]:
        self.batches.append(batch)
        if self.hold.is_set():
            self.hold.clear()
            self.held.set()
            assert self.release.wait(TIMEOUT_S)
        if self.fail(batch):
            raise StoreUnavailable("the store went away")
        return [f"reply to {item}" for item in batch]


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def queue_behind_a_held_batch(wire: Wire, group: GroupCommit[str, str], pool: ThreadPoolExecutor,
                              items: list[str]) -> tuple[Future[str], list[Future[str]]]:
    """``first`` is on the wire, held; ``items`` are submitted meanwhile and queue up."""
    wire.hold.set()
    first = pool.submit(group.submit, "first")
    assert wire.held.wait(TIMEOUT_S)
    queued = [pool.submit(group.submit, item) for item in items]
    wait_for(lambda: group.queued == len(items))
    return first, queued


def test_a_call_with_nothing_in_flight_is_sent_at_once_alone() -> None:
    wire = Wire()
    assert GroupCommit(wire.send).submit("a") == "reply to a"
    assert wire.batches == [["a"]]


def test_calls_queued_behind_a_batch_share_the_next_round_trip_each_with_its_own_reply() -> None:
    wire = Wire()
    group = GroupCommit(wire.send)
    with ThreadPoolExecutor(4) as pool:
        first, queued = queue_behind_a_held_batch(wire, group, pool, ["b", "c", "d"])
        wire.release.set()
        assert first.result(TIMEOUT_S) == "reply to first"
        assert [f.result(TIMEOUT_S) for f in queued] == ["reply to b", "reply to c", "reply to d"]
    assert wire.batches[0] == ["first"]
    assert sorted(wire.batches[1]) == ["b", "c", "d"] and len(wire.batches) == 2


def test_a_failed_batch_fails_every_caller_in_it_and_the_next_batch_still_runs() -> None:
    wire = Wire(fail=lambda batch: "b" in batch)
    group = GroupCommit(wire.send)
    with ThreadPoolExecutor(4) as pool:
        first, queued = queue_behind_a_held_batch(wire, group, pool, ["b", "c", "d"])
        wire.release.set()
        assert first.result(TIMEOUT_S) == "reply to first"
        for future in queued:
            with pytest.raises(StoreUnavailable, match="went away"):
                future.result(TIMEOUT_S)
    assert group.submit("e") == "reply to e"


def test_a_batch_answered_with_too_few_replies_fails_closed() -> None:
    group = GroupCommit[str, str](lambda batch: [])
    with pytest.raises(StoreUnavailable):
        group.submit("a")


def test_a_batch_interrupted_before_its_reply_fails_its_callers_closed() -> None:
    wire = Wire()
    interrupted = threading.Event()

    def send(batch: list[str]) -> list[str]:
        if "b" in batch and not interrupted.is_set():
            interrupted.set()
            raise KeyboardInterrupt  # a BaseException in the thread that leads the batch
        return wire.send(batch)

    group = GroupCommit(send)
    with ThreadPoolExecutor(4) as pool:
        first, queued = queue_behind_a_held_batch(wire, group, pool, ["b", "c"])
        wire.release.set()
        first.result(TIMEOUT_S)
        outcomes = []
        for future in queued:
            try:
                outcomes.append(future.result(TIMEOUT_S))
            except BaseException as e:  # noqa: BLE001 - the leader re-raises the interruption itself
                outcomes.append(type(e).__name__)
    assert sorted(outcomes) == ["KeyboardInterrupt", "StoreUnavailable"]
    assert group.submit("d") == "reply to d"  # the wire was handed on, not left taken


class Interrupted(Exception):
    """What a signal handler raises in the main thread (KeyboardInterrupt, a timeout)."""


class Caller:
    """``group.submit(item)`` on a daemon thread: a regression that strands it cannot hang the suite."""

    def __init__(self, group: GroupCommit[str, str], item: str) -> None:
        self.result: Future[str] = Future()
        threading.Thread(target=self._run, args=(group, item), daemon=True).start()

    def _run(self, group: GroupCommit[str, str], item: str) -> None:
        try:
            self.result.set_result(group.submit(item))
        except BaseException as e:  # noqa: BLE001 - handed to the test
            self.result.set_exception(e)


def interrupt_main_thread_after(seconds: float, before_raising: Callable[[], object] = lambda: None) -> None:
    def handler(signum: int, frame: object) -> None:
        before_raising()
        raise Interrupted()
    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def a_held_first_batch() -> tuple[Wire, GroupCommit[str, str], Caller]:
    """A group whose first call (``first``, on a daemon thread) is on the wire, held until ``wire.release``."""
    wire = Wire()
    group = GroupCommit(wire.send)
    wire.hold.set()
    first = Caller(group, "first")
    assert wire.held.wait(TIMEOUT_S)
    return wire, group, first


@pytest.fixture
def alarm() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGALRM)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_a_caller_interrupted_while_queued_leaves_the_queue_and_the_others_are_served(alarm: None) -> None:
    wire, group, first = a_held_first_batch()
    other = Caller(group, "other")
    wait_for(lambda: group.queued == 1)
    interrupt_main_thread_after(0.2)
    with pytest.raises(Interrupted):
        group.submit("interrupted")  # queued behind "first", interrupted while it waits
    wire.release.set()
    assert first.result.result(TIMEOUT_S) == "reply to first"
    assert other.result.result(TIMEOUT_S) == "reply to other"
    assert wire.batches == [["first"], ["other"]]  # the interrupted call was never sent
    assert group.submit("later") == "reply to later"  # nothing is left waiting for a sender


def test_a_caller_interrupted_once_handed_the_wire_passes_it_on(alarm: None) -> None:
    wire, group, first = a_held_first_batch()
    queued: list[Caller] = []

    def finish_first_batch() -> None:  # the wire goes to the interrupted caller, first in the queue
        wire.release.set()
        first.result.result(TIMEOUT_S)
        queued.append(Caller(group, "other"))
        wait_for(lambda: group.queued == 2)

    interrupt_main_thread_after(0.2, finish_first_batch)
    with pytest.raises(Interrupted):
        group.submit("interrupted")
    assert queued[0].result.result(TIMEOUT_S) == "reply to other"
    assert wire.batches == [["first"], ["other"]]
    assert group.submit("later") == "reply to later"


def test_a_child_forked_while_a_batch_is_on_the_wire_sends_its_own() -> None:
    wire, group, first = a_held_first_batch()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the parent's sender does not exist here: its batch must not stand in the way
        try:
            os.write(write, group.submit("in the child").encode())
        finally:
            os._exit(0)
    wire.release.set()
    assert first.result.result(TIMEOUT_S) == "reply to first"
    ready, _, _ = select.select([read], [], [], TIMEOUT_S)
    if not ready:
        os.kill(pid, signal.SIGKILL)  # stranded: fail, not hang
    os.waitpid(pid, 0)
    assert ready and os.read(read, 100) == b"reply to in the child"
    os.close(read)
    os.close(write)
