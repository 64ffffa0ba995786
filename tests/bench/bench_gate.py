"""Benchmark: the whole validation gate on the real 2019 release (against 2017 as previous).

Prints the median of 7 runs after one warm-up (the GX import is not counted: the CLI and the flow
pay it once per process), then each check timed alone in its own one-expectation suite, so the
expensive ones stand out. Target: under 2 s on these 2-core machines.
"""

from __future__ import annotations

import pytest

from contracts.settings import GateSettings
from expectations.gate import batch_frames, run_gate, validate_checks
from expectations.suite import Check, all_checks
from tests.bench.bench_sources import _median

pytestmark = pytest.mark.bench

RUNS = 7


def test_gate_on_real_2019(real_parsed) -> None:
    codes, previous = real_parsed["2019-Q1"].codes, real_parsed["2017-Q1"].codes
    rejects = real_parsed["2019-Q1"].rejects
    result = run_gate(codes, rejects=rejects, previous=previous, release_id="2019-Q1")  # warm-up
    assert result.passed
    whole = _median(lambda: run_gate(codes, rejects=rejects, previous=previous,
                                     release_id="2019-Q1"), RUNS)
    checks = all_checks(GateSettings(), previous.height, codes.height)
    frames = batch_frames(codes, checks, rejects=rejects, previous=previous)
    prepare = _median(lambda: batch_frames(codes, checks, rejects=rejects, previous=previous),
                      RUNS)

    def timed(checks: list[Check], repeat: int) -> float:
        def once() -> None:
            validate_checks("bench", checks, frames[checks[0].batch])
        return _median(once, repeat)

    kinds: dict[str, list[Check]] = {}
    for c in checks:
        kind = c.expectation + (" + row_condition" if c.when else "")
        kinds.setdefault(f"{c.batch}: {kind}", []).append(c)
    by_kind = {k: (len(cs), timed(cs, 5)) for k, cs in kinds.items()}
    alone = {c.name: timed([c], 5) for c in checks}
    print(f"\ngate, 2019 vs 2017 ({codes.height:,} codes, {len(result.outcomes)} expectations): "
          f"median {whole * 1000:.0f} ms of {RUNS} runs (Polars frame preparation "
          f"{prepare * 1000:.0f} ms)")
    print("by GX expectation type, each group run as one suite (count, ms):")
    for kind, (n, t) in sorted(by_kind.items(), key=lambda kv: -kv[1][1]):
        print(f"  {kind:<62} {n:3d} {t * 1000:6.0f} ms")
    print(f"most expensive checks alone (a one-expectation suite costs at least "
          f"{min(alone.values()) * 1000:.0f} ms: per-run GX overhead):")
    for name, t in sorted(alone.items(), key=lambda kv: -kv[1])[:6]:
        print(f"  {name:<62} {t * 1000:6.0f} ms")
    assert whole < 2.0
