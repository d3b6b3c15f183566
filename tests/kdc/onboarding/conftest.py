"""Fixtures for the onboarding tests: the realm of ``tests/kdc/conftest.py`` plus its tokens and pairings."""

from __future__ import annotations

import pytest
import redis

from kdc.enrollment import EnrollmentTokens
from kdc.pairing import Pairings
from tests.kdc.conftest import REALM, Realm


@pytest.fixture
def tokens(realm: Realm, fake_redis: redis.Redis) -> EnrollmentTokens:
    """Tokens of the ``realm`` fixture (which lives on ``fake_redis``), on its clock."""
    return EnrollmentTokens(fake_redis, REALM, realm.db, realm.clock)


@pytest.fixture
def pairings(realm: Realm, fake_redis: redis.Redis) -> Pairings:
    return Pairings(fake_redis, REALM, realm.db, realm.clock)
