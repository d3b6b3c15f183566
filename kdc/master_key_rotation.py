"""Rotating the master key without downtime: add a version, re-wrap every record, drop the old version.

The steps, each safe to interrupt and to run again:

1. **Add** a version to the master key file (atomically, 0600).  The file
   now holds the old and the new version; every record still unwraps.  With
   several KDC hosts, stop here (``prepare``), copy the file to each, then
   go on: until the next step nothing is written under the new version.
2. **Announce** it in the realm's meta hash (``master_kvno`` and its check
   value).  Every writer (a KDC's admin API, the CLI) wraps under the
   announced version from now on, inside the same WATCH as its write, so
   no record written during the sweep can stay behind under the old one.
3. **Re-wrap** every record, one transaction per record.  A KDC that loaded
   the file before step 1 meets a record under the new version, reads its
   file again (rate-limited, also on SIGHUP) and carries on.
4. **Finish** (``--finish``, a separate command): refused while any record
   still uses another version; then the file is rewritten with the new
   version alone and the old check values are dropped.

If the file already holds several versions, a rotation is in progress: the
command continues it with the newest instead of adding yet another.
"""

from __future__ import annotations

import builtins
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tally_protocol import Random
from tally_protocol.errors import NotFound, PolicyRefused
from tally_protocol.principal import Principal

from .master_key import MasterKeyring, load_master_key_file, replace_master_key_file
from .principal_db import PrincipalDB
from .principal_store import CHECK_FIELD


@dataclass(frozen=True, slots=True)
class MasterKeyRotation:
    """What one run did: the version now wrapping, whether this run added it, how many records it re-wrapped."""

    kvno: int
    added: bool
    announced: bool
    rewrapped: int
    records: int


def master_versions_in_use(db: PrincipalDB) -> Counter[int]:
    """How many stored key versions each master key version wraps (a full sweep of the records)."""
    return Counter(k.master_kvno for record in db.all_records() for k in record.keys)


def announce(db: PrincipalDB, ring: MasterKeyring, now: float) -> bool:
    """Make the ring's newest version the one writers wrap under; False when it already was."""
    meta = db.meta()
    if meta.get("master_kvno") == str(ring.kvno) and f"{CHECK_FIELD}:{ring.kvno}" in meta:
        return False
    values: dict[str, str | int | bytes] = {f"{CHECK_FIELD}:{m.kvno}": m.check_value(db.realm).hex() for m in ring}
    values.update(master_kvno=ring.kvno, master_rotated=int(now))
    db.update_meta(values, remove=[CHECK_FIELD])  # the pre-rotation field, now numbered
    return True


def rotate_master_key(db: PrincipalDB, path: Path | str, *, now: float, rng: Random = os.urandom,
                      prepare: bool = False) -> MasterKeyRotation:
    """Add a master key version to the file at ``path`` (unless one is pending) and re-wrap the realm under it."""
    ring = load_master_key_file(path)
    db = db.with_master_key(ring)
    db.check_master_key()
    added = False
    if len(ring) == 1:
        ring = ring.with_new_version(rng)
        replace_master_key_file(path, ring, rng)
        db = db.with_master_key(ring)
        added = True
    if prepare:
        return MasterKeyRotation(ring.kvno, added, False, 0, 0)
    announced = announce(db, ring, now)
    names = [record.principal for record in db.all_records()]
    rewrapped = sum(1 for p in names if _rewrap(db, p))
    return MasterKeyRotation(ring.kvno, added, announced, rewrapped, len(names))


def _rewrap(db: PrincipalDB, principal: Principal) -> bool:
    try:
        return db.rewrap(principal)
    except NotFound:  # deleted during the sweep
        return False


def finish_master_key_rotation(db: PrincipalDB, path: Path | str) -> builtins.list[int]:
    """Drop every master version but the newest from the file; refused while a record still uses one.

    Returns the versions dropped (empty when no rotation was in progress).
    """
    ring = load_master_key_file(path)
    db = db.with_master_key(ring)
    db.check_master_key()
    if len(ring) == 1:
        return []
    if db.meta().get("master_kvno") != str(ring.kvno):
        raise PolicyRefused(f"master key version {ring.kvno} is not in use yet: run `tally kdc rotate-master-key` "
                            "(without --finish) first")
    in_use = master_versions_in_use(db)
    behind = {kvno: count for kvno, count in in_use.items() if kvno != ring.kvno}
    if behind:
        detail = ", ".join(f"{count} under version {kvno}" for kvno, count in sorted(behind.items()))
        raise PolicyRefused(f"stored keys still use old master key versions ({detail}); run "
                            "`tally kdc rotate-master-key` again to re-wrap them, then --finish")
    dropped = [kvno for kvno in ring.kvnos if kvno != ring.kvno]
    replace_master_key_file(path, ring.only_current())
    db.update_meta({}, remove=[f"{CHECK_FIELD}:{kvno}" for kvno in dropped])
    return dropped
