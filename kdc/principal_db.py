"""The principal database in Redis: who exists, their kind, state and wrapped keys.

Key layout, every key hash-tagged by realm so the multi-key transactions
below stay within one Redis Cluster slot:

* ``tally:{REALM}:meta``    hash: realm creation time and master key check value
* ``tally:{REALM}:p:<name>`` one JSON ``PrincipalRecord`` per principal
* ``tally:{REALM}:idx``     sorted set of names (score 0) for ordered, paged listing
* ``tally:{REALM}:decoy``   random secret for decoy salts and keys of unknown names
* ``tally:realms``          set of initialised realms (lets the CLI find the one realm)

Long-term keys are only ever stored wrapped under the master key.  Writes
use WATCH/MULTI so concurrent admins cannot lose each other's updates.
Every Redis call goes through ``store_errors()``: an unreachable store is
``StoreUnavailable``, never a guess.
"""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from tally_protocol import Random
from tally_protocol.crypto import derive_password_key, equal, mac
from tally_protocol.errors import (
    AlreadyExists,
    ConfigurationError,
    InvalidRequest,
    NotFound,
    PolicyRefused,
    StoreUnavailable,
)
from tally_protocol.keys import KEY_SIZE, MAX_KVNO, Key, Keyset, PasswordParams
from tally_protocol.principal import Principal
from tally_runtime.redis_store import store_errors

from .master_key import MasterKey
from .records import KeyVersion, PrincipalKind, PrincipalRecord

SALT_SIZE = 16
DECOY_SECRET_SIZE = 32
#: Service (and TGS) key versions kept after a rotation, newest first: tickets
#: issued under an older version keep verifying until they expire.
DEFAULT_KEEP_VERSIONS = 5
MAX_LIST = 1000
_TX_RETRIES = 16
REALMS_KEY = "tally:realms"

T = TypeVar("T")
PasswordParamsFactory = Callable[[bytes], PasswordParams]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class PrincipalDB:
    """Principals of one realm, stored in Redis with keys wrapped under ``master_key``."""

    def __init__(
        self,
        redis_client: redis.Redis,
        realm: str,
        master_key: MasterKey,
        clock: Callable[[], float] = time.time,
        rng: Random = os.urandom,
        *,
        password_params: PasswordParamsFactory = PasswordParams,
        keep_versions: int = DEFAULT_KEEP_VERSIONS,
    ) -> None:
        self.realm = Principal.tgs(realm).realm  # validates the spelling
        self._redis = redis_client
        self._master = master_key
        self._clock = clock
        self._rng = rng
        self._password_params = password_params
        if keep_versions < 1:
            raise ConfigurationError("keep_versions must be at least 1")
        self._keep = keep_versions
        self._decoy: bytes | None = None
        prefix = f"tally:{{{self.realm}}}"
        self._meta_key = f"{prefix}:meta"
        self._idx_key = f"{prefix}:idx"
        self._decoy_key = f"{prefix}:decoy"
        self._record_prefix = f"{prefix}:p:"

    # -- naming -------------------------------------------------------------

    @property
    def tgs(self) -> Principal:
        return Principal.tgs(self.realm)

    def principal(self, name: str | Principal) -> Principal:
        """``alice`` or ``alice@REALM`` as a principal of this realm (``InvalidPrincipal`` otherwise)."""
        p = name if isinstance(name, Principal) else Principal.parse(name, default_realm=self.realm)
        if p.realm != self.realm:
            raise NotFound(f"{p} is not in realm {self.realm}")
        return p

    def _key(self, p: Principal) -> str:
        return self._record_prefix + p.name

    # -- realm --------------------------------------------------------------

    def realm_exists(self) -> bool:
        with store_errors():
            return bool(self._redis.exists(self._meta_key))

    def init_realm(self) -> None:
        """Create the realm and ``krbtgt/REALM`` with a random key; ``AlreadyExists`` if present."""
        now = int(self._clock())
        tgs = self.tgs
        record = self._new_record(tgs, PrincipalKind.TGS, Key(self._rng(KEY_SIZE), 1), None, now)
        decoy = self._rng(DECOY_SECRET_SIZE)

        def tx(pipe: Any) -> None:
            if pipe.exists(self._meta_key):
                raise AlreadyExists(f"realm {self.realm} already exists in the store")
            pipe.multi()
            pipe.hset(self._meta_key, mapping={"created": now, "master_check": self._master.check_value(self.realm),
                                               "master_kvno": self._master.kvno})
            pipe.set(self._key(tgs), record.to_json())
            pipe.zadd(self._idx_key, {tgs.name: 0})
            pipe.set(self._decoy_key, decoy, nx=True)

        self._transact([self._meta_key, self._key(tgs)], tx)
        with store_errors():
            self._redis.sadd(REALMS_KEY, self.realm)

    def check_master_key(self) -> None:
        """Refuse early, with a clear message, when the master key file is not this realm's."""
        with store_errors():
            stored = self._redis.hget(self._meta_key, "master_check")
        if stored is None:
            raise NotFound(f"realm {self.realm} is not initialised in the store (run: tally kdc init --realm "
                           f"{self.realm})")
        if not equal(bytes(stored) if not isinstance(stored, str) else stored.encode(),
                     self._master.check_value(self.realm)):
            raise ConfigurationError(f"the master key file does not belong to realm {self.realm}")

    @staticmethod
    def known_realms(redis_client: redis.Redis) -> builtins.list[str]:
        with store_errors():
            return sorted(_text(r) for r in redis_client.smembers(REALMS_KEY))

    # -- reading ------------------------------------------------------------

    def find(self, name: str | Principal) -> PrincipalRecord | None:
        p = self.principal(name)
        with store_errors():
            raw = self._redis.get(self._key(p))
        return None if raw is None else PrincipalRecord.from_json(raw, self.realm)

    def get(self, name: str | Principal) -> PrincipalRecord:
        record = self.find(name)
        if record is None:
            raise NotFound(f"no principal {self.principal(name)}")
        return record

    def list(self, prefix: str = "", start: str | None = None, limit: int = 100) -> builtins.list[PrincipalRecord]:
        """Records in name order whose name starts with ``prefix``, after ``start`` (exclusive)."""
        if not 1 <= limit <= MAX_LIST:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LIST}")
        low = f"({start}" if start is not None and start >= prefix else f"[{prefix}"
        high = f"[{prefix}\xff" if prefix else "+"
        with store_errors():
            names = [_text(n) for n in self._redis.zrangebylex(self._idx_key, low, high, start=0, num=limit)]
            raws = self._redis.mget([self._record_prefix + n for n in names]) if names else []
        return [PrincipalRecord.from_json(raw, self.realm) for raw in raws if raw is not None]

    def keyset(self, name: str | Principal) -> Keyset:
        """Every kept key version of ``name``, unwrapped."""
        return self.unwrap_keys(self.get(name))

    def current_key(self, name: str | Principal) -> Key:
        return self.unwrap_current(self.get(name))

    def unwrap_keys(self, record: PrincipalRecord) -> Keyset:
        return Keyset(self._master.unwrap(self.realm, record.principal.name, k.kvno, k.wrapped) for k in record.keys)

    def unwrap_current(self, record: PrincipalRecord) -> Key:
        k = record.current
        return self._master.unwrap(self.realm, record.principal.name, k.kvno, k.wrapped)

    # -- decoys ---------------------------------------------------------------

    def _decoy_secret(self) -> bytes:
        if self._decoy is None:
            with store_errors():
                # SET NX then GET: every replica converges on the one stored secret.
                self._redis.set(self._decoy_key, self._rng(DECOY_SECRET_SIZE), nx=True)
                raw = self._redis.get(self._decoy_key)
            if raw is None:
                raise StoreUnavailable("decoy secret vanished from the store")
            self._decoy = bytes(raw) if not isinstance(raw, str) else raw.encode("latin-1")
        return self._decoy

    def password_params(self, name: str | Principal) -> PasswordParams:
        """Real parameters of a password principal; for anyone else a stable decoy set.

        Unknown names and key-file principals get ``salt = HMAC(decoy secret,
        name)[:16]`` with the realm's default cost, so the answer does not reveal
        whether a name exists or how its key was made.
        """
        p = Principal.parse(name, default_realm=self.realm) if isinstance(name, str) else name
        if p.realm == self.realm:
            record = self.find(p)
            if record is not None and record.password is not None:
                return record.password
        return self._password_params(mac(self._decoy_secret(), str(p).encode())[:SALT_SIZE])

    def decoy_key(self, name: Principal) -> Key:
        """A stable key for a name with no usable key: the AS exchange fails exactly as with a wrong key."""
        material = mac(self._decoy_secret(), b"\x00decoy key\x00" + str(name).encode())
        return Key(material[:KEY_SIZE], 0)

    # -- writing ------------------------------------------------------------

    def _transact(self, keys: builtins.list[str], fn: Callable[[Any], T]) -> T:
        """Run ``fn`` under WATCH ``keys``; ``fn`` reads, calls ``pipe.multi()`` and queues writes."""
        with store_errors():
            for _ in range(_TX_RETRIES):
                pipe: Any
                with self._redis.pipeline() as pipe:
                    try:
                        pipe.watch(*keys)
                        result = fn(pipe)
                        pipe.execute()
                        return result
                    except redis.WatchError:
                        continue
        raise StoreUnavailable("too many concurrent updates of the same principal; try again")

    def _new_record(self, p: Principal, kind: PrincipalKind, key: Key, params: PasswordParams | None,
                    now: int) -> PrincipalRecord:
        wrapped = KeyVersion(key.kvno, self._master.wrap(self.realm, p.name, key, self._rng), now)
        return PrincipalRecord(p, kind, False, now, now, params, (wrapped,))

    def _password_key(self, password: str, kvno: int) -> tuple[Key, PasswordParams]:
        params = self._password_params(self._rng(SALT_SIZE))
        return Key(derive_password_key(password, params), kvno), params

    def _add(self, p: Principal, kind: PrincipalKind, key: Key, params: PasswordParams | None) -> None:
        if p.is_tgs or p.name.startswith("krbtgt/"):
            raise PolicyRefused("krbtgt/ names are reserved for ticket-granting services")
        record = self._new_record(p, kind, key, params, int(self._clock()))
        self._require_realm()

        def tx(pipe: Any) -> None:
            if pipe.exists(self._key(p)):
                raise AlreadyExists(f"principal {p} already exists")
            pipe.multi()
            pipe.set(self._key(p), record.to_json())
            pipe.zadd(self._idx_key, {p.name: 0})

        self._transact([self._key(p)], tx)

    def _require_realm(self) -> None:
        if not self.realm_exists():
            raise NotFound(f"realm {self.realm} is not initialised in the store (run: tally kdc init --realm "
                           f"{self.realm})")

    def add_client(self, name: str | Principal, *, password: str | None = None) -> Keyset | None:
        """A client with a random 256-bit key (returned, for the key file) or a password-derived key (None)."""
        p = self.principal(name)
        if password is not None:
            key, params = self._password_key(password, 1)
            self._add(p, PrincipalKind.CLIENT, key, params)
            return None
        key = Key(self._rng(KEY_SIZE), 1)
        self._add(p, PrincipalKind.CLIENT, key, None)
        return Keyset([key])

    def add_service(self, name: str | Principal) -> Keyset:
        p = self.principal(name)
        key = Key(self._rng(KEY_SIZE), 1)
        self._add(p, PrincipalKind.SERVICE, key, None)
        return Keyset([key])

    def _update(self, p: Principal, change: Callable[[PrincipalRecord, int], PrincipalRecord]) -> PrincipalRecord:
        key = self._key(p)

        def tx(pipe: Any) -> PrincipalRecord:
            raw = pipe.get(key)
            if raw is None:
                raise NotFound(f"no principal {p}")
            now = int(self._clock())
            record = change(PrincipalRecord.from_json(raw, self.realm), now)
            pipe.multi()
            pipe.set(key, record.with_changes(updated=now).to_json())
            return record

        return self._transact([key], tx)

    def disable(self, name: str | Principal) -> None:
        p = self.principal(name)
        if p.is_tgs:
            raise PolicyRefused("the ticket-granting principal cannot be disabled")
        self._update(p, lambda r, _now: r.with_changes(disabled=True))

    def enable(self, name: str | Principal) -> None:
        self._update(self.principal(name), lambda r, _now: r.with_changes(disabled=False))

    def rotate(self, name: str | Principal, *, password: str | None = None) -> Keyset:
        """A new key version (max + 1).

        Services and the TGS keep their newest versions (so tickets already
        issued keep verifying); clients keep only the new key.  A password
        principal needs a new password; a password turns a key-file client
        into a password principal.  Returns the kept keyset (services) or the
        new key (clients).
        """
        p = self.principal(name)
        result: builtins.list[Key] = []

        def change(record: PrincipalRecord, now: int) -> PrincipalRecord:
            kvno = record.current.kvno + 1
            if kvno > MAX_KVNO:
                raise PolicyRefused("key version space exhausted")
            params: PasswordParams | None = None
            if password is not None:
                if record.kind is not PrincipalKind.CLIENT:
                    raise InvalidRequest("only clients can have password-derived keys")
                key, params = self._password_key(password, kvno)
            elif record.is_password:
                raise InvalidRequest(f"{p} is a password principal: a new password is required")
            else:
                key = Key(self._rng(KEY_SIZE), kvno)
            new = KeyVersion(kvno, self._master.wrap(self.realm, p.name, key, self._rng), now)
            kept = (new,) if record.kind is PrincipalKind.CLIENT else (*record.keys, new)[-self._keep:]
            result[:] = [key]
            return record.with_changes(keys=kept, password=params)

        record = self._update(p, change)
        if record.kind is PrincipalKind.CLIENT:
            return Keyset(result)
        return self.unwrap_keys(record)

    def delete(self, name: str | Principal) -> None:
        p = self.principal(name)
        if p.is_tgs:
            raise PolicyRefused("the ticket-granting principal cannot be deleted")
        key = self._key(p)

        def tx(pipe: Any) -> None:
            if not pipe.exists(key):
                raise NotFound(f"no principal {p}")
            pipe.multi()
            pipe.delete(key)
            pipe.zrem(self._idx_key, p.name)

        self._transact([key], tx)
