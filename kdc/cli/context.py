"""Shared pieces of the ``tally kdc`` and ``tally admin`` commands: the two groups and their context.

``admin`` works directly on the store with the master key, as ``kadmin.local``
does: whoever can read the master key file already holds every key.  With
``--remote URL`` the same commands go through the KDC's admin API instead,
as the principal logged in with ``tally login`` (``admin_of`` returns either
kind of ``AdminInterface``).  Keys leave the KDC only as 0600 files; nothing
secret is ever printed.

Tests (and embedding programs) may pass ``obj={"redis_client": ..., "password_params":
..., "master_key": ...}`` to the click context instead of the environment's store,
and ``"remote_session"`` (a ``requests.Session``) for ``--remote``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import click
import redis

from tally_protocol.errors import AlreadyExists, ConfigurationError, TallyError
from tally_protocol.keys import Keyset, PasswordParams
from tally_protocol.principal import Principal
from tally_runtime.cli_errors import TallyGroup
from tally_runtime.keytab_file import write_keytab
from tally_runtime.redis_store import EMBEDDED_NOTICE, connect, is_embedded
from tally_runtime.settings import Settings

from ..admin.extension import build_operations
from ..admin.interface import AdminInterface, LocalAdmin, local_actor
from ..admin.policies import EffectivePolicy, PolicyStore, key_policy_source
from ..exchange import TicketPolicy
from ..lockout import LockoutPolicy
from ..master_key import load_master_key_file
from ..principal_db import PrincipalDB

PATH = click.Path(dir_okay=False, path_type=Path)


def obj_of(ctx: click.Context) -> dict[str, Any]:
    obj = ctx.ensure_object(dict)
    assert isinstance(obj, dict)
    return obj


def store_of(ctx: click.Context, settings: Settings, *, warn: bool = True) -> redis.Redis:
    obj = obj_of(ctx)
    client = obj.get("redis_client")
    if client is None:
        client = obj["redis_client"] = connect(settings.redis)
    if warn and is_embedded(client) and not obj.get("embedded_warned"):
        obj["embedded_warned"] = True
        click.echo(f"warning: {EMBEDDED_NOTICE}", err=True)
    return cast(redis.Redis, client)  # a RedisCluster too: connect() types every topology's client so


def realm_name(text: str) -> str:
    return Principal.tgs(text).realm  # InvalidPrincipal for a bad spelling


@click.group("kdc", cls=TallyGroup)
def kdc_group() -> None:
    """Initialise a realm and run the KDC."""


@click.group("admin", cls=TallyGroup)
@click.option("--realm", help="Realm to administer (default: TALLY_REALM, or the only realm in the store).")
@click.option("--remote", metavar="URL", help="Administer the KDC at URL through its admin API, as the principal "
              "of `tally login` (https://, or http:// to a loopback address).")
@click.pass_context
def admin_group(ctx: click.Context, realm: str | None, remote: str | None) -> None:
    """Administer a realm: locally against the store and the master key file, or --remote."""
    obj = obj_of(ctx)
    obj["realm"] = realm
    obj["remote"] = remote


def admin_of(ctx: click.Context) -> AdminInterface:
    """The admin operations this command runs through: local (as kadmin.local) or ``--remote``."""
    obj = obj_of(ctx)
    if "admin" in obj:
        admin: AdminInterface = obj["admin"]
        return admin
    remote = obj.get("remote")
    if remote:
        from client_sdk.ccache import CredentialCache
        from client_sdk.client import Client

        from ..admin.remote import RemoteAdmin

        client = Client(ccache=CredentialCache(Settings.load().ccache), session=obj.get("remote_session"))
        realm = obj.get("realm")
        if realm and realm_name(realm) != client.principal.realm:
            raise ConfigurationError(f"--realm {realm} differs from the realm of {client.principal}, the principal "
                                     "logged in")
        admin = RemoteAdmin(remote, client)
    else:
        db = db_of(ctx)
        # The KDC's own TALLY_*_LIFETIME_S settings are not known here: effective policies assume the defaults.
        operations = build_operations(store_of(ctx, Settings.load(), warn=False), db,
                                      EffectivePolicy(TicketPolicy(), LockoutPolicy()),
                                      password_params=obj.get("password_params"))
        admin = LocalAdmin(operations, local_actor())
    obj["admin"] = admin
    return admin


def db_of(ctx: click.Context) -> PrincipalDB:
    obj = obj_of(ctx)
    if obj.get("remote"):
        raise ConfigurationError(f"`{ctx.command_path}` works only locally, on the KDC host: drop --remote")
    if "db" in obj:
        db = obj["db"]
        assert isinstance(db, PrincipalDB)
        return db
    settings = Settings.load()
    store = store_of(ctx, settings)
    realm = obj.get("realm") or settings.realm
    if realm:
        realm = realm_name(realm)
    else:
        known = PrincipalDB.known_realms(store)
        if len(known) != 1:
            found = f"the store holds {', '.join(known)}" if known else "the store holds no realm (tally kdc init)"
            raise ConfigurationError(f"no realm: set TALLY_REALM or pass --realm ({found})")
        realm = known[0]
    master = obj.get("master_key") or load_master_key_file(settings.master_key_file)
    # The realm's stored policies (not this shell's configuration) bound how long old keys are kept.
    policies = PolicyStore(store, realm, EffectivePolicy(TicketPolicy(), LockoutPolicy()))
    db = PrincipalDB(store, realm, master, password_params=obj.get("password_params", PasswordParams),
                     key_policy=key_policy_source(policies, max_skew_s=settings.max_skew_s,
                                                  new_service_key_delay_s=settings.new_service_key_delay_s))
    db.check_master_key()
    obj["db"] = db
    return db


def refuse_existing(path: Path) -> Path:
    path = path.expanduser()
    if path.exists():
        raise AlreadyExists(f"{path} already exists; refusing to overwrite it")
    parent = next((d for d in (path.parent, *path.parent.parents) if d.exists()), Path("/"))
    if not os.access(parent, os.W_OK):
        raise ConfigurationError(f"cannot write {path}: {parent} is not writable")
    return path


def replace_keytab(path: Path, principal: Principal, keyset: Keyset) -> None:
    """Write a new file next to ``path`` and rename it over: readers see the old or the new file, whole."""
    path = path.expanduser()
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    write_keytab(tmp, principal, keyset)
    try:
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot replace {path}: {e.strerror}") from None


def write_new(admin: AdminInterface, p: Principal, path: Path, keyset: Keyset) -> None:
    try:
        write_keytab(path, p, keyset)
    except TallyError:
        try:
            admin.delete(str(p))  # the key exists nowhere else: do not leave a principal nobody can use
        except TallyError:
            pass  # (e.g. no delete permission) the write error is the one to report
        raise
