"""Realm status for administrators: store health, realm-wide key versions and when they last rotated.

Reads the principal database's documented layout (``principal_db``): the
meta hash (creation time, ``master_kvno``, one ``master_check:<kvno>`` per
master key version held) and the name index, plus the TGS record.  Nothing
secret: versions and times only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

from tally_runtime.redis_store import is_embedded, store_errors

from ..principal_db import PrincipalDB
from .admin_service import admin_service
from .audit_log import AuditLog
from .results import KeyStatus, RealmStatus

_CHECK_PREFIX = "master_check:"


def _text(value: Any) -> str:
    # Check values in the meta hash are binary: they are never shown, only their field names are read.
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _store_info(store: redis.Redis) -> dict[str, Any]:
    info: dict[str, Any] = {"ok": bool(store.ping()), "embedded": is_embedded(store)}
    try:
        server = store.info("server")
        info["version"] = str(server.get("redis_version")) if server.get("redis_version") else None
    except redis.RedisError:  # INFO may be renamed or denied by the operator: not a health failure
        info["version"] = None
    return info


def read_realm_status(store: redis.Redis, db: PrincipalDB, audit_log: AuditLog,
                      clock: Callable[[], float]) -> RealmStatus:
    prefix = f"tally:{{{db.realm}}}"
    with store_errors():
        store_info = _store_info(store)
        meta = {_text(k): _text(v) for k, v in store.hgetall(f"{prefix}:meta").items()}
        principals = int(store.zcard(f"{prefix}:idx"))
    tgs = db.get(db.tgs)
    active_of = getattr(tgs, "active", None)  # the version the KDC issues under (a newer one may be pending)
    active = active_of(clock()) if callable(active_of) else tgs.current
    master_kvnos = sorted(int(k[len(_CHECK_PREFIX):]) for k in meta
                          if k.startswith(_CHECK_PREFIX) and k[len(_CHECK_PREFIX):].isdigit())
    master_kvno = _int(meta.get("master_kvno"))
    if not master_kvnos and master_kvno is not None:
        master_kvnos = [master_kvno]
    return RealmStatus(
        realm=db.realm,
        store=store_info,
        created=_int(meta.get("created")),
        principals=principals,
        audit_events=len(audit_log),
        tgs=KeyStatus(tgs.kvnos, active.kvno, int(getattr(active, "activate_at", active.created))),
        master=KeyStatus(master_kvnos, master_kvno, _int(meta.get("master_rotated")) or _int(meta.get("created"))),
        admin_service=db.find(admin_service(db.realm)) is not None,
    )
