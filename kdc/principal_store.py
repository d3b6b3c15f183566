"""The principal store in Redis: layout, transactions, reading, and the master key.

Key layout, every key hash-tagged by realm (``{REALM}``) so the multi-key
transactions stay within one Redis Cluster slot.  A realm-wide tag is the
price of two guarantees: every write WATCHes the meta hash with the record
(a master key rotation cannot miss it, below), and creating or deleting a
principal changes the record and the name index in one MULTI.  The whole
database therefore lives on one Cluster master; its records are small and
read a few times per AS/TGS exchange, well within one node.  Everything
else (replay cache, lockout, rate limits, revocation, policies, audit,
admin and onboarding records) has its own tags, so it lands elsewhere:

* ``tally:{REALM}:meta``    hash: realm creation time, the master key version
  writers wrap under (``master_kvno``), when it was announced
  (``master_rotated``) and a check value per master version
  (``master_check:<kvno>``, hex; ``master_check``, raw bytes, in realms from
  before rotation)
* ``tally:{REALM}:p:<name>`` one JSON ``PrincipalRecord`` per principal
* ``tally:{REALM}:idx``     sorted set of names (score 0) for ordered, paged listing
* ``tally:{REALM}:decoy``   random secret for decoy salts and keys of unknown names
* ``tally:realms``          set of initialised realms (lets the CLI find the one realm)

Long-term keys are only ever stored wrapped under the master key.  Writes
use WATCH/MULTI so concurrent admins cannot lose each other's updates; they
also WATCH the meta hash and wrap under the master version it announces, so
a master key rotation can never miss a record written while it re-wraps.
Every Redis call goes through ``store_errors()``: an unreachable store is
``StoreUnavailable``, never a guess.  ``PrincipalDB`` (``principal_db.py``)
adds the operations on principals.

Reading is cached without ever being stale: every lookup still GETs the
record, and only the work done on what it read is kept, keyed by the stored
bytes themselves (the decoded record) or by the wrapped blob (the unwrapped
key, for the master keyring that unwrapped it).  A disabled, deleted,
rotated or re-wrapped principal is a different value in Redis, so the very
next lookup sees it.  The KDC reads records in its exchanges' batches
(``queue_find``).
"""

from __future__ import annotations

import builtins
import copy
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Self, TypeVar

import redis

from tally_protocol import Random
from tally_protocol.crypto import equal
from tally_protocol.errors import (
    AlreadyExists,
    ConfigurationError,
    InvalidRequest,
    NotFound,
)
from tally_protocol.keys import KEY_SIZE, Key, Keyset, PasswordParams
from tally_protocol.principal import Principal
from tally_runtime.redis_store import store_errors, transact
from tally_runtime.replay_cache import RedisReplayCache

from .key_policy import KeyPolicy
from .master_key import MasterKey, MasterKeyring, UnknownMasterKeyVersion
from .master_key_file import MasterKeyFile
from .records import KeyVersion, PrincipalKind, PrincipalRecord
from .store_batch import Batch, Reply

DECOY_SECRET_SIZE = 32
#: Superseded versions are kept until no ticket under them can be valid
#: (``KeyPolicy``); this bounds how many a burst of rotations can pile up.
DEFAULT_MAX_VERSIONS = 32
DEFAULT_KEY_POLICY = KeyPolicy()
MAX_LIST = 1000
REALMS_KEY = "tally:realms"
CHECK_FIELD = "master_check"
#: Decoded records and unwrapped keys kept per process (each map starts afresh when full).
DECODED_CACHE = 4096

T = TypeVar("T")
PasswordParamsFactory = Callable[[bytes], PasswordParams]
MasterKeys = MasterKey | MasterKeyring | MasterKeyFile
Change = Callable[[PrincipalRecord, int, "Wrap"], PrincipalRecord]


def _text(value: Any) -> str:
    return value.decode(errors="backslashreplace") if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class PrincipalStore:
    """Principal records of one realm in Redis, keys wrapped under the master key.

    ``master_key`` is one version, a keyring, or a ``MasterKeyFile`` that a
    running KDC reloads (on SIGHUP, or when a record names a master version
    it does not hold yet).
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        realm: str,
        master_key: MasterKeys,
        clock: Callable[[], float] = time.time,
        rng: Random = os.urandom,
        *,
        password_params: PasswordParamsFactory = PasswordParams,
        key_policy: KeyPolicy | Callable[[], KeyPolicy] = DEFAULT_KEY_POLICY,
        max_versions: int = DEFAULT_MAX_VERSIONS,
    ) -> None:
        self.realm = Principal.tgs(realm).realm  # validates the spelling
        self._redis = redis_client
        self._file = master_key if isinstance(master_key, MasterKeyFile) else None
        self._static_ring = None if isinstance(master_key, MasterKeyFile) else MasterKeyring.of(master_key)
        self._clock = clock
        self._rng = rng
        self._password_params = password_params
        if max_versions < 2:
            raise ConfigurationError("max_versions must be at least 2 (the active version and a new one)")
        self._key_policy = key_policy
        self._max_versions = max_versions
        self._decoy: bytes | None = None
        self._records: dict[bytes, PrincipalRecord] = {}
        self._unwrapped: dict[tuple[str, int, bytes], Key] = {}
        self._unwrapped_by: MasterKeyring | None = None
        self._cache_lock = threading.Lock()
        prefix = f"tally:{{{self.realm}}}"
        self._meta_key = f"{prefix}:meta"
        self._idx_key = f"{prefix}:idx"
        self._decoy_key = f"{prefix}:decoy"
        self._record_prefix = f"{prefix}:p:"

    @property
    def key_policy(self) -> KeyPolicy:
        """Retention and default delay; a callable is asked each time (per-principal policies may lengthen
        lifetimes, and retention must outlast the longest)."""
        policy = self._key_policy
        return policy if isinstance(policy, KeyPolicy) else policy()

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

    # -- master key ---------------------------------------------------------

    @property
    def master_keyring(self) -> MasterKeyring:
        """The master key versions this process holds now."""
        if self._file is not None:
            return self._file.keyring
        assert self._static_ring is not None
        return self._static_ring

    def _master(self, kvno: int) -> MasterKey:
        """Master version ``kvno``; a file-backed keyring is read again (rate-limited) when it lacks it."""
        ring = self.master_keyring
        if kvno not in ring and self._file is not None and self._file.reload_for(kvno):
            ring = self.master_keyring
        return ring.get(kvno)  # UnknownMasterKeyVersion

    def with_master_key(self, master_key: MasterKeys) -> Self:
        """The same store and policies with other master key versions (master key rotation)."""
        twin = copy.copy(self)
        twin._file = master_key if isinstance(master_key, MasterKeyFile) else None
        twin._static_ring = None if isinstance(master_key, MasterKeyFile) else MasterKeyring.of(master_key)
        return twin

    def _unwrap(self, name: str, k: KeyVersion) -> Key:
        """``k`` unwrapped, computed once per blob for the keyring held now (a reloaded file starts afresh)."""
        ring = self.master_keyring
        if ring is not self._unwrapped_by:
            with self._cache_lock:
                self._unwrapped, self._unwrapped_by = {}, ring
        cache = self._unwrapped
        found = cache.get((name, k.kvno, k.wrapped))
        if found is None:
            found = self._master(k.master_kvno).unwrap(self.realm, name, k.kvno, k.wrapped)
            self._keep(cache, (name, k.kvno, k.wrapped), found)
        return found

    def _keep(self, cache: dict[Any, Any], key: Any, value: Any) -> None:
        with self._cache_lock:
            if len(cache) >= DECODED_CACHE:
                cache.clear()
            cache[key] = value

    def _decoded(self, raw: Any) -> PrincipalRecord:
        """The record stored as ``raw``, decoded once per distinct value (records are frozen: sharing is safe)."""
        data = _bytes(raw)
        found = self._records.get(data)
        if found is None:
            found = PrincipalRecord.from_json(data, self.realm)
            self._keep(self._records, data, found)
        return found

    def meta(self) -> dict[str, str]:
        """The realm's meta hash (creation time, announced master version, check values; no secret)."""
        with store_errors():
            raw = self._redis.hgetall(self._meta_key)
        return {_text(k): _text(v) for k, v in raw.items()}

    def update_meta(self, values: Mapping[str, str | int | bytes], *, remove: Iterable[str] = ()) -> None:
        """Set (and drop) meta fields in one transaction; used by master key rotation."""
        with store_errors():
            pipe: Any
            with self._redis.pipeline(transaction=True) as pipe:
                if values:
                    pipe.hset(self._meta_key, mapping=values)
                fields = builtins.list(remove)
                if fields:
                    pipe.hdel(self._meta_key, *fields)
                pipe.execute()

    def _wrapper(self, pipe: Any, name: str) -> Wrap:
        return Wrap(self, pipe, name)

    # -- realm --------------------------------------------------------------

    def realm_exists(self) -> bool:
        with store_errors():
            return bool(self._redis.exists(self._meta_key))

    def init_realm(self) -> None:
        """Create the realm and ``krbtgt/REALM`` with a random key; ``AlreadyExists`` if present."""
        now = int(self._clock())
        tgs = self.tgs
        ring = self.master_keyring
        key = Key(self._rng(KEY_SIZE), 1)
        record = PrincipalRecord(tgs, PrincipalKind.TGS, False, now, now, None,
                                 (KeyVersion(1, ring.current.wrap(self.realm, tgs.name, key, self._rng), now),))
        decoy = self._rng(DECOY_SECRET_SIZE)
        meta: dict[str, Any] = {"created": now, "master_kvno": ring.kvno}
        meta.update({f"{CHECK_FIELD}:{m.kvno}": m.check_value(self.realm).hex() for m in ring})

        def tx(pipe: Any) -> None:
            if pipe.exists(self._meta_key):
                raise AlreadyExists(f"realm {self.realm} already exists in the store")
            pipe.multi()
            pipe.hset(self._meta_key, mapping=meta)
            pipe.set(self._key(tgs), record.to_json())
            pipe.zadd(self._idx_key, {tgs.name: 0})
            pipe.set(self._decoy_key, decoy, nx=True)

        self._transact([self._meta_key, self._key(tgs)], tx)
        with store_errors():
            self._redis.sadd(REALMS_KEY, self.realm)
        # A store created with the realm lost no authenticator: none can predate its keys.
        RedisReplayCache(self._redis).seed(birth=0)

    def check_master_key(self) -> None:
        """Refuse early, with a clear message, when the master key file is not this realm's.

        Every version the file holds that the realm knows must match its
        stored check value, at least one must be known, and the file must
        hold the version the realm wraps under now.
        """
        meta = self._require_meta()
        ring = self.master_keyring
        known = False
        for master in ring:
            expected = master.check_value(self.realm)
            stored = meta.get(f"{CHECK_FIELD}:{master.kvno}")
            if stored is not None:
                if not equal(_bytes(stored), expected.hex().encode()):
                    raise ConfigurationError(f"the master key file does not belong to realm {self.realm}")
                known = True
            elif CHECK_FIELD in meta and equal(_bytes(meta[CHECK_FIELD]), expected):
                known = True
        if not known:
            raise ConfigurationError(f"the master key file does not belong to realm {self.realm}")
        announced = int(meta.get("master_kvno", ring.kvno))
        if announced not in ring and not (self._file is not None and self._file.reload_for(announced)):
            raise UnknownMasterKeyVersion(f"the realm wraps keys under master key version {announced}, which the "
                                          f"master key file lacks (it holds {ring.kvnos}): copy the rotated file here")

    def _require_meta(self) -> dict[str, Any]:
        with store_errors():
            raw = self._redis.hgetall(self._meta_key)
        if not raw:
            raise NotFound(f"realm {self.realm} is not initialised in the store (run: tally kdc init --realm "
                           f"{self.realm})")
        return {_text(k): v for k, v in raw.items()}

    @staticmethod
    def known_realms(redis_client: redis.Redis) -> builtins.list[str]:
        with store_errors():
            return sorted(_text(r) for r in redis_client.smembers(REALMS_KEY))

    # -- reading ------------------------------------------------------------

    def find(self, name: str | Principal) -> PrincipalRecord | None:
        p = self.principal(name)
        with store_errors():
            raw = self._redis.get(self._key(p))
        return None if raw is None else self._decoded(raw)

    def queue_find(self, batch: Batch, name: str | Principal) -> Reply[PrincipalRecord | None]:
        """``find`` in ``batch``: one GET sent with the exchange's other reads."""
        return batch.add(self._decoded_reply, ("GET", self._key(self.principal(name))))

    def _decoded_reply(self, replies: builtins.list[Any]) -> PrincipalRecord | None:
        return None if replies[0] is None else self._decoded(replies[0])

    def get(self, name: str | Principal) -> PrincipalRecord:
        return self.require(self.find(name), name)

    def require(self, record: PrincipalRecord | None, name: str | Principal) -> PrincipalRecord:
        """``record``, as found for ``name`` (by ``find`` or ``queue_find``); ``NotFound`` when there was none."""
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

    def all_records(self) -> Iterator[PrincipalRecord]:
        """Every record, a page at a time (administrative sweeps: purge, master key re-wrap)."""
        start: str | None = None
        while True:
            page = self.list(start=start, limit=MAX_LIST)
            yield from page
            if len(page) < MAX_LIST:
                return
            start = page[-1].principal.name

    def keyset(self, name: str | Principal) -> Keyset:
        """Every kept key version of ``name`` (pending ones included), unwrapped."""
        return self.unwrap_keys(self.get(name))

    def current_key(self, name: str | Principal) -> Key:
        """The newest active version: what the KDC issues under now."""
        return self.unwrap_current(self.get(name))

    def unwrap_keys(self, record: PrincipalRecord) -> Keyset:
        return Keyset(self._unwrap(record.principal.name, k) for k in record.keys)

    def unwrap_current(self, record: PrincipalRecord) -> Key:
        return self._unwrap(record.principal.name, record.active(self._clock()))

    # -- writing ------------------------------------------------------------

    def _transact(self, keys: builtins.list[str], fn: Callable[[Any], T]) -> T:
        """Run ``fn`` under WATCH ``keys``; ``fn`` reads, calls ``pipe.multi()`` and queues writes."""
        return transact(self._redis, keys, fn, contended="too many concurrent updates of the same principal; try again")

    def _update(self, p: Principal, change: Change) -> PrincipalRecord:
        """Apply ``change`` atomically; a change returning the record it was given writes nothing."""
        key = self._key(p)

        def tx(pipe: Any) -> PrincipalRecord:
            raw = pipe.get(key)
            if raw is None:
                raise NotFound(f"no principal {p}")
            now = int(self._clock())
            before = PrincipalRecord.from_json(raw, self.realm)
            record = change(before, now, self._wrapper(pipe, p.name))
            if record is before:
                pipe.multi()  # nothing to write: an empty transaction
                return record
            pipe.multi()
            pipe.set(key, record.with_changes(updated=now).to_json())
            return record

        return self._transact([key, self._meta_key], tx)

class Wrap:
    """Wraps long-term keys of one principal under the master version the realm announces.

    The announcement is read through the caller's pipeline, inside its WATCH
    on the meta hash: if a master key rotation announces a new version
    meanwhile, the write is retried under it.
    """

    def __init__(self, db: PrincipalStore, pipe: Any, name: str) -> None:
        self._db, self._pipe, self._name = db, pipe, name
        self._master: MasterKey | None = None

    @property
    def master(self) -> MasterKey:
        if self._master is None:
            announced = self._pipe.hget(self._db._meta_key, "master_kvno")
            kvno = int(announced) if announced is not None else self._db.master_keyring.kvno
            self._master = self._db._master(kvno)
        return self._master

    def __call__(self, key: Key) -> bytes:
        return self.master.wrap(self._db.realm, self._name, key, self._db._rng)
