"""The realm's audit log: a capped Redis stream, newest first, filtered and paged by cursor.

Rules this module keeps:

* one stream per realm, ``tally:{REALM:audit}``, trimmed with ``XADD MAXLEN ~``
  (approximate trimming costs O(1) amortised; the log keeps at least ``maxlen``
  events, a little more between trims);
* entry ids come from the injected clock (``<ms>-*``), so time-range queries
  are id-range seeks and a fixed clock in tests decides every outcome; when
  another writer's clock is ahead of ours Redis refuses the id and the entry
  takes the next server-assigned id instead (time filters also check the
  stored ``time``, so such an entry is still found by its own time);
* an entry is the JSON of an event built by ``tally_runtime.logs.audit_entry``
  (names and codes only, never a secret);
* ``append`` raises ``StoreUnavailable`` when the event cannot be stored:
  admin actions fail closed on it; it returns only once its own event is
  stored, but appends from concurrent threads of one process share a round
  trip (``tally_runtime.group_commit``: a call finding none in flight goes
  at once, calls arriving meanwhile go together in the next one);
* Redis streams cannot filter, so a query scans backwards from its cursor and
  filters in Python, at most ``MAX_SCAN`` entries per call; a page may come
  back short (even empty) with a ``next_cursor`` to continue from.  Time
  bounds narrow the scanned range first.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from tally_protocol.errors import ConfigurationError, InvalidRequest, MalformedMessage
from tally_runtime.group_commit import GroupCommit
from tally_runtime.redis_store import round_trip_replies, store_errors

DEFAULT_MAXLEN = 100_000
MAX_SCAN = 5_000
MAX_LIMIT = 500
_BATCH = 500
#: Fields a ``principal`` filter looks at: who acted, on whom, and the KDC's client and service.
_SUBJECT_FIELDS = ("actor", "target", "principal", "service")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse_id(entry_id: str) -> tuple[int, int]:
    ms, sep, seq = entry_id.partition("-")
    if not (ms.isdigit() and sep and seq.isdigit()):
        raise InvalidRequest(f"invalid audit cursor {entry_id!r}")
    return int(ms), int(seq)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters (all optional, combined with AND) and paging; times are epoch seconds, ``until`` exclusive."""

    principal: str | None = None
    event: str | None = None  # prefix: "admin." matches every admin event
    outcome: str | None = None
    since: int | None = None
    until: int | None = None
    cursor: str | None = None  # the previous page's next_cursor; pages go from newest to oldest
    limit: int = 50

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
        if self.cursor is not None:
            _parse_id(self.cursor)
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise InvalidRequest(f"{name} must be a non-negative number of seconds since the epoch")

    def matches(self, entry: Mapping[str, Any], subjects: tuple[str, ...]) -> bool:
        if self.event is not None and not str(entry.get("event", "")).startswith(self.event):
            return False
        if self.outcome is not None and entry.get("outcome") != self.outcome:
            return False
        when = entry.get("time")
        if self.since is not None and not (isinstance(when, int) and when >= self.since):
            return False
        if self.until is not None and not (isinstance(when, int) and when < self.until):
            return False
        return not subjects or any(entry.get(f) in subjects for f in _SUBJECT_FIELDS)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: str
    entry: dict[str, Any] = field(hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **{k: v for k, v in self.entry.items() if k != "audit"}}


@dataclass(frozen=True, slots=True)
class AuditPage:
    records: list[AuditRecord]
    next_cursor: str | None  # None: nothing older matches

    def to_dict(self) -> dict[str, Any]:
        return {"events": [r.to_dict() for r in self.records], "next_cursor": self.next_cursor}

    @classmethod
    def from_dict(cls, doc: Any) -> AuditPage:
        try:
            cursor = doc["next_cursor"]
            records = [AuditRecord(str(e["id"]), {k: v for k, v in e.items() if k != "id"}) for e in doc["events"]]
        except (KeyError, TypeError, AttributeError) as e:
            raise MalformedMessage("the admin API sent a malformed audit page") from e
        return cls(records, None if cursor is None else str(cursor))


class AuditLog:
    """Appends events to, and queries, one realm's audit stream."""

    def __init__(self, redis_client: redis.Redis, realm: str, *, clock: Callable[[], float] = time.time,
                 maxlen: int = DEFAULT_MAXLEN) -> None:
        if maxlen < 1:
            raise ConfigurationError("the audit log needs room for at least one event")
        self.realm = realm
        self._redis = redis_client
        self._clock = clock
        self._maxlen = maxlen
        self.key = f"tally:{{{realm}:audit}}"
        #: (entry id, JSON event) -> the stored id; one key, so one node even on a Cluster.
        self._appends: GroupCommit[tuple[str, str], Any] = GroupCommit(self._store)

    def append(self, entry: Mapping[str, Any]) -> str:
        """Store one event; its id.  ``StoreUnavailable`` if it could not be stored."""
        event = json.dumps(entry, default=str, separators=(",", ":"), sort_keys=True)
        return _text(self._appends.submit((f"{int(self._clock() * 1000)}-*", event)))

    def _store(self, items: list[tuple[str, str]]) -> list[Any]:
        """XADD every item in one round trip; ``StoreUnavailable`` (for all of them) if any is not stored."""
        with store_errors():
            replies = self._xadd_all(items)
            behind = [i for i, reply in enumerate(replies) if isinstance(reply, redis.ResponseError)]
            if behind:  # our clock is behind the stream's newest id: the next id the server assigns instead
                for i, reply in zip(behind, self._xadd_all([("*", items[i][1]) for i in behind]), strict=True):
                    replies[i] = reply
            failed = next((reply for reply in replies if isinstance(reply, Exception)), None)
            if failed is not None:
                raise failed
        return replies

    def _xadd_all(self, items: list[tuple[str, str]]) -> list[Any]:
        """Each item's stored id, or the ``ResponseError`` Redis answered it with: one round trip, on the sending
        thread's own connection (the stream is one key, so one node on a Cluster too)."""
        return round_trip_replies(self._redis, self.key.encode(), [self._xadd(*item) for item in items])

    def _xadd(self, entry_id: str, event: str) -> tuple[Any, ...]:
        return ("XADD", self.key, "MAXLEN", "~", self._maxlen, entry_id, "e", event)

    def __len__(self) -> int:
        with store_errors():
            return int(self._redis.xlen(self.key))

    @staticmethod
    def _decode(raw: Mapping[Any, Any] | None) -> dict[str, Any] | None:
        value = None if raw is None else raw.get(b"e", raw.get("e"))
        try:
            entry = json.loads(value) if value is not None else None
        except ValueError:
            return None  # a foreign entry in our stream: skip it rather than fail every query
        return entry if isinstance(entry, dict) else None

    @staticmethod
    def _bounds(query: AuditQuery) -> tuple[str, str]:
        """Stream id range to scan: below ``until`` and the cursor (both exclusive), from ``since``."""
        high: tuple[int, int] | None = None
        if query.until is not None:
            high = (query.until * 1000, 0)
        if query.cursor is not None:
            cursor = _parse_id(query.cursor)
            high = cursor if high is None else min(high, cursor)
        low = f"{query.since * 1000}-0" if query.since is not None else "-"
        return ("+" if high is None else f"({high[0]}-{high[1]}"), low

    def query(self, query: AuditQuery, *, subjects: tuple[str, ...] = ()) -> AuditPage:
        """Newest-first events matching ``query``; ``subjects`` are the spellings a principal filter accepts."""
        high, low = self._bounds(query)
        found: list[AuditRecord] = []
        scanned = 0
        while True:
            count = min(_BATCH, MAX_SCAN - scanned)
            with store_errors():
                batch: list[Any] = self._redis.xrevrange(self.key, max=high, min=low, count=count) or []
            for raw_id, raw in batch:
                high = _text(raw_id)
                entry = self._decode(raw)
                if entry is not None and query.matches(entry, subjects):
                    found.append(AuditRecord(high, entry))
                    if len(found) == query.limit:
                        return AuditPage(found, high)
            scanned += len(batch)
            if len(batch) < count:
                return AuditPage(found, None)
            if scanned >= MAX_SCAN:
                return AuditPage(found, high)  # scan budget spent: the caller continues from here
            high = f"({high}"
