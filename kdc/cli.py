"""``tally kdc`` (initialise and serve the KDC) and ``tally admin`` (local administration).

``admin`` works directly on the store with the master key, as ``kadmin.local``
does: whoever can read the master key file already holds every key.  Keys
leave the KDC only as 0600 files; nothing secret is ever printed.

Tests (and embedding programs) may pass ``obj={"redis_client": ..., "password_params":
..., "master_key": ...}`` to the click context instead of the environment's store.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click
import redis

from tally_protocol.errors import AlreadyExists, ConfigurationError, InvalidRequest, StoreUnavailable, TallyError
from tally_protocol.keys import Keyset, PasswordParams
from tally_protocol.principal import Principal
from tally_runtime.cli_errors import TallyGroup
from tally_runtime.cli_input import read_password
from tally_runtime.keytab_file import write_keytab
from tally_runtime.redis_store import EMBEDDED_NOTICE, connect, is_embedded
from tally_runtime.secret_files import write_secret
from tally_runtime.settings import Settings

from .master_key import MasterKey, load_master_key_file
from .principal_db import PrincipalDB
from .records import PrincipalKind, PrincipalRecord

PATH = click.Path(dir_okay=False, path_type=Path)


def _obj(ctx: click.Context) -> dict[str, Any]:
    obj = ctx.ensure_object(dict)
    assert isinstance(obj, dict)
    return obj


def _store(ctx: click.Context, settings: Settings, *, warn: bool = True) -> redis.Redis:
    obj = _obj(ctx)
    client = obj.get("redis_client")
    if client is None:
        client = obj["redis_client"] = connect(settings.redis_url)
    if warn and is_embedded(client) and not obj.get("embedded_warned"):
        obj["embedded_warned"] = True
        click.echo(f"warning: {EMBEDDED_NOTICE}", err=True)
    assert isinstance(client, redis.Redis)
    return client


def _realm_name(text: str) -> str:
    return Principal.tgs(text).realm  # InvalidPrincipal for a bad spelling


# ---------------------------------------------------------------------------- kdc


@click.group("kdc", cls=TallyGroup)
def kdc_group() -> None:
    """Initialise a realm and run the KDC."""


@kdc_group.command("init")
@click.option("--realm", help="Realm to create (default: TALLY_REALM).")
@click.option("--master-key-file", type=PATH, help="Where to write the master key (default: TALLY_MASTER_KEY_FILE).")
@click.pass_context
def init(ctx: click.Context, realm: str | None, master_key_file: Path | None) -> None:
    """Create the master key file (0600) and the realm's ticket-granting key in the store."""
    settings = Settings.from_env()
    realm = _realm_name(realm) if realm else settings.require_realm()
    path = (master_key_file or settings.master_key_file).expanduser()
    store = _store(ctx, settings, warn=False)
    if is_embedded(store):
        click.echo("warning: the embedded store is non-persistent, so this realm vanishes when the command exits; "
                   "kdc init only makes sense with TALLY_REDIS_URL", err=True)
    master = MasterKey.generate()
    db = PrincipalDB(store, realm, master)
    if db.realm_exists():
        raise AlreadyExists(f"realm {realm} already exists in the store")
    try:
        write_secret(path, master.to_bytes())
    except AlreadyExists:  # never clobber a master key: it may be the only copy of a realm's keys
        raise AlreadyExists(f"master key file {path} already exists; refusing to overwrite it (if no realm uses "
                            "it, move it away, or pass --master-key-file)") from None
    try:
        db.init_realm()
    except BaseException:
        path.unlink()  # nothing was stored under it, so a retry may write a fresh one
        raise
    click.echo(f"master key written to {path} (mode 0600); keep it safe and backed up")
    click.echo(f"realm {realm} created with principal {db.tgs}")


@kdc_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8750, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="gunicorn worker processes.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 256), help="Threads per worker.")
@click.option("--access-log/--no-access-log", default=False, show_default=True)
def serve(host: str, port: int, workers: int, threads: int, access_log: bool) -> None:
    """Serve the KDC under gunicorn (TALLY_REDIS_URL, TALLY_REALM, TALLY_MASTER_KEY_FILE)."""
    from .app import create_app
    from .serve import serve_wsgi

    settings = Settings.from_env()
    if settings.redis_url is None:
        raise ConfigurationError("kdc serve needs TALLY_REDIS_URL: each worker would get its own empty embedded store")
    realm = settings.require_realm()
    master = load_master_key_file(settings.master_key_file)
    store = connect(settings.redis_url)
    try:
        PrincipalDB(store, realm, master).check_master_key()
    except StoreUnavailable:
        click.echo("warning: the store does not answer yet; /readyz reports 503 until it does", err=True)
    finally:
        store.close()  # workers open their own connections after fork
    click.echo(f"KDC for realm {realm} on http://{host}:{port} ({workers} workers x {threads} threads)", err=True)
    serve_wsgi(lambda: create_app(settings=settings, master_key=master), host=host, port=port,
               workers=workers, threads=threads, access_log=access_log)


# -------------------------------------------------------------------------- admin


@click.group("admin", cls=TallyGroup)
@click.option("--realm", help="Realm to administer (default: TALLY_REALM, or the only realm in the store).")
@click.pass_context
def admin_group(ctx: click.Context, realm: str | None) -> None:
    """Administer principals locally, against the store and the master key file."""
    _obj(ctx)["realm"] = realm


def _db(ctx: click.Context) -> PrincipalDB:
    obj = _obj(ctx)
    if "db" in obj:
        db = obj["db"]
        assert isinstance(db, PrincipalDB)
        return db
    settings = Settings.from_env()
    store = _store(ctx, settings)
    realm = obj.get("realm") or settings.realm
    if realm:
        realm = _realm_name(realm)
    else:
        known = PrincipalDB.known_realms(store)
        if len(known) != 1:
            found = f"the store holds {', '.join(known)}" if known else "the store holds no realm (tally kdc init)"
            raise ConfigurationError(f"no realm: set TALLY_REALM or pass --realm ({found})")
        realm = known[0]
    master = obj.get("master_key") or load_master_key_file(settings.master_key_file)
    db = PrincipalDB(store, realm, master, password_params=obj.get("password_params", PasswordParams))
    db.check_master_key()
    obj["db"] = db
    return db


def _refuse_existing(path: Path) -> Path:
    path = path.expanduser()
    if path.exists():
        raise AlreadyExists(f"{path} already exists; refusing to overwrite it")
    parent = next((d for d in (path.parent, *path.parent.parents) if d.exists()), Path("/"))
    if not os.access(parent, os.W_OK):
        raise ConfigurationError(f"cannot write {path}: {parent} is not writable")
    return path


def _replace_keytab(path: Path, principal: Principal, keyset: Keyset) -> None:
    """Write a new file next to ``path`` and rename it over: readers see the old or the new file, whole."""
    path = path.expanduser()
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    write_keytab(tmp, principal, keyset)
    try:
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot replace {path}: {e.strerror}") from None


def _write_new(db: PrincipalDB, p: Principal, path: Path, keyset: Keyset) -> None:
    try:
        write_keytab(path, p, keyset)
    except TallyError:
        db.delete(p)  # the key exists nowhere else: do not leave a principal nobody can use
        raise


@admin_group.command("add-client")
@click.argument("name")
@click.option("--key-out", type=PATH, help="Write a random 256-bit key to this file (0600).")
@click.option("--password", "use_password", is_flag=True, help="Derive the key from a password (prompted, or stdin).")
@click.pass_context
def add_client(ctx: click.Context, name: str, key_out: Path | None, use_password: bool) -> None:
    """Add a client principal with a key file or a password."""
    if (key_out is None) == (not use_password):
        raise click.UsageError("give exactly one of --key-out FILE or --password")
    db = _db(ctx)
    p = db.principal(name)
    if key_out is not None:
        path = _refuse_existing(key_out)
        keyset = db.add_client(p)
        assert keyset is not None
        _write_new(db, p, path, keyset)
        click.echo(f"client {p} added; key version {keyset.current.kvno} written to {path} (0600)")
    else:
        db.add_client(p, password=read_password(confirm=True))
        click.echo(f"client {p} added with a password-derived key (Argon2id)")


@admin_group.command("add-service")
@click.argument("name")
@click.option("--keytab", type=PATH, required=True, help="Write the service's keytab to this file (0600).")
@click.pass_context
def add_service(ctx: click.Context, name: str, keytab: Path) -> None:
    """Add a service principal with a random key, written to a keytab."""
    db = _db(ctx)
    p = db.principal(name)
    path = _refuse_existing(keytab)
    keyset = db.add_service(p)
    _write_new(db, p, path, keyset)
    click.echo(f"service {p} added; keytab with key version {keyset.current.kvno} written to {path} (0600)")


def _status(record: PrincipalRecord) -> str:
    return "disabled" if record.disabled else "enabled"


def _when(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@admin_group.command("list")
@click.option("--prefix", default="", help="Only names starting with this.")
@click.pass_context
def list_principals(ctx: click.Context, prefix: str) -> None:
    """List principals: name, kind, status, key versions."""
    db = _db(ctx)
    rows: list[tuple[str, str, str, str]] = []
    start: str | None = None
    while True:
        page = db.list(prefix=prefix, start=start, limit=500)
        rows += [(r.name, str(r.kind), _status(r), ",".join(map(str, r.kvnos))) for r in page]
        if len(page) < 500:
            break
        start = page[-1].principal.name
    header = ("NAME", "KIND", "STATUS", "KVNOS")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@admin_group.command("show")
@click.argument("name")
@click.pass_context
def show(ctx: click.Context, name: str) -> None:
    """Show a principal (never its keys)."""
    r = _db(ctx).get(name)
    if r.password is not None:
        source = (f"password (argon2id, {r.password.iterations} iterations, {r.password.memory_kib} KiB, "
                  f"{r.password.lanes} lanes)")
    else:
        source = "random key"
    for label, value in (("principal", r.name), ("kind", str(r.kind)), ("status", _status(r)),
                         ("key versions", ", ".join(map(str, r.kvnos))), ("current kvno", str(r.current.kvno)),
                         ("key source", source), ("created", _when(r.created)), ("updated", _when(r.updated))):
        click.echo(f"{label + ':':14}{value}")


@admin_group.command("disable")
@click.argument("name")
@click.pass_context
def disable(ctx: click.Context, name: str) -> None:
    """Disable a principal: no new tickets for it or, for a service, to it."""
    db = _db(ctx)
    db.disable(name)
    click.echo(f"{db.principal(name)} disabled")


@admin_group.command("enable")
@click.argument("name")
@click.pass_context
def enable(ctx: click.Context, name: str) -> None:
    """Enable a disabled principal."""
    db = _db(ctx)
    db.enable(name)
    click.echo(f"{db.principal(name)} enabled")


@admin_group.command("rotate")
@click.argument("name")
@click.option("--keytab", type=PATH, help="Service: write the keytab (all kept versions), replacing the file.")
@click.option("--key-out", type=PATH, help="Client: write the new key file, replacing the file.")
@click.option("--password", "use_password", is_flag=True, help="Client: a new password (prompted, or stdin).")
@click.pass_context
def rotate(ctx: click.Context, name: str, keytab: Path | None, key_out: Path | None, use_password: bool) -> None:
    """Give a principal a new key version."""
    db = _db(ctx)
    record = db.get(name)
    p = record.principal
    if record.kind is PrincipalKind.SERVICE and (keytab is None or key_out or use_password):
        raise click.UsageError("a service is rotated with --keytab FILE")
    if record.kind is PrincipalKind.CLIENT and (keytab or (key_out is None) == (not use_password)):
        raise click.UsageError("a client is rotated with exactly one of --key-out FILE or --password")
    if record.kind is PrincipalKind.TGS and (keytab or key_out or use_password):
        raise click.UsageError("the ticket-granting key never leaves the KDC: rotate it without options")
    target = keytab or key_out
    if target is not None:
        parent = target.expanduser().parent
        if parent.exists() and not os.access(parent, os.W_OK):
            raise ConfigurationError(f"cannot write {target}: {parent} is not writable")
    keyset = db.rotate(p, password=read_password(confirm=True) if use_password else None)
    if target is not None:
        _replace_keytab(target, p, keyset)
        click.echo(f"{p} rotated to key version {keyset.current.kvno}; {target} holds versions "
                   f"{', '.join(map(str, keyset.versions))} (0600)")
    else:
        click.echo(f"{p} rotated to key version {keyset.current.kvno}")


@admin_group.command("export-keytab")
@click.argument("name")
@click.option("--keytab", type=PATH, required=True, help="Write the service's keytab to this new file (0600).")
@click.pass_context
def export_keytab(ctx: click.Context, name: str, keytab: Path) -> None:
    """Write a service's keytab (every kept key version) to a new file."""
    db = _db(ctx)
    record = db.get(name)
    if record.kind is not PrincipalKind.SERVICE:
        raise InvalidRequest(f"{record.name} is a {record.kind}; only service keytabs can be exported")
    path = _refuse_existing(keytab)
    keyset = db.unwrap_keys(record)
    write_keytab(path, record.principal, keyset)
    click.echo(f"keytab for {record.name} (versions {', '.join(map(str, keyset.versions))}) written to {path} (0600)")


@admin_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def delete(ctx: click.Context, name: str, yes: bool) -> None:
    """Delete a principal and all its keys."""
    db = _db(ctx)
    p = db.get(name).principal
    if not yes:
        click.confirm(f"Delete {p} and all its keys?", abort=True)
    db.delete(p)
    click.echo(f"{p} deleted")
