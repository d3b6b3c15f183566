"""``tally admin enroll`` and ``tally admin pair``: let a device fetch its own key.

Both run through the admin operations (permission ``rotate``, audited; locally
as kadmin.local or with ``--remote``) and print a one-time secret exactly once (the enrollment token, or the
pairing code) with the command the device runs; the store keeps neither in
clear.  ``--create`` adds the client first with a random key that is never
written anywhere: the device's key is the one onboarding gives it.
"""

from __future__ import annotations

import time

import click

from tally_protocol.errors import TallyError
from tally_protocol.principal import Principal
from tally_runtime.settings import Settings

from ..admin.interface import AdminInterface
from ..enrollment import DEFAULT_TTL_S, MAX_TTL_S
from ..pairing import DEFAULT_ATTEMPTS, MAX_ATTEMPTS
from ..pairing import DEFAULT_TTL_S as PAIR_TTL_S
from ..pairing import MAX_TTL_S as PAIR_MAX_TTL_S
from .context import admin_group, admin_of


def _kdc_url(option: str | None, settings: Settings) -> str:
    return option or settings.public_url or settings.kdc_url or "<KDC URL>"


def _when(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _key_file(principal: str) -> str:
    return f"{Principal.parse(principal).name.replace('/', '_')}.key"


def _target(admin: AdminInterface, name: str, create: bool) -> str:
    """The principal's full name; with ``create``, add it first (its random key is dropped: nobody holds it)."""
    summary = admin.add_client(name).principal if create else admin.show(name)
    return summary.name


def _undo_create(admin: AdminInterface, name: str, create: bool) -> None:
    if create:
        admin.delete(name)  # nobody can use a client whose onboarding could not be set up


@admin_group.command("enroll")
@click.argument("name")
@click.option("--ttl", type=click.IntRange(1, MAX_TTL_S), default=DEFAULT_TTL_S, show_default=True,
              help="Seconds the token stays valid.")
@click.option("--create", is_flag=True, help="Add NAME as a new client first (its key comes from enrolling).")
@click.option("--kdc", "kdc_url", metavar="URL", help="KDC URL for the device command (default: TALLY_PUBLIC_URL "
              "or TALLY_KDC_URL).")
@click.pass_context
def enroll(ctx: click.Context, name: str, ttl: int, create: bool, kdc_url: str | None) -> None:
    """Create a one-time enrollment token for client NAME; printed once, never stored in clear.

    Redeeming it gives the device a new key for NAME (older key files stop working).
    """
    settings = Settings.load()
    admin = admin_of(ctx)
    p = _target(admin, name, create)
    try:
        token = admin.create_enrollment(p, ttl_s=ttl)
    except TallyError:
        _undo_create(admin, p, create)
        raise
    expires = _when(int(time.time()) + ttl)
    click.echo(f"{'client ' + str(p) + ' added; ' if create else ''}enrollment token for {p} "
               f"(single use, valid until {expires}, shown only now):")
    click.echo(f"  {token}")
    click.echo("On the device run:")
    click.echo(f"  tally enroll {token} --kdc {_kdc_url(kdc_url, settings)} --key-out {_key_file(p)}")


@admin_group.command("pair")
@click.argument("name")
@click.option("--ttl", type=click.IntRange(1, PAIR_MAX_TTL_S), default=PAIR_TTL_S, show_default=True,
              help="Seconds the pairing stays open.")
@click.option("--attempts", type=click.IntRange(1, MAX_ATTEMPTS), default=DEFAULT_ATTEMPTS, show_default=True,
              help="Tries before the pairing closes.")
@click.option("--create", is_flag=True, help="Add NAME as a new client first (its key comes from pairing).")
@click.option("--kdc", "kdc_url", metavar="URL", help="KDC URL for the device command (default: TALLY_PUBLIC_URL "
              "or TALLY_KDC_URL).")
@click.pass_context
def pair(ctx: click.Context, name: str, ttl: int, attempts: int, create: bool, kdc_url: str | None) -> None:
    """Open a PIN pairing for client NAME and show its 8-digit code (once); a new pairing replaces an open one."""
    settings = Settings.load()
    admin = admin_of(ctx)
    p = _target(admin, name, create)
    try:
        code = admin.open_pairing(p, ttl_s=ttl, attempts=attempts)
    except TallyError:
        _undo_create(admin, p, create)
        raise
    click.echo(f"{'client ' + str(p) + ' added; ' if create else ''}pairing code for {p} "
               f"({attempts} attempts, open until {_when(code.expires_at)}, shown only now):")
    click.echo(f"  {code.display}")
    click.echo("On the device run:")
    click.echo(f"  tally pair {p} --code '{code.display}' --kdc {_kdc_url(kdc_url, settings)} "
               f"--key-out {_key_file(p)}")
