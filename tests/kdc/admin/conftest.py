"""Fixtures for the admin tests: a realm's operations on fakeredis, actors per role, the KDC app."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from kdc.admin.acl import BUILTIN_ROLES, Actor
from kdc.admin.extension import build_operations
from kdc.admin.operations import AdminOperations
from kdc.admin.policies import EffectivePolicy
from kdc.exchange import TicketPolicy
from kdc.lockout import LockoutPolicy
from kdc.master_key import MasterKey
from kdc.principal_db import PrincipalDB
from tests.kdc.conftest import REALM, FixedClock, Realm, cheap_params, make_realm

BASE = EffectivePolicy(TicketPolicy(36000, 604800, 36000), LockoutPolicy(5, 900, 900))


def actor(role: str | None, name: str = "someone@EXAMPLE.TEST") -> Actor:
    return Actor(name, frozenset() if role is None else frozenset({role}), "127.0.0.1", "api")


@pytest.fixture
def db(fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock) -> PrincipalDB:
    db = PrincipalDB(fake_redis, REALM, master_key, clock, password_params=cheap_params)
    db.init_realm()
    return db


@pytest.fixture
def ops(fake_redis: redis.Redis, db: PrincipalDB, clock: FixedClock) -> AdminOperations:
    return build_operations(fake_redis, db, BASE, clock=clock, password_params=cheap_params)


@pytest.fixture
def root() -> Actor:
    """The local operator, as ``tally admin`` runs it."""
    return Actor("local:root", frozenset({"superadmin"}), "local", "cli")


@pytest.fixture
def admin_realm(fake_redis: redis.Redis, master_key: MasterKey, clock: FixedClock, tmp_path: Any) -> Realm:
    """The KDC app on a realm with alice (key file) and api (service), kadmin/admin created at start."""
    return make_realm(fake_redis, master_key, clock, tmp_path)


ROLES = sorted(BUILTIN_ROLES)
