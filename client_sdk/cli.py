"""Client commands: ``tally login``, ``tickets``, ``get``, ``logout``, and onboarding: ``enroll``, ``pair``.

Rules this file keeps:

* settings come from ``Settings.load`` (file and environment) once per command; the long-term
  key or password is used for the AS exchange and never written anywhere;
  only the credential cache (0600) is, and the key file that ``enroll`` or
  ``pair`` receives (0600, checked to be writable before the KDC rotates the key);
* a password is read with a hidden prompt on a terminal, else one line
  from stdin (scripts), never from the command line;
* every failure is one line and a non-zero exit; a service (or, when
  pairing, a KDC) that fails to prove itself is reported loudly and its
  response is not used.

``client_commands`` is what ``tally_cli.main`` adds at the top level.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import requests

from tally_protocol.codes import TicketFlags
from tally_protocol.errors import ConfigurationError, InvalidPrincipal, MutualAuthFailed
from tally_protocol.principal import Principal
from tally_runtime.cli_errors import CommandFailed, CommandUnavailable, TallyCommand
from tally_runtime.cli_input import read_password
from tally_runtime.request_ids import REQUEST_ID_HEADER
from tally_runtime.settings import Settings

from . import onboarding
from .ccache import CredentialCache
from .client import Client, origin_of
from .flow import Credential
from .onboarding import check_key_file_target, default_key_file, write_key_file

_FLAG_NAMES = {
    TicketFlags.INITIAL: "initial",
    TicketFlags.PRE_AUTHENTICATED: "pre-authenticated",
    TicketFlags.RENEWABLE: "renewable",
    TicketFlags.FORWARD_SECRET: "forward-secret",
}




def _utc(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else "-"


def _flags(flags: TicketFlags) -> str:
    return ",".join(name for flag, name in _FLAG_NAMES.items() if flags & flag) or "-"


def _principal_text(text: str, realm: str | None, *, has_key_file: bool) -> str:
    """``name@REALM``; a bare name takes TALLY_REALM (or, with a key file, the key file's realm)."""
    if "@" in text or (has_key_file and realm is None):
        return text
    if realm is None:
        raise InvalidPrincipal(f"principal {text!r} has no realm: write {text}@REALM or set TALLY_REALM")
    return str(Principal.parse(text, default_realm=realm))


@click.command("login", cls=TallyCommand)
@click.argument("principal")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Key file (keytab) holding the principal's key.")
@click.option("--password", "use_password", is_flag=True,
              help="Use a password (the default): prompted for, or one line from stdin when not a terminal.")
@click.option("--kdc", "kdc_url", metavar="URL", help="KDC base URL (default: TALLY_KDC_URL).")
def login(principal: str, key_file: Path | None, use_password: bool, kdc_url: str | None) -> None:
    """Get a ticket-granting ticket for PRINCIPAL and keep it in the credential cache."""
    if key_file is not None and use_password:
        raise click.UsageError("use --key-file or --password, not both")
    settings = Settings.load()
    kdc_url = kdc_url or settings.kdc_url
    if not kdc_url:
        raise ConfigurationError("no KDC URL: pass --kdc or set TALLY_KDC_URL")
    name = _principal_text(principal, settings.realm, has_key_file=key_file is not None)
    password = None if key_file is not None else read_password(f"Password for {name}")
    client = Client(kdc_url, name, key_file=key_file, password=password, ccache=CredentialCache(settings.ccache))
    tgt = client.login()
    renew = f", renewable until {_utc(tgt.renew_till)}" if tgt.flags & TicketFlags.RENEWABLE else ""
    click.echo(f"Logged in as {tgt.client}: ticket valid until {_utc(tgt.endtime)}{renew}")
    click.echo(f"Credentials cached in {settings.ccache}")


def _ticket_row(cred: Credential, now: float) -> list[str]:
    expired = " (expired)" if now >= cred.endtime else ""
    return [str(cred.service), _utc(cred.starttime), _utc(cred.endtime) + expired, _utc(cred.renew_till),
            _flags(cred.flags)]


@click.command("tickets", cls=TallyCommand)
def tickets() -> None:
    """List the cached credentials: service, start, expiry, renew-until (UTC) and flags."""
    cache = CredentialCache(Settings.load().ccache)
    entries = cache.entries()
    if not entries:
        click.echo(f"No credentials cached in {cache.path} (run `tally login`).")
        return
    click.echo(f"Credential cache: {cache.path}")
    click.echo(f"Principal: {cache.client}")
    click.echo(f"KDC: {cache.kdc_url or '-'}")
    now = time.time()
    rows = [["Service", "Start", "Expires", "Renew until", "Flags"]]
    rows += [_ticket_row(cred, now) for cred in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _headers(values: tuple[str, ...]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, sep, content = value.partition(":")
        if not sep or not name.strip():
            raise click.BadParameter(f"{value!r} is not NAME:VALUE", param_hint="--header")
        headers[name.strip()] = content.strip()
    return headers


@click.command("get", cls=TallyCommand)
@click.argument("url")
@click.option("--service", "-s", required=True, help="Service principal, e.g. api@EXAMPLE.TEST (bare: your realm).")
@click.option("--header", "-H", "header_values", multiple=True, metavar="NAME:VALUE", help="Extra request header.")
@click.option("--data", "-d", help="Request body (the method becomes POST unless -X says otherwise).")
@click.option("--method", "-X", help="HTTP method (default GET, or POST with --data).")
@click.option("--verbose", "-v", is_flag=True, help="Print the response status and request id to stderr.")
def get(url: str, service: str, header_values: tuple[str, ...], data: str | None, method: str | None,
        verbose: bool) -> None:
    """Send an authenticated request to URL with the cached credentials; print the response body."""
    settings = Settings.load()
    headers = _headers(header_values)
    method = (method or ("POST" if data is not None else "GET")).upper()
    client = Client(settings.kdc_url, ccache=CredentialCache(settings.ccache))
    try:
        response = client.request(method, url, service=service, headers=headers,
                                  data=data.encode("utf-8") if data is not None else None)
    except MutualAuthFailed as err:
        raise CommandFailed(
            f"SECURITY WARNING: {origin_of(url)} did not prove it is {service}; its response was discarded: "
            f"{err.message} (MUTUAL_AUTH_FAILED)"
        ) from err
    except requests.RequestException as err:
        raise CommandUnavailable(f"cannot reach {origin_of(url)}: {type(err).__name__}") from err
    if verbose:
        click.echo(f"HTTP {response.status_code} {response.reason or ''}".rstrip(), err=True)
        click.echo(f"request id {response.request.headers.get(REQUEST_ID_HEADER)}", err=True)
    sys.stdout.flush()
    sys.stdout.buffer.write(response.content)
    sys.stdout.buffer.flush()
    if response.status_code >= 400:
        answered = f"the service answered HTTP {response.status_code} {response.reason or ''}".rstrip()
        raise CommandFailed(f"{answered} (request id {response.request.headers.get(REQUEST_ID_HEADER)})")


@click.command("logout", cls=TallyCommand)
def logout() -> None:
    """Destroy the credential cache."""
    cache = CredentialCache(Settings.load().ccache)
    if not cache.path.exists():
        click.echo(f"No credential cache at {cache.path}; nothing to remove.")
        return
    try:
        owner = str(cache.client or "nobody")
    except ConfigurationError:
        owner = "an unreadable cache"
    removed = cache.destroy()
    click.echo(f"Removed {cache.path} ({len(removed)} credential(s) of {owner})")
    for cred in removed:
        click.echo(f"  {cred.service}")


def _kdc_url(option: str | None, settings: Settings) -> str:
    url = option or settings.kdc_url
    if not url:
        raise ConfigurationError("no KDC URL: pass --kdc or set TALLY_KDC_URL")
    return url


def _report_key_file(principal: Principal, kvno: int, path: Path) -> None:
    click.echo(f"{principal} now has key version {kvno}; written to {path} (0600)")
    click.echo(f"Log in with: tally login {principal} --key-file {path}")


@click.command("enroll", cls=TallyCommand)
@click.argument("token")
@click.option("--kdc", "kdc_url", metavar="URL", help="KDC base URL (default: TALLY_KDC_URL).")
@click.option("--key-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the key file (default: NAME.key here, NAME from the token's principal).")
@click.option("--force", is_flag=True, help="Replace an existing --key-out file.")
def enroll(token: str, kdc_url: str | None, key_out: Path | None, force: bool) -> None:
    """Redeem a one-time enrollment TOKEN from your administrator and write this device's key file."""
    settings = Settings.load()
    url = _kdc_url(kdc_url, settings)
    if key_out is not None:
        key_out = check_key_file_target(key_out, replace=force)  # checked before the token is spent
    principal, keyset = onboarding.enroll(url, token)
    path = key_out
    if path is None:  # the name is known only now; never overwrite somebody's file by default
        path = default_key_file(principal)
        if path.exists():
            path = path.with_name(f"{path.stem}.{keyset.current.kvno}{path.suffix}")
    _report_key_file(principal, keyset.current.kvno, write_key_file(path, principal, keyset, replace=force))


@click.command("pair", cls=TallyCommand)
@click.argument("principal")
@click.option("--code", prompt="Pairing code", help="The 8-digit code your administrator shows you (prompted if "
              "omitted).")
@click.option("--kdc", "kdc_url", metavar="URL", help="KDC base URL (default: TALLY_KDC_URL).")
@click.option("--key-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the key file (default: NAME.key here).")
@click.option("--force", is_flag=True, help="Replace an existing key file.")
def pair(principal: str, code: str, kdc_url: str | None, key_out: Path | None, force: bool) -> None:
    """Pair PRINCIPAL with the KDC using a short code (SPAKE2) and write this device's key file."""
    settings = Settings.load()
    url = _kdc_url(kdc_url, settings)
    name = Principal.parse(_principal_text(principal, settings.realm, has_key_file=False))
    path = check_key_file_target(key_out or default_key_file(name), replace=force)
    try:
        delivered, keyset = onboarding.pair(url, name, code)
    except MutualAuthFailed as err:
        raise CommandFailed(f"SECURITY WARNING: {url} did not prove it knows the pairing code; nothing was "
                            f"written: {err.message} (MUTUAL_AUTH_FAILED)") from err
    _report_key_file(delivered, keyset.current.kvno, write_key_file(path, delivered, keyset, replace=force))


client_commands: list[click.Command] = [login, tickets, get, logout, enroll, pair]
