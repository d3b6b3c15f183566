"""The ``tally`` executable: Ctrl-C at any moment ends it without a traceback.

Importing every command takes a noticeable fraction of a second, and an
interrupt then would print an import traceback.  Until click takes over (it
turns Ctrl-C into "Aborted!" and exit 1), SIGINT exits at once with status
130, as shells expect of an interrupted command.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import NoReturn


def _interrupted(signum: int, frame: FrameType | None) -> NoReturn:
    sys.exit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGINT, _interrupted)
    from .main import cli

    signal.signal(signal.SIGINT, signal.default_int_handler)  # from here click reports Ctrl-C itself
    cli(prog_name="tally")
