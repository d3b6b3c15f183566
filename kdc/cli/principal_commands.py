"""``tally admin`` commands on principals: add, list, show, disable, enable, rotate, export, delete."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from tally_protocol.errors import ConfigurationError, InvalidRequest
from tally_runtime.cli_input import read_password
from tally_runtime.keytab_file import write_keytab
from tally_runtime.settings import Settings

from ..records import PrincipalKind, PrincipalRecord
from .context import (
    PATH,
    admin_group,
    db_of,
    refuse_existing,
    replace_keytab,
    write_new,
)


@admin_group.command("add-client")
@click.argument("name")
@click.option("--key-out", type=PATH, help="Write a random 256-bit key to this file (0600).")
@click.option("--password", "use_password", is_flag=True, help="Derive the key from a password (prompted, or stdin).")
@click.pass_context
def add_client(ctx: click.Context, name: str, key_out: Path | None, use_password: bool) -> None:
    """Add a client principal with a key file or a password."""
    if (key_out is None) == (not use_password):
        raise click.UsageError("give exactly one of --key-out FILE or --password")
    db = db_of(ctx)
    p = db.principal(name)
    if key_out is not None:
        path = refuse_existing(key_out)
        keyset = db.add_client(p)
        assert keyset is not None
        write_new(db, p, path, keyset)
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
    db = db_of(ctx)
    p = db.principal(name)
    path = refuse_existing(keytab)
    keyset = db.add_service(p)
    write_new(db, p, path, keyset)
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
    db = db_of(ctx)
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
    r = db_of(ctx).get(name)
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
    db = db_of(ctx)
    db.disable(name)
    click.echo(f"{db.principal(name)} disabled")


@admin_group.command("enable")
@click.argument("name")
@click.pass_context
def enable(ctx: click.Context, name: str) -> None:
    """Enable a disabled principal."""
    db = db_of(ctx)
    db.enable(name)
    click.echo(f"{db.principal(name)} enabled")


@admin_group.command("rotate")
@click.argument("name")
@click.option("--keytab", type=PATH, help="Service: write the keytab (all kept versions), replacing the file.")
@click.option("--key-out", type=PATH, help="Client: write the new key file, replacing the file.")
@click.option("--password", "use_password", is_flag=True, help="Client: a new password (prompted, or stdin).")
@click.option("--delay", type=click.IntRange(0), help="Service or krbtgt: the KDC issues under the new version only "
              "after SECONDS (pending until then; the keytab holds it at once) [default: "
              "TALLY_NEW_SERVICE_KEY_DELAY_S for services, else 0].")
@click.pass_context
def rotate(ctx: click.Context, name: str, keytab: Path | None, key_out: Path | None, use_password: bool,
           delay: int | None) -> None:
    """Give a principal a new key version."""
    db = db_of(ctx)
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
    if delay is None:
        delay = Settings.from_env().new_service_key_delay_s if record.kind is PrincipalKind.SERVICE else 0
    keyset = db.rotate(p, password=read_password(confirm=True) if use_password else None, delay_s=delay)
    if delay:
        click.echo(f"key version {keyset.current.kvno} is pending: the KDC issues under it from "
                   f"{_when(int(time.time()) + delay)}; load the keytab on every replica before then (SIGHUP)")
    if target is not None:
        replace_keytab(target, p, keyset)
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
    db = db_of(ctx)
    record = db.get(name)
    if record.kind is not PrincipalKind.SERVICE:
        raise InvalidRequest(f"{record.name} is a {record.kind}; only service keytabs can be exported")
    path = refuse_existing(keytab)
    keyset = db.unwrap_keys(record)
    write_keytab(path, record.principal, keyset)
    click.echo(f"keytab for {record.name} (versions {', '.join(map(str, keyset.versions))}) written to {path} (0600)")


@admin_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def delete(ctx: click.Context, name: str, yes: bool) -> None:
    """Delete a principal and all its keys."""
    db = db_of(ctx)
    p = db.get(name).principal
    if not yes:
        click.confirm(f"Delete {p} and all its keys?", abort=True)
    db.delete(p)
    click.echo(f"{p} deleted")
