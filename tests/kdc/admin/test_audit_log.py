"""The realm's audit stream: capped, newest first, filtered, paged by cursor, time ranges by id."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from kdc.admin.audit_log import MAX_SCAN, AuditLog, AuditQuery
from tally_protocol.errors import InvalidRequest, StoreUnavailable
from tally_runtime.logs import audit_entry
from tests.kdc.conftest import REALM, T0, FixedClock


@pytest.fixture
def log(fake_redis: redis.Redis, clock: FixedClock) -> AuditLog:
    return AuditLog(fake_redis, REALM, clock=clock, maxlen=50_000)


def add(log: AuditLog, clock: FixedClock, event: str, outcome: str = "success", **fields: object) -> str:
    clock.advance(1)
    return log.append(audit_entry(event, outcome, fields, now=clock.now))


def events(page: object) -> list[str]:
    return [r.entry["event"] for r in page.records]  # type: ignore[attr-defined]


def test_events_come_back_newest_first(log: AuditLog, clock: FixedClock) -> None:
    for event in ("a.one", "a.two", "a.three"):
        add(log, clock, event)
    assert events(log.query(AuditQuery())) == ["a.three", "a.two", "a.one"]


def test_entry_ids_follow_the_injected_clock(log: AuditLog, clock: FixedClock) -> None:
    assert add(log, clock, "a.one") == f"{int((T0 + 1) * 1000)}-0"


def test_a_writer_whose_clock_is_behind_still_appends(log: AuditLog, clock: FixedClock) -> None:
    add(log, clock, "a.one")
    clock.advance(-10)
    add(log, clock, "a.two")
    assert events(log.query(AuditQuery())) == ["a.two", "a.one"]


def test_filters_by_event_prefix_outcome_and_principal(log: AuditLog, clock: FixedClock) -> None:
    add(log, clock, "as.issue", principal=f"alice@{REALM}")
    add(log, clock, "admin.principal.add", actor="root", target=f"bob@{REALM}")
    add(log, clock, "admin.principal.delete", "denied", actor=f"alice@{REALM}", target=f"bob@{REALM}")
    assert events(log.query(AuditQuery(event="admin."))) == ["admin.principal.delete", "admin.principal.add"]
    assert events(log.query(AuditQuery(outcome="denied"))) == ["admin.principal.delete"]
    alice = log.query(AuditQuery(), subjects=(f"alice@{REALM}",))
    assert events(alice) == ["admin.principal.delete", "as.issue"]


def test_time_range_is_since_inclusive_until_exclusive(log: AuditLog, clock: FixedClock) -> None:
    for n in range(5):
        add(log, clock, f"e.{n}")  # times T0+1 .. T0+5
    page = log.query(AuditQuery(since=int(T0) + 2, until=int(T0) + 4))
    assert events(page) == ["e.2", "e.1"]


def test_pages_follow_the_cursor_without_gaps_or_repeats(log: AuditLog, clock: FixedClock) -> None:
    for n in range(7):
        add(log, clock, f"e.{n}")
    seen: list[str] = []
    cursor = None
    while True:
        page = log.query(AuditQuery(limit=3, cursor=cursor))
        seen += events(page)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"e.{n}" for n in reversed(range(7))]


def test_a_sparse_filter_returns_a_short_page_with_a_cursor_after_its_scan_budget(
        log: AuditLog, clock: FixedClock, fake_redis: redis.Redis) -> None:
    add(log, clock, "rare.event")
    pipe = fake_redis.pipeline(transaction=False)
    for n in range(MAX_SCAN + 10):
        pipe.xadd(log.key, {"e": '{"event":"common","outcome":"success","time":1}'},
                  id=f"{int((T0 + 2) * 1000)}-{n}")
    pipe.execute()
    first = log.query(AuditQuery(event="rare."))
    assert events(first) == [] and first.next_cursor is not None
    second = log.query(AuditQuery(event="rare.", cursor=first.next_cursor))
    assert events(second) == ["rare.event"]


def test_the_stream_is_capped(fake_redis: redis.Redis, clock: FixedClock) -> None:
    small = AuditLog(fake_redis, REALM, clock=clock, maxlen=10)
    for n in range(500):
        add(small, clock, f"e.{n}")
    assert len(small) < 500
    assert events(small.query(AuditQuery(limit=1))) == ["e.499"]


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 501}, {"cursor": "yesterday"}, {"since": -1}])
def test_invalid_queries_are_refused(query: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        AuditQuery(**query)  # type: ignore[arg-type]


def test_an_unreachable_store_fails_closed(down_redis: redis.Redis, clock: FixedClock) -> None:
    with pytest.raises(StoreUnavailable):
        AuditLog(down_redis, REALM, clock=clock).append(audit_entry("admin.status", "success", {}, now=T0))


def test_appends_from_concurrent_threads_share_a_round_trip_and_each_gets_its_own_event(
        log: AuditLog, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[int] = []
    on_the_wire = threading.Event()
    xadd_all = log._xadd_all

    def recording(items: list[tuple[str, str]]) -> list[object]:
        if not sent:  # the first batch stays on the wire until three more appends have queued behind it
            on_the_wire.set()
            deadline = time.monotonic() + 5
            while log._appends.queued < 3 and time.monotonic() < deadline:
                time.sleep(0.001)
        sent.append(len(items))
        return xadd_all(items)

    monkeypatch.setattr(log, "_xadd_all", recording)
    ids: dict[str, str] = {}

    def append(event: str) -> None:
        ids[event] = log.append(audit_entry(event, "success", {}, now=clock.now))

    first = threading.Thread(target=append, args=("a.first",))
    first.start()
    assert on_the_wire.wait(5)
    others = [threading.Thread(target=append, args=(f"a.other{i}",)) for i in range(3)]
    for t in others:
        t.start()
    for t in [first, *others]:
        t.join(10)
    assert sent == [1, 3]
    stored = {r.id: r.entry["event"] for r in log.query(AuditQuery()).records}
    assert {stored[i]: i for i in stored} == ids


def test_a_batch_with_one_clock_behind_stores_every_event(log: AuditLog, clock: FixedClock) -> None:
    add(log, clock, "a.one")
    ahead = f"{int((clock.now + 60) * 1000)}-*"
    behind = f"{int((clock.now - 60) * 1000)}-*"
    replies = log._store([(ahead, '{"event":"a.two"}'), (behind, '{"event":"a.three"}')])
    assert len(set(replies)) == 2
    assert events(log.query(AuditQuery())) == ["a.three", "a.two", "a.one"]
