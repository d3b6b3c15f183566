"""The bench's own arithmetic: what decides "met", which side saturated, and where a profile's time went.

The bench is not run by the suite (its figures are never asserted); these
pure parts of it are, so a slip cannot turn a missed target into a met one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from bench.profile_bench import per_request, summarise
from bench.report import Report, cpu_note
from bench.wrk_load import LoadResult


@pytest.mark.parametrize(("numerator", "denominator", "op", "target", "met"), [
    (2.0, 1.0, ">=", 2.0, True), (1.99, 1.0, ">=", 2.0, False),
    (3.0, 1.0, "<=", 3.0, True), (3.01, 1.0, "<=", 3.0, False),
])
def test_a_ratio_is_met_only_on_its_side_of_the_target(numerator: float, denominator: float, op: str, target: float,
                                                      met: bool) -> None:
    assert Report().ratio("r", numerator, denominator, op, target).met is met


def test_a_ratio_over_nothing_is_never_met() -> None:
    assert Report().ratio("r", 5.0, 0.0, ">=", 1.0).met is False  # NaN compares false


def test_the_rendered_report_says_not_met() -> None:
    report = Report()
    report.ratio("1. verify / MIT", 0.44, 1.0, ">=", 2.0)
    assert "NOT met" in report.render()


def test_a_run_is_cpu_bound_when_the_machine_was_busy_and_the_generator_share_is_of_our_processes() -> None:
    note = cpu_note({"kdc": 1.5, "redis": 0.2, "generator": 0.1, "machine": 1.85, "other": 0.05})
    assert "CPU-bound, machine busy 1.85" in note and "not CPU-bound" not in note
    assert "generator 6% of ours" in note  # 0.1 of 1.8: "other" tenants are not ours
    assert "not CPU-bound (waits)" in cpu_note({"kdc": 1.0, "machine": 1.2})


def test_a_load_run_with_any_refusal_reuse_or_socket_error_is_invalid() -> None:
    clean = LoadResult(ok=100, bad=0, seconds=2.0, p50_ms=1.0, p99_ms=2.0, generator_cpu_s=0.1)
    assert clean.valid and clean.rate == 50.0
    for spoiled in (replace(clean, bad=1), replace(clean, reused=1), replace(clean, errors=1)):
        assert not spoiled.valid


def test_redis_commands_per_request_leave_out_the_bench_s_own_info() -> None:
    before = Counter({"get": 10, "info": 3})
    after = Counter({"get": 30, "evalsha": 10, "info": 9})
    assert per_request(before, after, 10) == "Redis commands per request: 3.0 = get 2, evalsha 1"


def test_a_profile_counts_own_and_inclusive_time_and_not_the_frames_wrapping_every_request(tmp_path: Path) -> None:
    folded = tmp_path / "profile.txt"
    gunicorn = "handle (/x/site-packages/gunicorn/workers/gthread.py)"
    flask_call = "Flask.__call__ (/x/site-packages/flask/app.py)"
    front = "ExchangeFront.__call__ (/work/main/kdc/exchange_front.py)"
    folded.write_text(
        f"{gunicorn};{flask_call};{front};answer_tgs (/work/main/kdc/exchange_handlers.py) 3\n"
        f"{gunicorn};{flask_call};dispatch_request (/x/site-packages/flask/app.py) 1\n")
    lines = summarise([folded])
    assert lines[0].startswith("4 samples;")
    assert "flask+werkzeug 25%" in lines[0]  # the dispatched sample only: Flask.__call__ wraps every request
    assert "   75.0%  answer_tgs (kdc/exchange_handlers.py)" in lines
