"""``tally admin`` commands on administration itself: accounts, roles, policies, the audit log, status.

Like the principal commands they run through ``admin_of(ctx)`` (locally or
``--remote``).  ``create-admin`` bootstraps the first web UI account; roles
go to accounts (``alice``) or principals (``alice@REALM``, for the API and
``--remote``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click

from tally_protocol.errors import InvalidRequest
from tally_runtime.cli_input import read_password

from ..admin.admin_service import ensure_admin_service
from ..admin.audit_log import AuditQuery
from ..admin.policies import BOUNDS, PolicyOverride
from ..admin.results import PolicyView
from .context import admin_group, admin_of, db_of


def _when(epoch: int | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)) if epoch else "-"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _epoch(value: str | None, option: str) -> int | None:
    """Seconds since the epoch, or an ISO 8601 UTC time (2024-05-01T12:00:00Z)."""
    if value is None:
        return None
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{option} takes epoch seconds or an ISO 8601 time like 2024-05-01T12:00:00Z") from None
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


# -- accounts and roles ------------------------------------------------------------


@admin_group.command("create-admin")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True, help="Role to grant (repeatable), e.g. superadmin.")
@click.pass_context
def create_admin(ctx: click.Context, username: str, roles: tuple[str, ...]) -> None:
    """Create an admin account for the web UI (password prompted, or one line on stdin)."""
    admin = admin_of(ctx)
    account = admin.create_account(username, read_password(f"Password for {username}", confirm=True), roles)
    click.echo(f"admin account {account.username} created with role(s) {', '.join(sorted(account.roles))}")


@admin_group.command("grant")
@click.argument("subject")
@click.argument("role")
@click.pass_context
def grant(ctx: click.Context, subject: str, role: str) -> None:
    """Grant ROLE to an admin account or a principal (name@REALM)."""
    roles = admin_of(ctx).grant(subject, role)
    click.echo(f"{subject} now holds {', '.join(sorted(roles))}")


@admin_group.command("revoke-role")
@click.argument("subject")
@click.argument("role")
@click.pass_context
def revoke_role(ctx: click.Context, subject: str, role: str) -> None:
    """Take ROLE away from an admin account or a principal."""
    roles = admin_of(ctx).revoke(subject, role)
    click.echo(f"{subject} now holds {', '.join(sorted(roles)) or 'no role'}")


@admin_group.command("admins")
@click.pass_context
def admins(ctx: click.Context) -> None:
    """List admin accounts and the principals holding roles."""
    view = admin_of(ctx).admins()
    _table(("ACCOUNT", "ROLES", "STATUS", "CREATED", "LAST LOGIN"),
           [(a.username, ",".join(sorted(a.roles)) or "-", "disabled" if a.disabled else "enabled",
             _when(a.created), _when(a.last_login)) for a in view.accounts])
    click.echo()
    _table(("PRINCIPAL", "ROLES"), [(p, ",".join(sorted(r))) for p, r in view.principals.items()])


def _set_account(ctx: click.Context, username: str, disabled: bool) -> None:
    account = admin_of(ctx).set_account_disabled(username, disabled)
    click.echo(f"admin account {account.username} {'disabled' if account.disabled else 'enabled'}")


@admin_group.command("disable-admin")
@click.argument("username")
@click.pass_context
def disable_admin(ctx: click.Context, username: str) -> None:
    """Disable an admin account (it can no longer log in)."""
    _set_account(ctx, username, True)


@admin_group.command("enable-admin")
@click.argument("username")
@click.pass_context
def enable_admin(ctx: click.Context, username: str) -> None:
    """Enable a disabled admin account."""
    _set_account(ctx, username, False)


@admin_group.command("delete-admin")
@click.argument("username")
@click.pass_context
def delete_admin(ctx: click.Context, username: str) -> None:
    """Delete an admin account."""
    admin_of(ctx).delete_account(username)
    click.echo(f"admin account {username} deleted")


@admin_group.command("roles")
@click.pass_context
def roles(ctx: click.Context) -> None:
    """List built-in and custom roles with the permissions they grant."""
    _table(("ROLE", "KIND", "PERMISSIONS"),
           [(r.name, "built-in" if r.builtin else "custom", ",".join(sorted(r.effective)))
            for r in admin_of(ctx).roles()])


@admin_group.command("define-role")
@click.argument("name")
@click.argument("permissions", nargs=-1, required=True)
@click.pass_context
def define_role(ctx: click.Context, name: str, permissions: tuple[str, ...]) -> None:
    """Define (or replace) a custom role; '*' is every permission but extract-keys."""
    role = admin_of(ctx).define_role(name, permissions)
    click.echo(f"role {role.name} grants {', '.join(sorted(role.effective))}")


@admin_group.command("delete-role")
@click.argument("name")
@click.pass_context
def delete_role(ctx: click.Context, name: str) -> None:
    """Delete a custom role (whoever holds it loses its permissions)."""
    admin_of(ctx).delete_role(name)
    click.echo(f"role {name} deleted")


@admin_group.command("whoami")
@click.pass_context
def whoami(ctx: click.Context) -> None:
    """Who the admin commands act as, with which roles and permissions."""
    me: dict[str, Any] = admin_of(ctx).whoami()
    click.echo(f"{'name:':13}{me.get('name')}")
    click.echo(f"{'roles:':13}{', '.join(me.get('roles') or []) or '-'}")
    click.echo(f"{'permissions:':13}{', '.join(me.get('permissions') or []) or '-'}")


# -- policies --------------------------------------------------------------------------


def _print_policy(view: PolicyView) -> None:
    click.echo(f"policy of {view.principal or 'the realm (default)'}")
    override, effective = view.override.to_dict(), view.effective.to_dict()
    _table(("FIELD", "SET HERE", "EFFECTIVE"),
           [(name, "-" if override[name] is None else str(override[name]), str(effective[name])) for name in BOUNDS])


@admin_group.command("policy")
@click.argument("name", required=False)
@click.pass_context
def policy(ctx: click.Context, name: str | None) -> None:
    """Show a principal's policy, or the realm default without NAME."""
    _print_policy(admin_of(ctx).policy(name))


@admin_group.command("set-policy")
@click.argument("name", required=False)
@click.option("--tgt-lifetime", type=int, help="Ticket-granting ticket lifetime (seconds).")
@click.option("--renewable-lifetime", type=int, help="Renewable lifetime of a TGT (seconds; 0: not renewable).")
@click.option("--service-ticket-lifetime", type=int, help="Service ticket lifetime (seconds).")
@click.option("--lockout-threshold", type=int, help="Failed pre-authentications that lock the principal.")
@click.option("--lockout-window", type=int, help="Window the failures are counted in (seconds).")
@click.option("--lockout-duration", type=int, help="How long a lock lasts (seconds).")
@click.pass_context
def set_policy(ctx: click.Context, name: str | None, tgt_lifetime: int | None, renewable_lifetime: int | None,
               service_ticket_lifetime: int | None, lockout_threshold: int | None, lockout_window: int | None,
               lockout_duration: int | None) -> None:
    """Replace a principal's policy (the realm default without NAME); fields not given are inherited."""
    override = PolicyOverride(tgt_lifetime, renewable_lifetime, service_ticket_lifetime, lockout_threshold,
                              lockout_window, lockout_duration)
    _print_policy(admin_of(ctx).set_policy(name, override))


@admin_group.command("policies")
@click.pass_context
def policies(ctx: click.Context) -> None:
    """The configuration's values, the realm default and every principal's override."""
    view = admin_of(ctx).policies_overview()
    rows = [("(configuration)", *(str(view.config.value(f)) for f in BOUNDS))]
    levels = [("(realm default)", view.default), *view.overrides.items()]
    rows += [(who, *("-" if o.to_dict()[f] is None else str(o.to_dict()[f]) for f in BOUNDS)) for who, o in levels]
    _table(("WHO", *BOUNDS), rows)


# -- audit and status --------------------------------------------------------------


@admin_group.command("audit")
@click.option("--principal", help="Events whose actor, target, client or service is this.")
@click.option("--event", help="Event name prefix, e.g. admin. or as.refuse.")
@click.option("--outcome", help="success, refused or denied.")
@click.option("--since", help="From this time (epoch seconds or 2024-05-01T12:00:00Z).")
@click.option("--until", help="Before this time.")
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
@click.option("--cursor", help="Continue after a previous page (printed at its end).")
@click.pass_context
def audit(ctx: click.Context, principal: str | None, event: str | None, outcome: str | None, since: str | None,
          until: str | None, limit: int, cursor: str | None) -> None:
    """Show audit events, newest first."""
    query = AuditQuery(principal=principal, event=event, outcome=outcome, since=_epoch(since, "--since"),
                       until=_epoch(until, "--until"), cursor=cursor, limit=limit)
    page = admin_of(ctx).audit_events(query)
    for record in page.records:
        e = record.entry
        rest = " ".join(f"{k}={v}" for k, v in sorted(e.items()) if k not in ("audit", "event", "outcome", "time"))
        click.echo(f"{_when(e.get('time'))}  {e.get('event')}  {e.get('outcome')}  {rest}".rstrip())
    if page.next_cursor is not None:
        click.echo(f"(more: --cursor {page.next_cursor})")


@admin_group.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """Realm status: store health, key versions of the ticket-granting and master keys, last rotations."""
    s = admin_of(ctx).realm_status()
    store = "ok" if s.store.get("ok") else "unavailable"
    if s.store.get("embedded"):
        store += " (embedded, non-persistent)"
    elif s.store.get("version"):
        store += f" (redis {s.store['version']})"
    tgs = f"kvno {s.tgs.current_kvno} (versions {', '.join(map(str, s.tgs.kvnos))}), active since {_when(s.tgs.rotated)}"
    master = (f"kvno {s.master.current_kvno} (versions {', '.join(map(str, s.master.kvnos)) or '-'}), "
              f"since {_when(s.master.rotated)}")
    service = "kadmin/admin present" if s.admin_service else "missing (tally admin ensure-admin-service)"
    for label, value in (("realm", s.realm), ("store", store), ("created", _when(s.created)),
                         ("principals", str(s.principals)), ("tgs key", tgs), ("master key", master),
                         ("admin service", service), ("audit events", str(s.audit_events))):
        click.echo(f"{label + ':':15}{value}")


@admin_group.command("ensure-admin-service")
@click.pass_context
def ensure_admin_service_command(ctx: click.Context) -> None:
    """Create kadmin/admin in a realm made before it existed (the KDC also does this when it starts)."""
    db = db_of(ctx)
    created = ensure_admin_service(db)
    click.echo(f"kadmin/admin@{db.realm} {'created' if created else 'already present'}")
