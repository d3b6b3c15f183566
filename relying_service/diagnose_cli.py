"""``tally diagnose``: explain why a captured Authorization header is (or would be) refused.

The analysis is ``relying_service.diagnosis`` (pure); this module gathers
the inputs (header, keytab or credential cache, the request the service saw,
the clocks, a read-only replay-cache lookup) and prints the report.
Exit 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from client_sdk.ccache import CredentialCache
from tally_protocol.errors import InvalidRequest
from tally_protocol.verify import VerifyPolicy
from tally_runtime.cli_errors import CommandFailed, TallyCommand
from tally_runtime.keytab_file import read_keytab
from tally_runtime.redis_settings import RedisSettings
from tally_runtime.redis_store import connect
from tally_runtime.replay_cache import RedisReplayCache
from tally_runtime.settings import Settings

from .diagnosis import ClientView, Clocks, Diagnosis, ServiceView, Status, diagnose
from .request_rewrites import SeenRequest

_MARK = {Status.PASS: "ok  ", Status.FAIL: "FAIL", Status.SKIP: "--  "}


def _read_header(value: str | None) -> str:
    """The header from the argument, ``@file``, or stdin (``-`` or none); ``Authorization:`` prefix allowed."""
    if value is None or value == "-":
        text = sys.stdin.read()
    elif value.startswith("@"):
        try:
            text = Path(value[1:]).expanduser().read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            raise InvalidRequest(f"cannot read {value[1:]}: {e.strerror}") from e
    else:
        text = value
    text = text.strip()
    name, sep, rest = text.partition(":")
    if sep and name.strip().lower() == "authorization":
        text = rest.strip()
    return text


def replay_lookup(settings: RedisSettings) -> Callable[[bytes, int], bool]:
    """A read-only lookup (``SISMEMBER``) in the services' replay cache: a diagnosis never claims an authenticator."""
    if settings.embedded:
        raise InvalidRequest("--replay-cache needs TALLY_REDIS_URL (the services' shared replay cache)")
    return RedisReplayCache(connect(settings)).holds


def render(diagnosis: Diagnosis) -> str:
    lines = [f"tally diagnose ({diagnosis.view} view)"]
    for check in diagnosis.checks:
        lines.append(f"  {_MARK[check.status]} {check.name}: {check.summary}")
        if check.fix and check.status is Status.FAIL:
            lines.append(f"       fix: {check.fix}")
    if diagnosis.verdict is not None:
        lines.append(f"the service answers: {diagnosis.verdict}")
    lines.append("result: every check passes" if diagnosis.ok else
                 "result: refused (" + ", ".join(c.name for c in diagnosis.checks if c.status is Status.FAIL) + ")")
    return "\n".join(lines)


@click.command("diagnose", cls=TallyCommand)
@click.argument("header", required=False)
@click.option("--keytab", type=click.Path(dir_okay=False, path_type=Path),
              help="The service's keytab: diagnose as the service (opens the ticket).")
@click.option("--ccache", type=click.Path(dir_okay=False, path_type=Path),
              help="The client's credential cache [default: TALLY_CCACHE]: diagnose as the client "
                   "(used when no --keytab is given).")
@click.option("--method", help="The method the service saw.")
@click.option("--url", help="The URL the service saw (scheme://host[:port]/path?query).")
@click.option("--host", "seen_host", help="The Host header the service saw (with --scheme).")
@click.option("--path", "seen_path", help="The path and query the service saw, as on the request line.")
@click.option("--scheme", type=click.Choice(["http", "https"]), default="http", show_default=True,
              help="The scheme the service believed it was served on (for --host).")
@click.option("--body-file", type=click.Path(dir_okay=False, path_type=Path), help="The body the service read.")
@click.option("--body-sha256", help="SHA-256 (hex) of the body the service read.")
@click.option("--server-time", type=int,
              help="The service's clock (epoch seconds, e.g. server_time from a CLOCK_SKEW refusal).")
@click.option("--max-skew", type=click.IntRange(1, 3600), default=None,
              help="The service's skew window in seconds [default: TALLY_MAX_SKEW or 300].")
@click.option("--replay-cache", is_flag=True,
              help="Look the authenticator up in the replay cache at TALLY_REDIS_URL (read-only SISMEMBER).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def diagnose_command(header: str | None, keytab: Path | None, ccache: Path | None, method: str | None,
                     url: str | None, seen_host: str | None, seen_path: str | None, scheme: str,
                     body_file: Path | None, body_sha256: str | None, server_time: int | None,
                     max_skew: int | None, replay_cache: bool, as_json: bool) -> None:
    """Explain which check a captured Authorization header fails, and why.

    HEADER is the header value (`Tally <token>`, an `Authorization:` prefix
    is allowed), @FILE to read it from a file, or - (or nothing) for stdin.

    With --keytab the service's view: service name, key version, ticket
    times, clock skew, the request binding.  Otherwise the client's view from
    its credential cache: it holds the session key, so it reads the
    authenticator (the request it bound, its clock), not the ticket.

    Exit 0 when every check passes, 1 otherwise.  No key or session key is
    ever printed.
    """
    settings = Settings.load()
    if keytab is not None and ccache is not None:
        raise InvalidRequest("give either --keytab (the service's view) or --ccache (the client's), not both")
    text = _read_header(header)
    view: ServiceView | ClientView
    if keytab is not None:
        service, keyset = read_keytab(keytab.expanduser())
        view = ServiceView(service, keyset)
    else:
        view = ClientView(CredentialCache(ccache or settings.ccache).load().entries())
    body = None
    if body_file is not None:
        try:
            body = body_file.expanduser().read_bytes()
        except OSError as e:
            raise InvalidRequest(f"cannot read {body_file}: {e.strerror}") from e
    seen = SeenRequest.create(method=method, url=url, host=seen_host, path=seen_path, scheme=scheme,
                              body=body, body_sha256=body_sha256)
    policy = VerifyPolicy(max_skew_s=max_skew or settings.max_skew_s)
    lookup = replay_lookup(settings.redis) if replay_cache else None
    result = diagnose(text, view, clocks=Clocks(time.time(), server_time), seen=seen, policy=policy,
                      replay_seen=lookup)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    elif result.checks[0].status is Status.FAIL:
        raise CommandFailed(result.checks[0].summary)  # garbage in: one clear line
    else:
        click.echo(render(result))
    if not result.ok:
        raise SystemExit(1)
