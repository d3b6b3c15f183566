"""Reading a password on the command line: never from argv, where ``ps`` shows it.

On a terminal: a hidden prompt (with confirmation when setting one).  Otherwise
one line of stdin, so scripts and tests can pipe it in.
"""

from __future__ import annotations

import sys

import click

from tally_protocol.errors import InvalidRequest


def interactive() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def read_password(prompt: str = "Password", *, confirm: bool = False) -> str:
    if interactive():
        password = str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise InvalidRequest("empty password (type one at the prompt, or pipe one line on stdin)")
    return password
