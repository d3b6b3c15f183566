"""The principal database: adding, rotating, purging, re-wrapping and deleting principals.

Storage, reading and the master key live in ``principal_store.py``; this
file holds the operations an administrator (or the KDC) performs.

Key versions over time are described in ``records.py``: ``current_key`` and
``unwrap_current`` give the newest *active* version (what the KDC issues
under), ``keyset`` every kept version including pending ones (what keytabs
and the TGS's verifier hold).
"""

from __future__ import annotations

import builtins
from typing import Any

from tally_protocol.crypto import derive_password_key, mac
from tally_protocol.errors import AlreadyExists, InvalidRequest, NotFound, PolicyRefused, StoreUnavailable
from tally_protocol.keys import KEY_SIZE, MAX_KVNO, Key, Keyset, PasswordParams
from tally_protocol.principal import Principal
from tally_runtime.redis_store import store_errors

from .key_policy import MAX_DELAY_S
from .principal_store import (
    DECOY_SECRET_SIZE,
    DEFAULT_MAX_VERSIONS,
    MAX_LIST,
    REALMS_KEY,
    MasterKeys,
    PrincipalStore,
    Wrap,
)
from .records import KeyVersion, PrincipalKind, PrincipalRecord

SALT_SIZE = 16

__all__ = ["DEFAULT_MAX_VERSIONS", "MAX_LIST", "REALMS_KEY", "MasterKeys", "PrincipalDB"]


class PrincipalDB(PrincipalStore):
    """Principals of one realm: the store plus what administrators and the KDC do with it."""

    def _password_key(self, password: str, kvno: int) -> tuple[Key, PasswordParams]:
        params = self._password_params(self._rng(SALT_SIZE))
        return Key(derive_password_key(password, params), kvno), params

    def _add(self, p: Principal, kind: PrincipalKind, key: Key, params: PasswordParams | None) -> None:
        if p.is_tgs or p.name.startswith("krbtgt/"):
            raise PolicyRefused("krbtgt/ names are reserved for ticket-granting services")
        now = int(self._clock())
        self._require_meta()

        def tx(pipe: Any) -> None:
            if pipe.exists(self._key(p)):
                raise AlreadyExists(f"principal {p} already exists")
            version = KeyVersion(key.kvno, self._wrapper(pipe, p.name)(key), now)
            record = PrincipalRecord(p, kind, False, now, now, params, (version,))
            pipe.multi()
            pipe.set(self._key(p), record.to_json())
            pipe.zadd(self._idx_key, {p.name: 0})

        self._transact([self._key(p), self._meta_key], tx)

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

    def disable(self, name: str | Principal) -> None:
        p = self.principal(name)
        if p.is_tgs:
            raise PolicyRefused("the ticket-granting principal cannot be disabled")
        self._update(p, lambda r, _now, _wrap: r.with_changes(disabled=True))

    def enable(self, name: str | Principal) -> None:
        self._update(self.principal(name), lambda r, _now, _wrap: r.with_changes(disabled=False))

    def rotate(self, name: str | Principal, *, password: str | None = None, delay_s: int = 0) -> Keyset:
        """A new key version (max + 1).

        Services and the TGS keep their older versions until no ticket under
        them can still be valid (``KeyPolicy``; expired ones are purged
        here), so tickets already issued keep verifying.  With ``delay_s >
        0`` the new version is *pending*: it is in the returned keyset (write
        it to every replica's keytab now) but the KDC keeps issuing under the
        current version until ``delay_s`` has passed.  ``KeyPolicy
        .default_delay_s`` is the realm's default for callers that name none.
        Clients keep only the new key and cannot be delayed.  A password
        principal needs a new password; a password turns a key-file client
        into a password principal.  Returns the kept keyset (services, TGS)
        or the new key (clients).
        """
        p = self.principal(name)
        if not 0 <= delay_s <= MAX_DELAY_S:
            raise InvalidRequest(f"the delay must be between 0 and {MAX_DELAY_S} seconds")
        result: builtins.list[Key] = []

        def change(record: PrincipalRecord, now: int, wrap: Wrap) -> PrincipalRecord:
            kvno = record.current.kvno + 1
            if kvno > MAX_KVNO:
                raise PolicyRefused("key version space exhausted")
            if delay_s and record.kind is PrincipalKind.CLIENT:
                raise InvalidRequest("a client has a single key: only service and ticket-granting keys can be "
                                     "pending")
            params: PasswordParams | None = None
            if password is not None:
                if record.kind is not PrincipalKind.CLIENT:
                    raise InvalidRequest("only clients can have password-derived keys")
                key, params = self._password_key(password, kvno)
            elif record.is_password:
                raise InvalidRequest(f"{p} is a password principal: a new password is required")
            else:
                key = Key(self._rng(KEY_SIZE), kvno)
            new = KeyVersion(kvno, wrap(key), now, now + delay_s)
            if record.kind is PrincipalKind.CLIENT:
                kept: tuple[KeyVersion, ...] = (new,)
            else:
                expired = record.expired_versions(now, self.key_policy.retention_s(record.kind))
                kept = (*(k for k in record.keys if k.kvno not in expired), new)
                if len(kept) > self._max_versions:
                    raise PolicyRefused(f"{p} already keeps {len(kept) - 1} key versions that tickets may still "
                                        "use; wait until older ones expire (tally admin purge-keys)")
            result[:] = [key]
            return record.with_changes(keys=kept, password=params)

        record = self._update(p, change)
        if record.kind is PrincipalKind.CLIENT:
            return Keyset(result)
        return self.unwrap_keys(record)

    def purge_old_keys(self, name: str | Principal | None = None) -> int:
        """Drop versions no valid ticket can use any more (of ``name``, or of every principal); how many."""
        records = [self.get(name)] if name is not None else self.all_records()
        dropped = 0
        for record in records:
            if record.kind is PrincipalKind.CLIENT:
                continue
            retention = self.key_policy.retention_s(record.kind)
            if not record.expired_versions(self._clock(), retention):
                continue
            counted: builtins.list[int] = []

            def change(r: PrincipalRecord, now: int, _wrap: Wrap, retention: int = retention,
                       counted: builtins.list[int] = counted) -> PrincipalRecord:
                expired = r.expired_versions(now, retention)
                counted[:] = expired
                return r.with_changes(keys=tuple(k for k in r.keys if k.kvno not in expired)) if expired else r

            try:
                self._update(record.principal, change)
            except NotFound:
                continue  # deleted meanwhile
            dropped += len(counted)
        return dropped

    def rewrap(self, name: str | Principal) -> bool:
        """Re-wrap ``name``'s keys still under another master version than the announced one; True if any were.

        Each record is re-wrapped in its own transaction, so an interrupted
        sweep leaves every record readable and a re-run continues.
        """
        p = self.principal(name)
        changed: builtins.list[bool] = [False]

        def change(record: PrincipalRecord, _now: int, wrap: Wrap) -> PrincipalRecord:
            target = wrap.master.kvno
            if all(k.master_kvno == target for k in record.keys):
                return record
            changed[0] = True
            return record.with_changes(keys=tuple(
                k if k.master_kvno == target else KeyVersion(k.kvno, wrap(self._unwrap(p.name, k)), k.created,
                                                             k.activate_at)
                for k in record.keys))

        self._update(p, change)
        return changed[0]

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

