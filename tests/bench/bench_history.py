"""Benchmark: rebuild history and changes for 100 synthetic releases of 9,000 codes each.

Each release drops the 10 oldest codes (terminated the release before), adds 10 new ones and
revises about 1% of long descriptions (a fifth of them silently, under action N).
Run with ``make bench``; prints the rebuild time, the database size, and how long an analyst's
first question takes on it (open the file, query, close).

To see where a rebuild's time goes, profile one on a data directory (e.g. one ``hcpcs run`` of
the real releases filled; it is rebuilt in place, from the same releases):

    .venv/bin/python -m pyinstrument -c "from pathlib import Path; \\
        from warehouse.history import rebuild; rebuild(Path('DATA_DIR'))"

and its peak memory with ``/usr/bin/time -v`` in front of ``.venv/bin/python -c "..."``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from contracts.paths import DataDir
from tests.warehouse_synth import D, codes_frame, publish
from warehouse import history

pytestmark = pytest.mark.bench

RELEASES = 100
CODES = 9_000
TURNOVER = 10


def _universe() -> pl.DataFrame:
    n = CODES + TURNOVER * RELEASES
    frame = codes_frame([{"code": f"B{i:04d}"} for i in range(n)])
    return frame.with_row_index("idx")


def _release(universe: pl.DataFrame, i: int) -> pl.DataFrame:
    """Codes [10 i, 10 i + 9000); a code's description is revised in release j when
    (7 idx + j) % 97 == 0 (about 1% per release), flagged C except every fifth one (silent)."""
    lo = TURNOVER * i
    idx = pl.col("idx").cast(pl.Int64)
    rel = universe.filter(idx >= lo, idx < lo + CODES)
    first = (97 - (idx * 7) % 97) % 97  # first release that revises this code
    revisions = pl.when(first > i).then(0).otherwise((i - first) // 97 + 1)
    changed_now = ((idx * 7 + i) % 97 == 0) & (i > 0)
    ending = idx < lo + 2 * TURNOVER
    return rel.with_columns(
        long_description=pl.when(revisions > 0)
        .then(pl.col("long_description") + pl.lit(" (revision ") + revisions.cast(pl.String)
              + pl.lit(")"))
        .otherwise(pl.col("long_description")),
        termination_date=pl.when(ending).then(pl.lit(D(2000, 12, 31))).otherwise(None),
        action_code=pl.when(ending).then(pl.lit("D"))
        .when(idx >= lo + CODES - TURNOVER).then(pl.lit("A"))
        .when(changed_now & (idx % 5 != 0)).then(pl.lit("C")).otherwise(pl.lit("N")),
        source_line=(idx - lo + 1).cast(pl.Int64),
    ).drop("idx")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, history.RebuildSummary]:
    """The 100-release database: (data dir, rebuild seconds, summary)."""
    tmp_path = tmp_path_factory.mktemp("bench_history")
    universe = _universe()
    for i in range(RELEASES):
        publish(tmp_path, f"{2001 + i // 4}-Q{i % 4 + 1}", _release(universe, i))
    t0 = time.perf_counter()
    summary = history.rebuild(tmp_path)
    return tmp_path, time.perf_counter() - t0, summary


def test_rebuild_100_releases(built) -> None:
    tmp_path, rebuild, summary = built
    db = tmp_path / history.DB_NAME
    size = db.stat().st_size
    with duckdb.connect(str(db), read_only=True) as con:
        silent = con.sql("SELECT count(*) FROM code_changes WHERE silent").fetchone()
    assert summary.releases == RELEASES and summary.codes == RELEASES * CODES
    assert summary.changes_by_type["added"] == TURNOVER * (RELEASES - 1)
    assert summary.changes_by_type["dropped"] == TURNOVER * (RELEASES - 1)
    print(
        f"\nbench_history: {RELEASES} releases x {CODES:,} codes = {summary.codes:,} rows; "
        f"rebuild {rebuild:.2f} s (target < 10 s); "
        f"hcpcs.duckdb {size / 1e6:.1f} MB; code_history {summary.versions:,} versions; "
        f"code_changes {summary.changes:,} rows {summary.changes_by_type}; silent {silent[0]}; "
        f"history parquet {DataDir(tmp_path).history_parquet.stat().st_size / 1e6:.1f} MB; "
        f"changes parquet {DataDir(tmp_path).changes_parquet.stat().st_size / 1e6:.2f} MB"
    )


VALID = CODES - 2 * TURNOVER  # each release carries 20 codes already terminated in 2000
QUERIES = {  # an analyst's question -> (SQL, rows it must give)
    "hcpcs_as_of": ("SELECT count(*) FROM hcpcs_as_of(DATE '2013-05-01')", VALID),
    "hcpcs_as_of known_at": (
        "SELECT count(*) FROM hcpcs_as_of(DATE '2010-02-01', known_at := '2010-Q1')", VALID),
    "hcpcs_as_published": ("SELECT count(*) FROM hcpcs_as_published(DATE '2013-05-01')",
                           VALID),
    "hcpcs_code": ("SELECT count(*) FROM hcpcs_code('B4000')", 1),
}


@pytest.mark.parametrize("name", list(QUERIES))
def test_cold_open_and_query(built, name: str) -> None:
    """Open the database, ask one question, close: the median of 15 (target < 100 ms)."""
    db = str(built[0] / history.DB_NAME)
    sql, rows = QUERIES[name]
    times = []
    for _ in range(15):
        t0 = time.perf_counter()
        with duckdb.connect(db, read_only=True) as con:
            got = con.sql(sql).fetchone()
        times.append(time.perf_counter() - t0)
    assert got == (rows,)
    print(f"\nbench_query {name}: cold open + query median {statistics.median(times) * 1e3:.0f} ms "
          f"(min {min(times) * 1e3:.0f}, max {max(times) * 1e3:.0f}; target < 100 ms)")
