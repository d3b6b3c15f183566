"""Click integration: every ``TallyError`` becomes one clear line and a non-zero exit.

Each package's click group uses ``cls=TallyGroup`` (a lone command
``cls=TallyCommand``); no command prints a traceback for a bad input, a
missing setting or an unreachable service.
"""

from __future__ import annotations

from typing import Any

import click

from tally_protocol.errors import TallyError

from .request_ids import is_well_formed

#: Exit codes: 1 for a refusal or bad input, 2 is click's usage error, 3 unreachable store, KDC or service.
EXIT_ERROR = 1
EXIT_UNAVAILABLE = 3


class CommandFailed(click.ClickException):
    """A refusal or bad input: ``Error: ...`` and exit 1."""

    exit_code = EXIT_ERROR


class CommandUnavailable(CommandFailed):
    """Something the command needs could not be reached: exit 3, so scripts can retry."""

    exit_code = EXIT_UNAVAILABLE


def command_error(err: TallyError) -> CommandFailed:
    """``message (CODE)``, plus the request id a server logged it under, for the user to quote."""
    cls = CommandUnavailable if err.status_hint in (502, 503) else CommandFailed
    request_id = err.data.get("request_id")
    quoted = f" [request id {request_id}]" if is_well_formed(request_id) else ""
    return cls(f"{err.message} ({err.code}){quoted}")


class TallyGroup(click.Group):
    """A click group whose commands report ``TallyError`` as ``Error: message (CODE)``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TallyError as err:
            raise command_error(err) from err


class TallyCommand(click.Command):
    """A command reporting ``TallyError`` as one line even outside a ``TallyGroup``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TallyError as err:
            raise command_error(err) from err
