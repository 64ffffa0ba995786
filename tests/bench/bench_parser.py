"""Benchmark: ``parse_anweb`` against pandas ``read_fwf`` on the real CMS releases.

Both read the same bytes in the same run; ``read_fwf`` gets every layout field's columns (derived
from ``contracts.layout``, dtype str), so it does the slicing and no more: no record checks, no
continuation lines, no typing. Decode-only times are the floor any parser pays.
Run with ``make bench``; figures are printed, never asserted.
"""

from __future__ import annotations

import io
import statistics
import timeit
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from contracts.layout import LAYOUT
from tests.conftest import REAL_RELEASES, real_txt
from transforms import parse_anweb

pytestmark = pytest.mark.bench

RUNS = 15
COLSPECS = [(offset, offset + f.length) for f in LAYOUT for offset in f.offsets()]


def _median_ms(run: Callable[[], object]) -> float:
    """Median of ``RUNS`` timed calls after one warm-up call (imports, caches, thread pools)."""
    run()
    return statistics.median(timeit.repeat(run, number=1, repeat=RUNS)) * 1000


def _read_fwf(data: bytes) -> pd.DataFrame:
    return pd.read_fwf(
        io.BytesIO(data), colspecs=COLSPECS, dtype=str, header=None, encoding="cp1252"
    )


@pytest.mark.parametrize("release", sorted(REAL_RELEASES))
def test_bench_parse_vs_read_fwf(cms_dir: Path, release: str) -> None:
    path = cms_dir / REAL_RELEASES[release][0]
    if not path.exists():
        pytest.skip(f"{path} not found")
    data = real_txt(cms_dir, release)
    result = parse_anweb(data)
    parse = _median_ms(lambda: parse_anweb(data))
    fwf = _median_ms(lambda: _read_fwf(data))
    cp1252 = _median_ms(lambda: data.decode("cp1252"))
    print(
        f"\nparse {release}: {result.line_count:,} lines, {len(data) / 1e6:.1f} MB, "
        f"{result.codes.height:,} codes; median of {RUNS}: parse_anweb {parse:.1f} ms, "
        f"read_fwf ({len(COLSPECS)} columns) {fwf:.1f} ms, ratio {fwf / parse:.1f}x; "
        f"decode only: bytes.decode('cp1252') {cp1252:.1f} ms"
    )
