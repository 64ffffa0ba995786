"""Benchmark: ``parse_anweb_xlsx`` against openpyxl on the largest real ANWEB workbook.

Both read the same bytes in the same run. openpyxl (``load_workbook(read_only=True)``, every row's
values) only reads the cells: no header search, no typing, no codes frame; ours does all of that
and still has to be under 1 s. Run with ``make bench``; figures are printed, never asserted.
"""

from __future__ import annotations

import io
import statistics
import timeit
import warnings
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest

from transforms import parse_anweb_xlsx

pytestmark = pytest.mark.bench

RUNS = 5
WORKBOOK = "2020-Q4-october/anweb.xlsx"  # 750 KB, 7,208 rows: the largest real workbook


def _median_ms(run: Callable[[], object]) -> float:
    """Median of ``RUNS`` timed calls after one warm-up call (imports, caches, thread pools)."""
    run()
    return statistics.median(timeit.repeat(run, number=1, repeat=RUNS)) * 1000


def _openpyxl_rows(data: bytes) -> int:
    """Every row's values, the way a script reads a workbook with openpyxl."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl: "Cannot parse header or footer"
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
        rows = sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
        book.close()
    return rows


def test_bench_parse_xlsx_vs_openpyxl(cms_dir: Path) -> None:
    path = cms_dir / WORKBOOK
    if not path.exists():
        pytest.skip(f"{path} not found")
    data = path.read_bytes()
    result = parse_anweb_xlsx(data)
    ours = _median_ms(lambda: parse_anweb_xlsx(data))
    theirs = _median_ms(lambda: _openpyxl_rows(data))
    print(
        f"\nxlsx {WORKBOOK}: {len(data) / 1e6:.2f} MB, {result.line_count:,} rows, "
        f"{result.codes.height:,} codes; median of {RUNS}: parse_anweb_xlsx {ours:.0f} ms, "
        f"openpyxl read-only rows {theirs:.0f} ms, ratio {theirs / ours:.1f}x"
    )
