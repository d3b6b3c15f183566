"""Running wrk (Debian's ``wrk``) with ``wrk_items.lua``: each pre-built request used once."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .procs import run_measured

SCRIPT = Path(__file__).with_name("wrk_items.lua")


@dataclass(frozen=True)
class LoadResult:
    """One closed-loop run: completed 200s per second, latency, refusals, and the generator's CPU seconds."""

    ok: int
    bad: int
    seconds: float
    p50_ms: float
    p99_ms: float
    generator_cpu_s: float
    reused: int = 0
    errors: int = 0
    concurrency: int = 0

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def valid(self) -> bool:
        """No refusals, no reused (replayed) items, no socket errors."""
        return self.bad == 0 and self.reused == 0 and self.errors == 0


def require_wrk() -> str:
    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    return exe


def write_items(path: Path, items: Sequence[str]) -> Path:
    path.write_text("".join(item + "\n" for item in items))
    return path


def run_wrk(url: str, path: str, *, mode: str, items: Path | None, connections: int, seconds: float,
            threads: int = 1, cpus: set[int] | None = None) -> LoadResult:
    """``mode``: "post" (JSON bodies), "auth" (Authorization headers) or "plain" (no item file)."""
    exe = require_wrk()
    args = [exe, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(SCRIPT), url,
            "--", str(items) if items is not None else "-", mode, path, str(threads)]
    out, cpu_s = run_measured(args, timeout=seconds + 120, cpus=cpus)
    line = next((ln for ln in out.splitlines() if ln.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out[-2000:]}")
    doc = json.loads(line)
    return LoadResult(ok=doc["ok"], bad=doc["bad"], seconds=doc["seconds"], p50_ms=doc["p50_ms"],
                      p99_ms=doc["p99_ms"], generator_cpu_s=cpu_s, reused=doc["reused"],
                      errors=doc["connect_errors"] + doc["read_errors"] + doc["timeouts"], concurrency=connections)
