"""Admin accounts (for the web UI) and role grants to accounts and to principals, in Redis.

Rules this module keeps:

* a password is stored only as Argon2id(password, per-account salt) with the
  parameters beside it (``tally_protocol.crypto.derive_password_key``: the
  one place that touches the KDF), compared in constant time;
* a login for an unknown name costs the same Argon2id work as a real one,
  and fails with the same error, so timing and answers reveal no account;
* logins are throttled per account and per client address (both counted for
  unknown names too) before any password work, and a disabled account fails
  only after its password was proven, like a disabled principal;
* roles are granted to *subjects*: an account (``alice``: no ``@``) or a
  principal of the realm (``alice@REALM``), so the two never collide.

Key layout, one hash tag for the realm's admin data (``{REALM:admin}``):
creating or deleting an account updates its hash and the name index in one
MULTI, so both must share a Redis Cluster slot (admin data is small and
rarely written; the tag keeps it off the principal database's slot):
``tally:{REALM:admin}:acct:<name>`` one hash per account,
``tally:{REALM:admin}:accts`` sorted set of names,
``tally:{REALM:admin}:principal-roles`` hash ``principal -> JSON list``.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis

from tally_protocol import Random
from tally_protocol.crypto import derive_password_key, equal
from tally_protocol.encoding import b64decode, b64encode
from tally_protocol.errors import (
    AlreadyExists,
    ConfigurationError,
    InvalidRequest,
    NotFound,
    PreauthFailed,
    PrincipalDisabled,
    TallyError,
)
from tally_protocol.keys import PasswordParams
from tally_protocol.principal import Principal
from tally_runtime.redis_store import store_errors, transact

from ..lockout import Lockout, LockoutPolicy

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MIN_PASSWORD = 8
SALT_SIZE = 16
T = TypeVar("T")
PasswordParamsFactory = Callable[[bytes], PasswordParams]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise InvalidRequest("an admin account name is 1-64 of a-z, 0-9, '.', '_' and '-', starting with a letter "
                             "or digit (no '@': names with '@' are principals)")
    return username


def parse_subject(text: str, realm: str) -> str:
    """An account name, or a principal of ``realm`` as ``name@REALM``: what roles are granted to."""
    if "@" not in text:
        return check_username(text)
    principal = Principal.parse(text)
    if principal.realm != realm:
        raise InvalidRequest(f"{principal} is not in realm {realm}")
    return str(principal)


@dataclass(frozen=True, slots=True)
class AdminAccount:
    username: str
    roles: frozenset[str]
    disabled: bool
    created: int
    last_login: int | None
    #: When the password last changed (clock value); web sessions begun before it are over.
    password_changed: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"username": self.username, "roles": sorted(self.roles), "disabled": self.disabled,
                "created": self.created, "last_login": self.last_login}


@dataclass(frozen=True, slots=True)
class LoginThrottlePolicy:
    """Failed logins allowed per account and per address within ``window_s``; then locked for ``duration_s``."""

    account_failures: int = 5
    address_failures: int = 20
    window_s: int = 900
    duration_s: int = 900


class LoginThrottle:
    """Failed-login counters per account and per client address (the KDC's ``Lockout``, twice)."""

    def __init__(self, redis_client: redis.Redis, realm: str, policy: LoginThrottlePolicy = LoginThrottlePolicy(),
                 clock: Callable[[], float] = time.time, rng: Random = os.urandom) -> None:
        self.policy = policy
        self._accounts = Lockout(redis_client, f"{realm}:admin-login",
                                 LockoutPolicy(policy.account_failures, policy.window_s, policy.duration_s), clock, rng)
        self._addresses = Lockout(redis_client, f"{realm}:admin-login-address",
                                  LockoutPolicy(policy.address_failures, policy.window_s, policy.duration_s),
                                  clock, rng)

    def check(self, username: str, address: str) -> None:
        """``LockedOut(retry_after=...)`` while the account or the address is locked."""
        self._addresses.check(address)
        self._accounts.check(username)

    def record_failure(self, username: str, address: str) -> None:
        self._accounts.record_failure(username)
        self._addresses.record_failure(address)

    def record_success(self, username: str) -> None:
        self._accounts.record_success(username)


class AdminAccounts:
    """One realm's admin accounts and role grants."""

    def __init__(self, redis_client: redis.Redis, realm: str, clock: Callable[[], float] = time.time,
                 rng: Random = os.urandom, *, password_params: PasswordParamsFactory = PasswordParams,
                 throttle: LoginThrottle | None = None) -> None:
        self.realm = realm
        self._redis = redis_client
        self._clock = clock
        self._rng = rng
        self._password_params = password_params
        self.throttle = throttle if throttle is not None else LoginThrottle(redis_client, realm, clock=clock, rng=rng)
        prefix = f"tally:{{{realm}:admin}}"
        self._account_prefix = f"{prefix}:acct:"
        self._index = f"{prefix}:accts"
        self._principal_roles = f"{prefix}:principal-roles"

    def _key(self, username: str) -> str:
        return self._account_prefix + check_username(username)

    # -- reading ------------------------------------------------------------

    @staticmethod
    def _decode(username: str, raw: dict[Any, Any]) -> AdminAccount:
        doc = {_text(k): _text(v) for k, v in raw.items()}
        try:
            return AdminAccount(username, frozenset(json.loads(doc["roles"])), doc["disabled"] == "1",
                                int(doc["created"]), int(doc["last_login"]) if doc.get("last_login") else None,
                                float(doc["pw_changed"]) if doc.get("pw_changed") else None)
        except (KeyError, ValueError, TypeError) as e:
            raise ConfigurationError(f"admin account {username!r} in the store is corrupt") from e

    def find(self, username: str) -> AdminAccount | None:
        with store_errors():
            raw = self._redis.hgetall(self._key(username))
        return self._decode(username, raw) if raw else None

    def get(self, username: str) -> AdminAccount:
        account = self.find(username)
        if account is None:
            raise NotFound(f"no admin account {username!r}")
        return account

    def list(self) -> builtins.list[AdminAccount]:
        with store_errors():
            names = [_text(n) for n in self._redis.zrange(self._index, 0, -1)]
            pipe = self._redis.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(self._key(name))
            raws = pipe.execute()
        return [self._decode(n, raw) for n, raw in zip(names, raws, strict=True) if raw]

    def roles_of(self, subject: str) -> frozenset[str]:
        """The roles of an account or a principal (``alice@REALM``); none for strangers."""
        subject = parse_subject(subject, self.realm)
        if "@" not in subject:
            account = self.find(subject)
            return frozenset() if account is None or account.disabled else account.roles
        with store_errors():
            raw = self._redis.hget(self._principal_roles, subject)
        return frozenset(json.loads(raw)) if raw else frozenset()

    def principal_grants(self) -> dict[str, frozenset[str]]:
        with store_errors():
            stored = self._redis.hgetall(self._principal_roles)
        return {_text(k): frozenset(json.loads(v)) for k, v in sorted(stored.items())}

    # -- writing ------------------------------------------------------------

    def _transact(self, keys: builtins.list[str], fn: Callable[[Any], T]) -> T:
        return transact(self._redis, keys, fn, contended="too many concurrent updates of the same admin account; try again")

    def _hash_password(self, password: str) -> dict[str, str]:
        if len(password) < MIN_PASSWORD:
            raise InvalidRequest(f"an admin password needs at least {MIN_PASSWORD} characters")
        params = self._password_params(self._rng(SALT_SIZE))
        return {"pw": b64encode(derive_password_key(password, params)), "kdf": json.dumps(params.to_dict())}

    def create(self, username: str, password: str, roles: Iterable[str]) -> AdminAccount:
        key = self._key(username)
        now = int(self._clock())
        fields = {"roles": json.dumps(sorted(set(roles))), "disabled": "0", "created": str(now), "last_login": "",
                  **self._hash_password(password)}

        def tx(pipe: Any) -> None:
            if pipe.exists(key):
                raise AlreadyExists(f"admin account {username!r} already exists")
            pipe.multi()
            pipe.hset(key, mapping=fields)
            pipe.zadd(self._index, {username: 0})

        self._transact([key], tx)
        return self.get(username)

    def delete(self, username: str) -> None:
        key = self._key(username)

        def tx(pipe: Any) -> None:
            if not pipe.exists(key):
                raise NotFound(f"no admin account {username!r}")
            pipe.multi()
            pipe.delete(key)
            pipe.zrem(self._index, username)

        self._transact([key], tx)

    def _update(self, username: str, fields: dict[str, str]) -> None:
        key = self._key(username)

        def tx(pipe: Any) -> None:
            if not pipe.exists(key):
                raise NotFound(f"no admin account {username!r}")
            pipe.multi()
            pipe.hset(key, mapping=fields)

        self._transact([key], tx)

    def set_disabled(self, username: str, disabled: bool) -> None:
        self._update(username, {"disabled": "1" if disabled else "0"})

    def set_password(self, username: str, password: str) -> None:
        """A new password; every web session of the account begun before now is over (OWASP ASVS 3.3.3)."""
        self._update(username, {**self._hash_password(password), "pw_changed": repr(float(self._clock()))})

    def _change_roles(self, subject: str, change: Callable[[set[str]], None]) -> frozenset[str]:
        subject = parse_subject(subject, self.realm)
        if "@" not in subject:
            key = self._key(subject)

            def account_tx(pipe: Any) -> frozenset[str]:
                raw = pipe.hget(key, "roles")
                if raw is None:
                    raise NotFound(f"no admin account {subject!r}")
                roles = set(json.loads(raw))
                change(roles)
                pipe.multi()
                pipe.hset(key, "roles", json.dumps(sorted(roles)))
                return frozenset(roles)

            return self._transact([key], account_tx)

        def principal_tx(pipe: Any) -> frozenset[str]:
            raw = pipe.hget(self._principal_roles, subject)
            roles = set(json.loads(raw)) if raw else set()
            change(roles)
            pipe.multi()
            if roles:
                pipe.hset(self._principal_roles, subject, json.dumps(sorted(roles)))
            else:
                pipe.hdel(self._principal_roles, subject)
            return frozenset(roles)

        return self._transact([self._principal_roles], principal_tx)

    def grant(self, subject: str, role: str) -> frozenset[str]:
        """Add ``role`` to an account or a principal; the subject's roles afterwards."""
        return self._change_roles(subject, lambda roles: roles.add(role))

    def revoke(self, subject: str, role: str) -> frozenset[str]:
        def remove(roles: set[str]) -> None:
            if role not in roles:
                raise NotFound(f"{subject} does not hold role {role!r}")
            roles.discard(role)

        return self._change_roles(subject, remove)

    # -- logging in ---------------------------------------------------------

    def _stored_hash(self, username: str) -> tuple[bytes, PasswordParams] | None:
        with store_errors():
            stored, kdf = self._redis.hmget(self._key(username), ["pw", "kdf"])
        if stored is None or kdf is None:
            return None
        try:
            return b64decode(_text(stored)), PasswordParams.from_dict(json.loads(kdf))
        except (ValueError, TallyError) as e:
            raise ConfigurationError(f"admin account {username!r} in the store is corrupt") from e

    def verify_password(self, username: str, password: str) -> AdminAccount:
        """The account if ``password`` is its password; ``PreauthFailed`` otherwise, unknown names included."""
        stored = self._stored_hash(username) if USERNAME.fullmatch(username) else None
        if stored is None:
            # Same Argon2id work as a real account: the timing says nothing about which names exist.
            derive_password_key(password or "-", self._password_params(bytes(SALT_SIZE)))
            raise PreauthFailed("unknown admin account or wrong password")
        expected, params = stored
        if not equal(derive_password_key(password or "-", params), expected) or not password:
            raise PreauthFailed("unknown admin account or wrong password")
        return self.get(username)

    def authenticate(self, username: str, password: str, address: str) -> AdminAccount:
        """A web login: throttled per account and address, then the password, then the disabled flag."""
        counted = username if USERNAME.fullmatch(username) else "?"  # no arbitrary input in Redis key names
        self.throttle.check(counted, address)
        try:
            account = self.verify_password(username, password)
        except PreauthFailed:
            self.throttle.record_failure(counted, address)
            raise
        self.throttle.record_success(counted)
        if account.disabled:
            raise PrincipalDisabled("this admin account is disabled")
        now = int(self._clock())
        with store_errors():
            self._redis.hset(self._key(username), "last_login", str(now))
        return AdminAccount(account.username, account.roles, account.disabled, account.created, now)
