"""Admin accounts: Argon2id hashes, one answer for every failed login, throttling, role grants."""

from __future__ import annotations

import json

import pytest
import redis

from kdc.admin.accounts import AdminAccounts, LoginThrottle, LoginThrottlePolicy, parse_subject
from tally_protocol.errors import AlreadyExists, InvalidRequest, LockedOut, NotFound, PreauthFailed, PrincipalDisabled
from tests.kdc.conftest import REALM, FixedClock, cheap_params

PASSWORD = "correct horse battery staple"


@pytest.fixture
def accounts(fake_redis: redis.Redis, clock: FixedClock) -> AdminAccounts:
    throttle = LoginThrottle(fake_redis, REALM, LoginThrottlePolicy(account_failures=3, address_failures=5,
                                                                    window_s=60, duration_s=300), clock)
    return AdminAccounts(fake_redis, REALM, clock, password_params=cheap_params, throttle=throttle)


def test_created_account_logs_in_with_its_password(accounts: AdminAccounts, clock: FixedClock) -> None:
    accounts.create("alice", PASSWORD, ["operator"])
    clock.advance(10)
    account = accounts.authenticate("alice", PASSWORD, "127.0.0.1")
    assert (account.username, account.roles, account.last_login) == ("alice", {"operator"}, int(clock.now))
    assert accounts.get("alice").last_login == int(clock.now)


def test_the_store_holds_an_argon2id_hash_with_its_parameters_never_the_password(
        accounts: AdminAccounts, fake_redis: redis.Redis) -> None:
    accounts.create("alice", PASSWORD, [])
    stored = {k.decode(): v.decode() for k, v in fake_redis.hgetall(f"tally:{{{REALM}:admin}}:acct:alice").items()}
    assert PASSWORD not in json.dumps(stored)
    assert json.loads(stored["kdf"])["kdf"] == "argon2id" and len(json.loads(stored["kdf"])["salt"]) >= 16


def test_two_accounts_with_one_password_get_different_hashes(accounts: AdminAccounts,
                                                             fake_redis: redis.Redis) -> None:
    accounts.create("alice", PASSWORD, [])
    accounts.create("bob", PASSWORD, [])
    hashes = {fake_redis.hget(f"tally:{{{REALM}:admin}}:acct:{n}", "pw") for n in ("alice", "bob")}
    assert len(hashes) == 2


def test_wrong_password_and_unknown_account_fail_the_same_way(accounts: AdminAccounts) -> None:
    accounts.create("alice", PASSWORD, [])
    with pytest.raises(PreauthFailed) as wrong:
        accounts.authenticate("alice", "not the password", "127.0.0.1")
    with pytest.raises(PreauthFailed) as unknown:
        accounts.authenticate("mallory", PASSWORD, "127.0.0.1")
    assert wrong.value.to_dict() == unknown.value.to_dict()


def test_an_account_locks_after_repeated_failures_even_for_the_right_password(accounts: AdminAccounts,
                                                                               clock: FixedClock) -> None:
    accounts.create("alice", PASSWORD, [])
    for _ in range(3):
        with pytest.raises(PreauthFailed):
            accounts.authenticate("alice", "wrong password", "127.0.0.1")
    with pytest.raises(LockedOut) as locked:
        accounts.authenticate("alice", PASSWORD, "127.0.0.2")
    assert locked.value.data["retry_after"] == 300
    clock.advance(301)
    accounts.authenticate("alice", PASSWORD, "127.0.0.2")


def test_an_address_locks_after_failures_across_accounts(accounts: AdminAccounts) -> None:
    accounts.create("alice", PASSWORD, [])
    for name in ("a1", "a2", "a3", "a4", "a5"):
        with pytest.raises(PreauthFailed):
            accounts.authenticate(name, "guess guess", "127.0.0.9")
    with pytest.raises(LockedOut):
        accounts.authenticate("alice", PASSWORD, "127.0.0.9")
    accounts.authenticate("alice", PASSWORD, "127.0.0.1")


def test_a_disabled_account_is_refused_only_after_its_password_is_proven(accounts: AdminAccounts) -> None:
    accounts.create("alice", PASSWORD, ["admin"])
    accounts.set_disabled("alice", True)
    with pytest.raises(PreauthFailed):
        accounts.authenticate("alice", "wrong password", "127.0.0.1")
    with pytest.raises(PrincipalDisabled):
        accounts.authenticate("alice", PASSWORD, "127.0.0.1")
    assert accounts.roles_of("alice") == frozenset()


def test_a_changed_password_replaces_the_old_one(accounts: AdminAccounts) -> None:
    accounts.create("alice", PASSWORD, [])
    accounts.set_password("alice", "a brand new passphrase")
    with pytest.raises(PreauthFailed):
        accounts.verify_password("alice", PASSWORD)
    accounts.verify_password("alice", "a brand new passphrase")


def test_short_passwords_are_refused(accounts: AdminAccounts) -> None:
    with pytest.raises(InvalidRequest, match="at least 8"):
        accounts.create("alice", "short", [])


def test_account_names_are_unique(accounts: AdminAccounts) -> None:
    accounts.create("alice", PASSWORD, [])
    with pytest.raises(AlreadyExists):
        accounts.create("alice", PASSWORD, [])


@pytest.mark.parametrize("name", ["Alice", "al ice", "alice@EXAMPLE.TEST@", "", "-alice"])
def test_invalid_account_names_are_refused(accounts: AdminAccounts, name: str) -> None:
    with pytest.raises(InvalidRequest):
        accounts.create(name, PASSWORD, [])


def test_roles_are_granted_and_revoked_on_accounts(accounts: AdminAccounts) -> None:
    accounts.create("alice", PASSWORD, ["viewer"])
    assert accounts.grant("alice", "operator") == {"viewer", "operator"}
    assert accounts.revoke("alice", "viewer") == {"operator"}
    assert accounts.roles_of("alice") == {"operator"}


def test_roles_are_granted_to_principals_by_their_full_name(accounts: AdminAccounts) -> None:
    assert accounts.grant(f"alice@{REALM}", "operator") == {"operator"}
    assert accounts.roles_of(f"alice@{REALM}") == {"operator"}
    assert accounts.roles_of("alice") == frozenset()  # the account "alice" is someone else
    assert accounts.principal_grants() == {f"alice@{REALM}": {"operator"}}
    accounts.revoke(f"alice@{REALM}", "operator")
    assert accounts.principal_grants() == {}


def test_revoking_a_role_not_held_is_not_found(accounts: AdminAccounts) -> None:
    with pytest.raises(NotFound):
        accounts.revoke(f"alice@{REALM}", "operator")


def test_principals_of_another_realm_cannot_hold_roles() -> None:
    with pytest.raises(InvalidRequest, match="not in realm"):
        parse_subject("alice@OTHER.TEST", REALM)


def test_accounts_are_listed_by_name_and_deleted(accounts: AdminAccounts) -> None:
    for name in ("carol", "alice", "bob"):
        accounts.create(name, PASSWORD, [])
    assert [a.username for a in accounts.list()] == ["alice", "bob", "carol"]
    accounts.delete("bob")
    assert [a.username for a in accounts.list()] == ["alice", "carol"]
    with pytest.raises(NotFound):
        accounts.delete("bob")
