"""`tally demo` runs on a fresh machine's defaults (embedded store) and exits 0."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_tally_demo_shows_replay_and_tampering_refused_and_exits_zero() -> None:
    result = subprocess.run([sys.executable, "-m", "tally_cli", "demo"], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    for expected in ("REPLAY_DETECTED", "BINDING_MISMATCH", "Authentication-Info verified", "All steps behaved"):
        assert expected in result.stdout
