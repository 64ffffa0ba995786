"""Benchmark: the whole validation gate on the real 2019 release (against 2017 as previous).

Prints the median of 7 runs after one warm-up (the GX import is not counted: the CLI and the flow
pay it once per process), then each check timed alone in its own one-expectation suite, so the
expensive ones stand out. Target: under 2 s on these 2-core machines.
"""

from __future__ import annotations

import statistics
import time

import pytest

from expectations.frame import codes_frame, previous_frame
from expectations.gate import gx_context, run_gate, validate_checks
from expectations.suite import GateSettings, all_checks

pytestmark = pytest.mark.bench

RUNS = 7


def _median(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_gate_on_real_2019(real_parsed) -> None:
    codes, previous = real_parsed["2019-Q1"].codes, real_parsed["2017-Q1"].codes
    result = run_gate(codes, previous=previous, release_id="2019-Q1")  # warm-up
    assert result.passed
    whole = _median(lambda: run_gate(codes, previous=previous, release_id="2019-Q1"), RUNS)
    frames = {"codes": codes_frame(codes, previous), "previous": previous_frame(codes, previous)}
    prepare = _median(lambda: codes_frame(codes, previous), RUNS)
    ctx = gx_context()
    alone = {}
    for check in all_checks(GateSettings(), previous.height):
        def one(check=check) -> None:  # a fresh suite name per run: GX names are unique
            validate_checks(ctx, f"{check.name}_{time.perf_counter_ns()}", [check],
                            frames[check.batch])

        alone[check.name] = _median(one, 3)
    print(f"\ngate, 2019 vs 2017 ({codes.height:,} codes, {len(result.outcomes)} expectations): "
          f"median {whole * 1000:.0f} ms of {RUNS} runs (Polars frame preparation "
          f"{prepare * 1000:.0f} ms)")
    floor = min(alone.values())
    print(f"each check alone in a one-expectation suite (the cheapest, {floor * 1000:.0f} ms, is "
          "mostly per-run GX overhead):")
    for name, t in sorted(alone.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {name:<45} {t * 1000:6.0f} ms")
    assert whole < 2.0
