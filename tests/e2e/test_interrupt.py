"""Ctrl-C (SIGINT to the process group, as a terminal sends it) ends `tally` commands without a traceback."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def interrupt(args: list[str], *, when_output: str, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> tuple[int, str]:
    """Run ``tally args``, send SIGINT to its group once stdout shows ``when_output``; (exit status, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "tally_cli", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, env=env, cwd=cwd)
    assert proc.stdout is not None
    seen = ""
    while when_output not in seen:
        line = proc.stdout.readline()
        assert line, f"exited before {when_output!r}: {seen}"
        seen += line
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def test_ctrl_c_during_the_demo_aborts_without_a_traceback(tmp_path: Path) -> None:
    status, err = interrupt(["demo"], when_output="[1]", env={**os.environ, "TMPDIR": str(tmp_path)})
    assert status == 1 and "Aborted!" in err and "Traceback" not in err


def test_ctrl_c_at_a_password_prompt_aborts_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "TALLY_CONFIG": "", "TALLY_CCACHE": str(tmp_path / "cc.json"), "HOME": str(tmp_path)}
    leader, terminal = pty.openpty()  # a real terminal, so the hidden prompt is shown and waited at
    proc = subprocess.Popen([sys.executable, "-m", "tally_cli", "login", "alice@EXAMPLE.TEST", "--password",
                             "--kdc", "http://127.0.0.1:9"], stdin=terminal, stdout=terminal, stderr=terminal,
                            start_new_session=True, env=env)
    os.close(terminal)
    shown = b""
    while b"Password" not in shown:
        assert select.select([leader], [], [], 30)[0], f"no password prompt: {shown!r}"
        shown += os.read(leader, 1024)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(30) == 1
    while True:
        try:
            chunk = os.read(leader, 1024)
        except OSError:  # EIO: the terminal's last writer is gone
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert b"Aborted!" in shown and b"Traceback" not in shown


def test_ctrl_c_while_the_commands_are_imported_exits_130_without_a_traceback() -> None:
    # The interrupt is raised from inside the import of the commands, the slow part of starting `tally`.
    code = ("import builtins, os, signal\n"
            "real = builtins.__import__\n"
            "def hooked(name, globals=None, locals=None, fromlist=(), level=0):\n"
            "    if name == 'main' and level == 1:\n"
            "        os.kill(os.getpid(), signal.SIGINT)\n"
            "    return real(name, globals, locals, fromlist, level)\n"
            "builtins.__import__ = hooked\n"
            "from tally_cli.entry import main\n"
            "main()\n")
    result = subprocess.run([sys.executable, "-c", code, "demo"], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 130 and "Traceback" not in result.stderr and result.stdout == ""
