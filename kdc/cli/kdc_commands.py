"""``tally kdc init`` and ``tally kdc serve``."""

from __future__ import annotations

from pathlib import Path

import click

from tally_protocol.errors import AlreadyExists, ConfigurationError, StoreUnavailable
from tally_runtime.redis_store import connect, is_embedded
from tally_runtime.secret_files import write_secret
from tally_runtime.settings import Settings

from ..admin.admin_service import admin_service, ensure_admin_service
from ..master_key import MasterKey, load_master_key_file
from ..principal_db import PrincipalDB
from .context import (
    PATH,
    kdc_group,
    realm_name,
    store_of,
)


@kdc_group.command("init")
@click.option("--realm", help="Realm to create (default: TALLY_REALM).")
@click.option("--master-key-file", type=PATH, help="Where to write the master key (default: TALLY_MASTER_KEY_FILE).")
@click.pass_context
def init(ctx: click.Context, realm: str | None, master_key_file: Path | None) -> None:
    """Create the master key file (0600) and the realm's ticket-granting key in the store."""
    settings = Settings.load()
    realm = realm_name(realm) if realm else settings.require_realm()
    path = (master_key_file or settings.master_key_file).expanduser()
    store = store_of(ctx, settings, warn=False)
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
    ensure_admin_service(db)  # its key never leaves the KDC: admin API callers get tickets for it
    click.echo(f"admin service principal {admin_service(realm)} created (tally admin --remote)")


@kdc_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8750, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="gunicorn worker processes.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 256), help="Threads per worker.")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="One JSON line per request.")
def serve(host: str, port: int, workers: int, threads: int, access_log: bool) -> None:
    """Serve the KDC under gunicorn (TALLY_REDIS_URL, TALLY_REALM, TALLY_MASTER_KEY_FILE).

    SIGHUP makes every worker read the master key file again (no restart).
    """
    from ..app import create_app
    from ..serve import serve_wsgi

    settings = Settings.load()
    if settings.redis_url is None:
        raise ConfigurationError("kdc serve needs TALLY_REDIS_URL: each worker would get its own empty embedded store")
    realm = settings.require_realm()
    master = load_master_key_file(settings.master_key_file)
    store = connect(settings.redis)
    try:
        PrincipalDB(store, realm, master).check_master_key()
    except StoreUnavailable:
        click.echo("warning: the store does not answer yet; /readyz reports 503 until it does", err=True)
    finally:
        store.close()  # workers open their own connections after fork
    click.echo(f"KDC for realm {realm} on http://{host}:{port} ({workers} workers x {threads} threads)", err=True)
    # Each worker reads the master key file itself, and again on SIGHUP or after a master key rotation.
    serve_wsgi(lambda: create_app(settings=settings), host=host, port=port,
               workers=workers, threads=threads, access_log=access_log)
