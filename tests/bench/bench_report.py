"""Benchmark: ``hcpcs report`` over the real releases and over the 100-release database.

- Real releases (``../shared/cms``, 7,401 codes): the whole build, three times, against the
  obvious alternative for the code pages: one set of queries per code (what ``hcpcs code`` asks:
  ``hcpcs_code(code)``, the code's history, episodes, changes and replacements), rendered with the
  same template. The report reads each table once for every code instead. The alternative is
  timed over the first ``SAMPLE`` codes (all of them would take minutes) and projected.
- The 100-release database (``bench_history``'s synthetic releases): the build, and the largest
  code page (its timeline has a column per release).

Run with ``make bench`` (or ``.venv/bin/pytest -q -s tests/bench/bench_report.py -m bench``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb
import pytest

from contracts.paths import DataDir
from report import data as q
from report import site
from tests.bench.bench_history import RELEASES, _release, _universe
from tests.warehouse_synth import publish
from warehouse import history
from warehouse.queries import records
from warehouse.sql import literal

pytestmark = pytest.mark.bench

#: Codes whose pages the per-code alternative renders (timed, then projected to every code).
SAMPLE = 300


def _per_code(data_dir: Path, out: Path) -> tuple[float, int]:
    """The first ``SAMPLE`` code pages rendered from one set of queries per code: (seconds,
    codes in all)."""
    started = time.perf_counter()
    env = site._environment()
    template = env.get_template("code.html")
    with duckdb.connect(str(DataDir(data_dir).database), read_only=True) as con:
        releases = q.effective_release_ids(con)
        env.globals["known_codes"] = codes = {c for (c,) in con.execute(
            "SELECT DISTINCT code FROM codes").fetchall()}
        for code in sorted(codes)[:SAMPLE]:
            c = literal(code)
            page = records(con.sql(f"""SELECT p.* FROM code_pages p JOIN releases r
                USING (release_id) WHERE r.effective AND p.code = {c}
                ORDER BY r.history_seq DESC LIMIT 1"""))
            if not page:
                continue
            detail = q.CodeDetail(
                page[0],
                versions=records(con.sql(f"SELECT * FROM code_history WHERE code = {c} "
                                         "ORDER BY version")),
                episodes=records(con.sql(f"SELECT * FROM code_episodes WHERE code = {c}")),
                changes=records(con.sql(f"SELECT * FROM code_changes_decoded WHERE code = {c}")),
                replacements=records(con.sql(f"SELECT * FROM code_replacements WHERE code = {c}")))
            html = template.render(root="../", latest=releases[-1], max_rows=site.MAX_ROWS,
                                   d=detail, fields=site.field_rows(detail.page),
                                   status=site.code_status(detail, releases[-1]),
                                   releases=releases, timeline=site.timeline(detail, releases))
            (out / f"{code}.html").write_text(html)
    return time.perf_counter() - started, len(codes)


def _largest_code_page(out: Path) -> tuple[str, int]:
    files = json.loads((out / site.REPORT_JSON).read_text())["files"]
    return max(((p, n) for p, n in files.items() if p.startswith("codes/")), key=lambda x: x[1])


def test_report_of_the_real_releases(backfill, tmp_path: Path) -> None:
    data_dir, _ = backfill
    builds = []
    for _ in range(3):
        started = time.perf_counter()
        done = site.build(data_dir, tmp_path / "site")
        builds.append((time.perf_counter() - started, done))
    (tmp_path / "plain").mkdir()
    sample, pages = _per_code(data_dir, tmp_path / "plain")
    plain = sample / SAMPLE * pages
    done = builds[-1][1]
    assert pages == done.codes == 7401
    page, size = _largest_code_page(done.out)
    print(f"\nbench_report: real releases, {done.pages:,} pages ({done.codes:,} codes)")
    for i, (seconds, _) in enumerate(builds, 1):
        print(f"  hcpcs report, build {i}: {seconds:.2f} s")
    print(f"  code pages alone, one set of queries per code: {sample * 1000 / SAMPLE:.1f} ms "
          f"a page over {SAMPLE}, {plain:.0f} s projected for {pages:,} (the whole report is "
          f"{plain / builds[-1][0]:.0f}x faster)")
    print(f"  largest code page: {page} {size / 1024:.1f} KiB")


def test_report_of_100_releases(tmp_path: Path) -> None:
    universe = _universe()
    for i in range(RELEASES):
        publish(tmp_path, f"{2001 + i // 4}-Q{i % 4 + 1}", _release(universe, i))
    history.rebuild(tmp_path)
    started = time.perf_counter()
    done = site.build(tmp_path)
    seconds = time.perf_counter() - started
    page, size = _largest_code_page(done.out)
    print(f"\nbench_report: {RELEASES} releases, {done.pages:,} pages ({done.codes:,} codes) "
          f"in {seconds:.2f} s; largest code page {page} {size / 1024:.1f} KiB")
