"""Principal listing at 100,000 principals: cursor pages, prefix search and filters read only what they need.

The index is built straight into fakeredis (MSET and ZADD in bounded chunks), in the principal database's documented layout; records are copies
of a real one under other names (listing never unwraps keys).
"""

from __future__ import annotations

import json

import fakeredis
import pytest

from kdc.admin.acl import Actor
from kdc.admin.extension import build_operations
from kdc.admin.operations import MAX_FILTER_SCAN, AdminOperations
from kdc.master_key import MasterKey
from kdc.principal_db import PrincipalDB
from tests.kdc.admin.conftest import BASE
from tests.kdc.conftest import REALM, FixedClock, cheap_params
from tests.support.bulk_load import bulk_set, bulk_zadd

COUNT = 100_000
SERVICE_EVERY = 1000  # user-000999, user-001999, ... are services: 100 of them
DISABLED_EVERY = 7


def name(n: int) -> str:
    return f"user-{n:06d}"


@pytest.fixture(scope="module")
def big() -> AdminOperations:
    """Built once for the module: the tests only read."""
    store = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    clock = FixedClock()
    db = PrincipalDB(store, REALM, MasterKey.generate(), clock, password_params=cheap_params)
    db.init_realm()
    template = json.loads(db.get(db.tgs).to_json())
    prefix = f"tally:{{{REALM}}}"
    records = {}
    for n in range(COUNT):
        kind = "service" if n % SERVICE_EVERY == SERVICE_EVERY - 1 else "client"
        doc = {**template, "name": name(n), "kind": kind, "disabled": n % DISABLED_EVERY == 0}
        records[f"{prefix}:p:{name(n)}"] = json.dumps(doc)
    bulk_set(store, records)
    bulk_zadd(store, f"{prefix}:idx", {name(n): 0 for n in range(COUNT)})
    return build_operations(store, db, BASE, clock=clock)


@pytest.fixture
def root() -> Actor:
    return Actor("local:root", frozenset({"superadmin"}), "local", "cli")


def names(page: object) -> list[str]:
    return [p.name for p in page.principals]  # type: ignore[attr-defined]


def test_the_first_page_holds_the_first_names_in_order(big: AdminOperations, root: Actor) -> None:
    page = big.list_principals(root, prefix="user-", limit=100)
    assert names(page) == [f"{name(n)}@{REALM}" for n in range(100)]
    assert page.next_cursor == name(99)


def test_a_cursor_deep_in_the_index_continues_right_after_it(big: AdminOperations, root: Actor) -> None:
    page = big.list_principals(root, cursor=name(73_456), limit=3)
    assert names(page) == [f"{name(n)}@{REALM}" for n in (73_457, 73_458, 73_459)]


def test_the_last_page_has_no_cursor(big: AdminOperations, root: Actor) -> None:
    page = big.list_principals(root, cursor=name(COUNT - 3), limit=100)
    assert names(page)[:2] == [f"{name(COUNT - 2)}@{REALM}", f"{name(COUNT - 1)}@{REALM}"]
    assert page.next_cursor is None


def test_prefix_search_returns_exactly_the_matching_names(big: AdminOperations, root: Actor) -> None:
    page = big.list_principals(root, prefix="user-0421", limit=1000)
    assert names(page) == [f"{name(n)}@{REALM}" for n in range(42_100, 42_200)]


def test_a_kind_filter_pages_through_matches_with_a_bounded_scan(big: AdminOperations, root: Actor) -> None:
    page = big.list_principals(root, kind="service", prefix="user-", limit=3)
    assert names(page) == [f"{name(n)}@{REALM}" for n in (999, 1999, 2999)]
    assert page.next_cursor == name(2999)
    sparse = big.list_principals(root, kind="service", prefix="user-", cursor=name(2999), limit=100)
    found = MAX_FILTER_SCAN // SERVICE_EVERY
    assert names(sparse) == [f"{name(n)}@{REALM}" for n in range(3999, 3999 + found * 1000, 1000)]
    assert sparse.next_cursor == name(2999 + MAX_FILTER_SCAN)


def test_a_status_filter_keeps_only_disabled_principals(big: AdminOperations, root: Actor) -> None:
    page = big.list_principals(root, status="disabled", cursor=name(50_000), limit=4)
    assert names(page) == [f"{name(n)}@{REALM}" for n in (50_001, 50_008, 50_015, 50_022)]
    assert all(p.disabled for p in page.principals)
