"""``tally admin`` commands on principals: add, list, show, disable, enable, rotate, export, delete.

Each runs through ``admin_of(ctx)``: locally as ``kadmin.local`` or, with
``--remote``, through the KDC's admin API; the output is the same either way.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from tally_protocol.errors import ConfigurationError, PermissionDenied, TallyError
from tally_protocol.keys import Keyset
from tally_protocol.principal import Principal
from tally_runtime.cli_input import read_password
from tally_runtime.keytab_file import read_keytab, write_keytab
from tally_runtime.settings import Settings

from ..admin.results import Issued, PrincipalSummary
from .context import (
    PATH,
    admin_group,
    admin_of,
    obj_of,
    refuse_existing,
    replace_keytab,
    write_new,
)


def _when(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _principal(name: str, realm: str) -> Principal:
    return Principal.parse(name, default_realm=realm)


@admin_group.command("add-client")
@click.argument("name")
@click.option("--key-out", type=PATH, help="Write a random 256-bit key to this file (0600).")
@click.option("--password", "use_password", is_flag=True, help="Derive the key from a password (prompted, or stdin).")
@click.pass_context
def add_client(ctx: click.Context, name: str, key_out: Path | None, use_password: bool) -> None:
    """Add a client principal with a key file or a password."""
    if (key_out is None) == (not use_password):
        raise click.UsageError("give exactly one of --key-out FILE or --password")
    admin = admin_of(ctx)
    p = _principal(name, admin.realm)
    if key_out is not None:
        path = refuse_existing(key_out)
        keyset = admin.add_client(str(p)).keyset
        assert keyset is not None
        write_new(admin, p, path, keyset)
        click.echo(f"client {p} added; key version {keyset.current.kvno} written to {path} (0600)")
    else:
        admin.add_client(str(p), password=read_password(confirm=True))
        click.echo(f"client {p} added with a password-derived key (Argon2id)")


@admin_group.command("add-service")
@click.argument("name")
@click.option("--keytab", type=PATH, required=True, help="Write the service's keytab to this file (0600).")
@click.pass_context
def add_service(ctx: click.Context, name: str, keytab: Path) -> None:
    """Add a service principal with a random key, written to a keytab."""
    admin = admin_of(ctx)
    p = _principal(name, admin.realm)
    path = refuse_existing(keytab)
    keyset = admin.add_service(str(p)).keyset
    assert keyset is not None
    write_new(admin, p, path, keyset)
    click.echo(f"service {p} added; keytab with key version {keyset.current.kvno} written to {path} (0600)")


@admin_group.command("list")
@click.option("--prefix", default="", help="Only names starting with this.")
@click.option("--kind", type=click.Choice(["client", "service", "tgs"]), help="Only principals of this kind.")
@click.option("--status", type=click.Choice(["enabled", "disabled"]), help="Only enabled or disabled principals.")
@click.pass_context
def list_principals(ctx: click.Context, prefix: str, kind: str | None, status: str | None) -> None:
    """List principals: name, kind, status, key versions."""
    admin = admin_of(ctx)
    rows: list[tuple[str, str, str, str]] = []
    cursor: str | None = None
    while True:
        page = admin.list_principals(prefix=prefix, cursor=cursor, limit=500, kind=kind, status=status)
        rows += [(r.name, r.kind, r.status, ",".join(map(str, r.kvnos))) for r in page.principals]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    header = ("NAME", "KIND", "STATUS", "KVNOS")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _active_kvno(r: PrincipalSummary, now: float) -> int:
    active = [k.kvno for k in r.keys if k.activate_at <= now]
    return active[-1] if active else r.keys[0].kvno


@admin_group.command("show")
@click.argument("name")
@click.pass_context
def show(ctx: click.Context, name: str) -> None:
    """Show a principal (never its keys)."""
    r = admin_of(ctx).show(name)
    if r.password_kdf is not None:
        kdf = r.password_kdf
        source = (f"password (argon2id, {kdf['iterations']} iterations, {kdf['memory_kib']} KiB, "
                  f"{kdf['lanes']} lanes)")
    else:
        source = "random key"
    rows = [("principal", r.name), ("kind", r.kind), ("status", r.status),
            ("key versions", ", ".join(map(str, r.kvnos))), ("current kvno", str(_active_kvno(r, time.time())))]
    rows += [("pending kvno", f"{k.kvno} (from {_when(k.activate_at)})") for k in r.keys
             if k.activate_at > time.time()]
    rows += [("key source", source), ("created", _when(r.created)), ("updated", _when(r.updated))]
    for label, value in rows:
        click.echo(f"{label + ':':14}{value}")


@admin_group.command("disable")
@click.argument("name")
@click.pass_context
def disable(ctx: click.Context, name: str) -> None:
    """Disable a principal: no new tickets for it or, for a service, to it."""
    click.echo(f"{admin_of(ctx).disable(name).name} disabled")


@admin_group.command("enable")
@click.argument("name")
@click.pass_context
def enable(ctx: click.Context, name: str) -> None:
    """Enable a disabled principal."""
    click.echo(f"{admin_of(ctx).enable(name).name} enabled")


def _kept(target: Path, issued: Issued) -> Keyset:
    """The keytab to write: the versions returned, plus kept older ones already in ``target``.

    Without ``extract-keys`` a rotation returns only the new version; the
    service's own copies of the older ones stay in its keytab, as MIT's
    ``ktadd`` appends to one.
    """
    assert issued.keyset is not None
    keys = {k.kvno: k for k in issued.keyset}
    path = target.expanduser()
    if path.exists() and set(keys) != set(issued.principal.kvnos):
        try:
            principal, old = read_keytab(path)
        except TallyError:
            return issued.keyset
        if principal == issued.principal.principal:
            keys = {**{k.kvno: k for k in old if k.kvno in issued.principal.kvnos}, **keys}
    return Keyset(keys.values())


@admin_group.command("rotate")
@click.argument("name")
@click.option("--keytab", type=PATH, help="Service: write the keytab (all kept versions), replacing the file.")
@click.option("--key-out", type=PATH, help="Client: write the new key file, replacing the file.")
@click.option("--password", "use_password", is_flag=True, help="Client: a new password (prompted, or stdin).")
@click.option("--delay", type=click.IntRange(0), help="Service or krbtgt: the KDC issues under the new version only "
              "after SECONDS (pending until then; the keytab holds it at once) [default: "
              "TALLY_NEW_SERVICE_KEY_DELAY_S for services (the KDC's, with --remote), else 0].")
@click.pass_context
def rotate(ctx: click.Context, name: str, keytab: Path | None, key_out: Path | None, use_password: bool,
           delay: int | None) -> None:
    """Give a principal a new key version."""
    admin = admin_of(ctx)
    record = admin.show(name)
    p = record.principal
    if record.kind == "service" and (keytab is None or key_out or use_password):
        raise click.UsageError("a service is rotated with --keytab FILE")
    if record.kind == "client" and (keytab or (key_out is None) == (not use_password)):
        raise click.UsageError("a client is rotated with exactly one of --key-out FILE or --password")
    if record.kind == "tgs" and (keytab or key_out or use_password):
        raise click.UsageError("the ticket-granting key never leaves the KDC: rotate it without options")
    target = keytab or key_out
    if target is not None:
        parent = target.expanduser().parent
        if parent.exists() and not os.access(parent, os.W_OK):
            raise ConfigurationError(f"cannot write {target}: {parent} is not writable")
    if delay is None and not obj_of(ctx).get("remote"):
        delay = Settings.load().new_service_key_delay_s if record.kind == "service" else 0
    issued = admin.rotate(str(p), password=read_password(confirm=True) if use_password else None, delay_s=delay)
    newest = issued.principal.keys[-1]
    if newest.activate_at > time.time():
        click.echo(f"key version {newest.kvno} is pending: the KDC issues under it from "
                   f"{_when(newest.activate_at)}; load the keytab on every replica before then (SIGHUP)")
    if target is not None:
        if issued.keyset is None:
            raise PermissionDenied(f"{p} was rotated to key version {newest.kvno}, but its keys never leave the KDC")
        keyset = _kept(target, issued)
        replace_keytab(target, p, keyset)
        click.echo(f"{p} rotated to key version {newest.kvno}; {target} holds versions "
                   f"{', '.join(map(str, keyset.versions))} (0600)")
    else:
        click.echo(f"{p} rotated to key version {newest.kvno}")


@admin_group.command("export-keytab")
@click.argument("name")
@click.option("--keytab", type=PATH, required=True, help="Write the service's keytab to this new file (0600).")
@click.pass_context
def export_keytab(ctx: click.Context, name: str, keytab: Path) -> None:
    """Write a service's keytab (every kept key version) to a new file."""
    path = refuse_existing(keytab)
    principal, keyset = admin_of(ctx).export_keytab(name)
    write_keytab(path, principal, keyset)
    click.echo(f"keytab for {principal} (versions {', '.join(map(str, keyset.versions))}) written to {path} (0600)")


@admin_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def delete(ctx: click.Context, name: str, yes: bool) -> None:
    """Delete a principal and all its keys."""
    admin = admin_of(ctx)
    p = admin.show(name).principal
    if not yes:
        click.confirm(f"Delete {p} and all its keys?", abort=True)
    admin.delete(str(p))
    click.echo(f"{p} deleted")
