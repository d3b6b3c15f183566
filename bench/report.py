"""The benchmark's results: rows per section, targets as ratios (reported, never asserted), text and JSON."""

from __future__ import annotations

import json
import operator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    section: str
    name: str
    value: float
    unit: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Ratio:
    name: str
    value: float
    target: str
    met: bool


_OPS = {">=": operator.ge, "<=": operator.le}


def cpu_note(cores: dict[str, float]) -> str:
    """Who used the machine during a run, in cores, and so what bounded it.

    ``cores: kdc 1.02 + redis 0.10 + generator 0.03; other 0.80 -> CPU-bound (machine busy 1.95)``: the
    machine's two cores were all busy, and the generator took 3% of what the run used.
    """
    parts = " + ".join(f"{k} {v:.2f}" for k, v in cores.items() if k not in ("machine", "other"))
    busy = cores.get("machine", 0.0)
    ours = sum(v for k, v in cores.items() if k not in ("machine", "other"))
    share = cores.get("generator", 0.0) / ours if ours else 0.0
    bound = "CPU-bound" if busy >= 1.8 else "not CPU-bound (waits)"
    return (f"cores: {parts}; other {cores.get('other', 0.0):.2f} -> {bound}, machine busy {busy:.2f}, "
            f"generator {share:.0%} of ours")


@dataclass
class Report:
    machine: dict[str, str] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    profiles: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def ratio(self, name: str, numerator: float, denominator: float, op: str, target: float) -> Ratio:
        value = numerator / denominator if denominator else float("nan")
        ratio = Ratio(name, value, f"{op} {target:g}", _OPS[op](value, target))
        self.ratios.append(ratio)
        return ratio

    def render(self) -> str:
        lines = ["machine: " + "; ".join(f"{k} {v}" for k, v in self.machine.items()), ""]
        section = None
        for row in self.rows:
            if row.section != section:
                section = row.section
                lines += ["", f"== {section}", f"{'':58} {'value':>12} {'unit':<9} {'p50 ms':>8} {'p99 ms':>8}"]
            p50 = f"{row.p50_ms:8.2f}" if row.p50_ms is not None else f"{'':8}"
            p99 = f"{row.p99_ms:8.2f}" if row.p99_ms is not None else f"{'':8}"
            lines.append(f"{row.name:58} {row.value:12,.1f} {row.unit:<9} {p50} {p99}  {row.note}")
        if self.ratios:
            lines += ["", "== targets (ratios from this run; reported, never asserted)"]
            for r in self.ratios:
                lines.append(f"{r.name:60} {r.value:8.2f}   target {r.target:<7} {'met' if r.met else 'NOT met'}")
        for name, top in self.profiles.items():
            lines += ["", f"== profile: {name}", *top]
        if self.notes:
            lines += ["", "== notes", *self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "rows": [asdict(r) for r in self.rows],
                "ratios": [asdict(r) for r in self.ratios], "profiles": self.profiles, "notes": self.notes}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
