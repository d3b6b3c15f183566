"""Click integration: every ``TallyError`` becomes one clear line and a non-zero exit.

Each package's click group uses ``cls=TallyGroup``; no command prints a
traceback for a bad input, a missing setting or an unreachable service.
"""

from __future__ import annotations

from typing import Any

import click

from tally_protocol.errors import TallyError

#: Exit codes: 1 for a refusal or bad input, 2 is click's usage error, 3 unreachable store or KDC.
EXIT_ERROR = 1
EXIT_UNAVAILABLE = 3


class TallyCommandError(click.ClickException):
    def __init__(self, err: TallyError) -> None:
        super().__init__(f"{err.message} ({err.code})")
        self.exit_code = EXIT_UNAVAILABLE if err.status_hint in (502, 503) else EXIT_ERROR


class TallyGroup(click.Group):
    """A click group whose commands report ``TallyError`` as ``Error: message (CODE)``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TallyError as err:
            raise TallyCommandError(err) from err
