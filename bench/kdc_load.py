"""Building and running ``kdc_load.c``, the libkrb5 load generator for MIT krb5kdc."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .mit_realm import CLIENT, SERVICE, MitRealm
from .procs import run_measured
from .wrk_load import LoadResult

SOURCE = Path(__file__).with_name("kdc_load.c")


def build(workdir: Path) -> Path:
    """Compile against the machine's libkrb5 (``krb5-config``, from libkrb5-dev) with gcc."""
    if shutil.which("gcc") is None or shutil.which("krb5-config") is None:
        raise RuntimeError("gcc and krb5-config are needed to build the MIT load generator "
                           "(apt-get install -y gcc libkrb5-dev)")
    flags = subprocess.run(["krb5-config", "--cflags", "--libs", "krb5"], capture_output=True, text=True,
                           check=True).stdout.split()
    exe = workdir / "kdc_load"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(exe), str(SOURCE), *flags, "-lpthread"], check=True,
                   capture_output=True, text=True)
    return exe


def run_kdc_load(exe: Path, realm: MitRealm, mode: str, *, threads: int, seconds: float) -> LoadResult:
    out, cpu_s = run_measured([str(exe), mode, str(threads), f"{seconds:g}", CLIENT, SERVICE], env=realm.env(),
                              timeout=seconds + 60)
    doc = json.loads(out.strip().splitlines()[-1])
    return LoadResult(ok=doc["ok"], bad=doc["errors"], seconds=doc["seconds"], p50_ms=doc["p50_ms"],
                      p99_ms=doc["p99_ms"], generator_cpu_s=cpu_s, concurrency=threads)
