"""The yardstick for ``hcpcs run``: the same work as a plain script, with no framework.

    python tests/bench/plain_pipeline.py SOURCE_DIR OUT_DIR

For each release file in SOURCE_DIR, in release order: read it and parse it with the project's
parser; apply the gate's rules (``expectations.suite.all_checks``) directly in Polars, on the
frames the gate builds (``expectations.gate.batch_frames``), one ``select`` per batch; unless a
release-level error refuses it, write its codes to Parquet, and, as ``hcpcs run`` does with a
ZIP, its differences from CMS's workbook in the same ZIP (``transforms.reconcile``) and its
transaction report (``transforms.transaction_report``). Then load every release into a DuckDB
file (a table per release) and compute versions and field-level changes in SQL. Prints codes per
release, failures per rule, versions and changes. ``tests/bench/bench_pipeline.py`` times it
against ``hcpcs run`` (issue 14).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from contracts.layout import TRACKED_FIELDS
from contracts.release import release_from_name, release_sort_key
from contracts.settings import GateSettings
from expectations.gate import batch_frames, is_revision
from expectations.suite import Check, all_checks
from sources.archive import read_cross_check, read_release_file, read_report_member
from transforms import parse_member
from transforms.reconcile import reconcile
from transforms.transaction_report import parse_transaction_report_file

#: GX expectation -> the Polars expression of a failing value (on the rows the check looks at).
FAILS: dict[str, Callable[[pl.Expr, Mapping[str, Any]], pl.Expr]] = {
    "ExpectColumnValuesToBeNull": lambda c, kw: c.is_not_null(),
    "ExpectColumnValuesToNotBeNull": lambda c, kw: c.is_null(),
    "ExpectColumnValuesToBeInSet": lambda c, kw: ~c.is_in(kw["value_set"]),
    "ExpectColumnValuesToNotBeInSet": lambda c, kw: c.is_in(kw["value_set"]),
    "ExpectColumnValuesToMatchRegex": lambda c, kw: ~c.str.contains(kw["regex"]),
    "ExpectColumnValuesToBeUnique": lambda c, kw: c.is_duplicated(),
    "ExpectColumnValueLengthsToBeBetween": lambda c, kw: ~c.str.len_chars().is_between(
        kw.get("min_value", 0), kw.get("max_value", math.inf)),
}
#: Expectations about nulls look at every row; GX skips null values for all the others.
ON_NULLS = {"ExpectColumnValuesToBeNull", "ExpectColumnValuesToNotBeNull"}
KWARGS = {"value_set", "regex", "min_value", "max_value", "mostly"}


def measure(check: Check) -> list[pl.Expr]:
    """Two expressions per check: its failures, and the rows it looked at. Raises on anything
    not translated, so a new rule cannot be skipped without a word."""
    if unknown := set(check.kwargs) - KWARGS:
        raise NotImplementedError(f"{check.name}: arguments {sorted(unknown)} not translated")
    kw, seen = check.kwargs, f"{check.name}:seen"
    if check.expectation == "ExpectTableRowCountToBeBetween":
        n = pl.len()
        out = (n < kw.get("min_value", 0)) | (n > kw.get("max_value", math.inf))
        return [out.cast(pl.UInt32).alias(check.name), n.alias(seen)]
    if check.expectation not in FAILS:
        raise NotImplementedError(f"{check.name}: {check.expectation} is not translated")
    col = pl.col(check.column)
    if check.when is not None:
        col = col.filter(pl.col(check.when[0]).is_in(list(check.when[1])).fill_null(False))
    if check.expectation not in ON_NULLS:
        col = col.drop_nulls()
    return [FAILS[check.expectation](col, kw).sum().alias(check.name), col.len().alias(seen)]


def passed(check: Check, failures: int, seen: int) -> bool:
    """No failure, or (with ``mostly``) a large enough share of good rows, as GX counts it."""
    if "mostly" not in check.kwargs:
        return failures == 0
    return seen == 0 or (seen - failures) / seen >= check.kwargs["mostly"]


def gate(codes: pl.DataFrame, rejects: pl.DataFrame, previous: pl.DataFrame | None,
         revision: bool) -> tuple[dict[str, int], list[str]]:
    """Failures per rule, and the release-level errors that refuse the release."""
    checks = all_checks(GateSettings(), None if previous is None else previous.height,
                        codes.height, revision=revision)
    frames = batch_frames(codes, checks, rejects=rejects, previous=previous)
    failures, refused = {}, []
    for batch, frame in frames.items():
        mine = [c for c in checks if c.batch == batch]
        row = frame.select([e for c in mine for e in measure(c)]).row(0, named=True)
        for c in mine:
            failures[c.name] = row[c.name]
            if c.scope == "release" and c.severity == "error" and not passed(
                    c, row[c.name], row[f"{c.name}:seen"]):
                refused.append(c.name)
    return failures, refused


def releases(source: Path) -> list[tuple[str, Path]]:
    """(release id, file) for every file whose name names a release, oldest first."""
    found = [(rid, p) for p in source.iterdir()
             if p.is_file() and (rid := release_from_name(p.name))]
    return sorted(found, key=lambda item: release_sort_key(item[0]))


FIELDS = [f.name for f in TRACKED_FIELDS]
HASH = f"hash({', '.join(FIELDS)})"
VERSIONS = f"""CREATE TABLE versions AS
WITH rows AS (
    SELECT seq, release_id, code, {HASH} AS h,
           lag(seq) OVER w AS prev_seq, lag({HASH}) OVER w AS prev_h
    FROM codes WINDOW w AS (PARTITION BY code ORDER BY seq)),
numbered AS (
    SELECT *, sum((prev_seq IS DISTINCT FROM seq - 1 OR h <> prev_h)::INT)
              OVER (PARTITION BY code ORDER BY seq) AS version FROM rows)
SELECT code, version, arg_min(release_id, seq) AS valid_from_release,
       arg_max(release_id, seq) AS valid_to_release
FROM numbered GROUP BY code, version"""
PAIRS = f"""CREATE TEMP TABLE pairs AS
SELECT c.release_id, c.code, p.code IS NULL AS added,
       {", ".join(f"p.{f} AS p_{f}, c.{f} AS c_{f}" for f in FIELDS)}
FROM codes c LEFT JOIN codes p ON p.code = c.code AND p.seq = c.seq - 1 WHERE c.seq > 1"""
CHANGES = "CREATE TABLE changes AS\n" + "\nUNION ALL ".join([
    "SELECT release_id, code, 'added' AS change, NULL AS field, NULL AS old_value, "
    "NULL AS new_value FROM pairs WHERE added",
    """SELECT r.release_id, p.code, 'dropped', NULL, NULL, NULL FROM codes p
       JOIN releases r ON r.seq = p.seq + 1
       ANTI JOIN codes c ON c.code = p.code AND c.seq = p.seq + 1""",
    *(f"""SELECT release_id, code, 'changed', '{f}', CAST(p_{f} AS VARCHAR),
              CAST(c_{f} AS VARCHAR) FROM pairs
       WHERE NOT added AND p_{f} IS DISTINCT FROM c_{f}""" for f in FIELDS),
])


def history(db: Path, published: dict[str, Path]) -> duckdb.DuckDBPyConnection:
    """A table per release, all of them as ``codes``, then versions and changes."""
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE releases (seq INT, release_id VARCHAR)")
    for seq, (rid, parquet) in enumerate(published.items(), 1):
        con.execute(f"""CREATE TABLE "codes_{rid}" AS SELECT * FROM read_parquet('{parquet}')""")
        con.execute("INSERT INTO releases VALUES (?, ?)", [seq, rid])
    con.execute("CREATE TABLE codes AS " + " UNION ALL ".join(
        f"""SELECT {seq} AS seq, '{rid}' AS release_id, * FROM "codes_{rid}\""""
        for seq, rid in enumerate(published, 1)))
    for sql in (VERSIONS, PAIRS, CHANGES):
        con.execute(sql)
    return con


def main(source: Path, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    published: dict[str, Path] = {}
    failures: dict[str, dict[str, int]] = {}
    previous, previous_id = None, None
    for rid, path in releases(source):
        member = read_release_file(path)
        parsed = parse_member(member.name, member.data)
        failures[rid], refused = gate(parsed.codes, parsed.rejects, previous,
                                      is_revision(rid, previous_id))
        print(f"{rid}: {parsed.codes.height:,} codes from {path.name}"
              + (f" REFUSED ({', '.join(refused)})" if refused else ""))
        if not refused:
            published[rid] = out / f"{rid}.parquet"
            parsed.codes.write_parquet(published[rid])
            previous, previous_id = parsed.codes, rid
            if workbook := read_cross_check(path):
                differences = reconcile(parsed.codes,
                                        parse_member(workbook.name, workbook.data).codes)
                differences.write_parquet(out / f"{rid}.reconciliation.parquet")
                print(f"  {differences.height:,} TXT/xlsx differences")
            if report := read_report_member(path):
                actions = parse_transaction_report_file(report.name, report.data)
                actions.write_parquet(out / f"{rid}.transactions.parquet")
                print(f"  {actions.height:,} transaction report lines")
    if not published:
        print(f"{source}: no release published", file=sys.stderr)
        return 1
    with history(out / "plain.duckdb", published) as con:
        print("failures per rule (" + ", ".join(failures) + "):")
        for rule in dict.fromkeys(r for f in failures.values() for r in f):
            print(f"  {rule:<42}", *(f"{f.get(rule, '-'):>6}" for f in failures.values()))
        print("versions:", con.sql("SELECT count(*) FROM versions").fetchone()[0])
        for change, n in con.sql("SELECT change, count(*) FROM changes GROUP BY 1 ORDER BY 1")\
                .fetchall():
            print(f"changes {change}: {n}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} SOURCE_DIR OUT_DIR")
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
