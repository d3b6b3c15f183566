"""Keys over time and revocation: ``tally admin revoke``, ``revoke-ticket``, ``purge-keys`` and
``tally kdc rotate-master-key``.

Like the other ``admin`` commands these work on the store with the master
key file, as ``kadmin.local`` does.  Nothing secret is printed: ticket ids
are random handles (the KDC's audit events name them), not credentials.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from tally_protocol.errors import InvalidRequest
from tally_protocol.messages.ticket import TICKET_ID_SIZE
from tally_runtime.settings import Settings

from ..master_key import load_master_key_file
from ..master_key_rotation import finish_master_key_rotation, rotate_master_key
from ..revocation import RevocationList
from .context import PATH, admin_group, db_of, kdc_group, store_of


def _utc(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _revocations(ctx: click.Context) -> RevocationList:
    db = db_of(ctx)
    settings = Settings.load()
    return RevocationList(store_of(ctx, settings), db.realm, durability=settings.redis.durability)


@admin_group.command("revoke")
@click.argument("name")
@click.option("--before", type=click.IntRange(0), help="Revoke tickets from logins before this epoch time "
              "[default: now].")
@click.pass_context
def revoke(ctx: click.Context, name: str, before: int | None) -> None:
    """Refuse every ticket of NAME from a login before now, everywhere, within seconds.

    Relying services and the KDC consult the realm's revocation list; a new
    login still works (disable the principal to keep it out).
    """
    db = db_of(ctx)
    p = db.get(name).principal
    when = _revocations(ctx).revoke_principal(p, before)
    click.echo(f"tickets of {p} from logins before {_utc(when)} are revoked; services refuse them within "
               "about a second")


@admin_group.command("revoke-ticket")
@click.argument("ticket_id")
@click.option("--until", type=click.IntRange(1), help="The ticket's end (epoch; `endtime` in the issuance audit "
              "event) [default: now + the longest ticket life].")
@click.pass_context
def revoke_ticket(ctx: click.Context, ticket_id: str, until: int | None) -> None:
    """Refuse one ticket, named by the TICKET_ID (hex) of the KDC's issuance audit event."""
    try:
        raw = bytes.fromhex(ticket_id)
    except ValueError:
        raise InvalidRequest(f"a ticket id is {2 * TICKET_ID_SIZE} hex digits") from None
    revocations = _revocations(ctx)
    db = db_of(ctx)
    end = until if until is not None else int(time.time()) + db.key_policy.longest_ticket_s
    revocations.revoke_ticket(raw, end)
    click.echo(f"ticket {raw.hex()} is revoked until {_utc(end)}")


@admin_group.command("purge-keys")
@click.argument("name", required=False)
@click.pass_context
def purge_keys(ctx: click.Context, name: str | None) -> None:
    """Drop key versions no valid ticket can use any more (of NAME, or of every principal).

    A version is kept until the longest ticket life has passed since a newer
    one became active; rotations purge too, so this is only housekeeping.
    """
    db = db_of(ctx)
    dropped = db.purge_old_keys(name)
    target = str(db.principal(name)) if name else "the realm"
    click.echo(f"{dropped} expired key version{'s' if dropped != 1 else ''} purged from {target}")


@kdc_group.command("rotate-master-key")
@click.option("--realm", help="Realm (default: TALLY_REALM, or the only realm in the store).")
@click.option("--master-key-file", type=PATH, help="The master key file (default: TALLY_MASTER_KEY_FILE).")
@click.option("--prepare", is_flag=True, help="Only add the new version to the file (then copy it to every KDC "
              "host and run again without --prepare).")
@click.option("--finish", is_flag=True, help="Drop the old version from the file once no record uses it.")
@click.pass_context
def rotate_master_key_command(ctx: click.Context, realm: str | None, master_key_file: Path | None, prepare: bool,
                              finish: bool) -> None:
    """Rotate the master key with no downtime: add a version, re-wrap every key under it; then --finish.

    Safe to interrupt and run again: it continues a rotation in progress.
    Running KDCs read the file again when they meet the new version (or on
    SIGHUP); no restart.
    """
    if prepare and finish:
        raise click.UsageError("give at most one of --prepare and --finish")
    settings = Settings.load()
    path = (master_key_file or settings.master_key_file).expanduser()
    obj = ctx.ensure_object(dict)
    if realm:
        obj["realm"] = realm
    obj.setdefault("master_key", load_master_key_file(path))
    db = db_of(ctx)
    if finish:
        dropped = finish_master_key_rotation(db, path)
        if not dropped:
            click.echo(f"{path} holds a single master key version: no rotation to finish")
        else:
            click.echo(f"master key version{'s' if len(dropped) > 1 else ''} {', '.join(map(str, dropped))} "
                       f"removed from {path}; every key of realm {db.realm} is wrapped under the newest")
        return
    result = rotate_master_key(db, path, now=time.time(), prepare=prepare)
    if result.added:
        click.echo(f"master key version {result.kvno} added to {path} (0600)")
    else:
        click.echo(f"continuing the rotation to master key version {result.kvno} found in {path}")
    if prepare:
        click.echo("copy the file to every KDC host, then run this command again without --prepare")
        return
    click.echo(f"{result.rewrapped} of {result.records} principals re-wrapped under master key version "
               f"{result.kvno}; run `tally kdc rotate-master-key --finish` to drop the old version")
