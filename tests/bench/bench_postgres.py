"""Benchmark: the 100-release database (``bench_history``'s synthetic releases, 9,000 codes each)
loaded into a real PostgreSQL 15 (``tests.pg_server``), against a plain COPY of the same data.

- ``hcpcs load``: a first load into an empty database (schema, keys, indexes, comments,
  fingerprints, one transaction), a no-op load, and the load of one more release.
- The peer: the same tables exported as Parquet (``hcpcs export``), each copied by one statement
  into a bare table of another empty database (``CREATE TABLE ... AS SELECT * FROM
  read_parquet(...)`` through the same postgres extension, which streams PostgreSQL's binary
  COPY): no key, no index, no comment, no bookkeeping, autocommit.

Run with ``make bench`` (or ``.venv/bin/pytest -q -s tests/bench/bench_postgres.py -m bench``).
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest

from tests.bench.bench_history import RELEASES, _release, _universe
from tests.warehouse_synth import publish
from warehouse import history
from warehouse.export import export
from warehouse.postgres import load, load_extension
from warehouse.sql import literal
from warehouse.tables import table

pytestmark = pytest.mark.bench


def _plain_copy(out: Path, url_conninfo: str, password: str) -> tuple[float, int]:
    """Every exported table into bare tables of the database: (seconds, rows)."""
    con = duckdb.connect()
    load_extension(con)
    con.execute(f"CREATE TEMPORARY SECRET p (TYPE postgres, PASSWORD {literal(password)})")
    con.execute(f"ATTACH {literal(url_conninfo)} AS pg (TYPE postgres, SECRET p)")
    rows = 0
    started = time.perf_counter()
    for path in sorted(out.iterdir()):
        name = path.name.removesuffix(".parquet")
        if path.name == "export.json":
            continue
        files = str(path / "*.parquet") if table(name).per_release else str(path)
        # a STRUCT has no PostgreSQL type: JSON, as the load writes it
        structs = [c for c, t, *_ in con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({literal(files)})").fetchall()
            if "STRUCT" in str(t)]
        select = (f"* REPLACE ({', '.join(f'to_json({c}) AS {c}' for c in structs)})"
                  if structs else "*")
        con.execute(f"CREATE TABLE pg.public.{name} AS SELECT {select} "
                    f"FROM read_parquet({literal(files)})")
        rows += con.execute(f"SELECT count(*) FROM read_parquet({literal(files)})").fetchone()[0]
    seconds = time.perf_counter() - started
    con.close()
    return seconds, rows


def test_load_100_releases_into_postgresql(pg_server, tmp_path: Path) -> None:
    universe = _universe()
    for i in range(RELEASES):
        publish(tmp_path, f"{2001 + i // 4}-Q{i % 4 + 1}", _release(universe, i))
    history.rebuild(tmp_path)

    ours = pg_server.create_database("bench_load")
    first = load(tmp_path, ours)
    noop = load(tmp_path, ours)
    assert (first.status, noop.status) == ("loaded", "unchanged")

    out = tmp_path / "export"
    started = time.perf_counter()
    export(tmp_path, out)
    exported = time.perf_counter() - started
    pg_server.create_database("bench_plain")
    conninfo = f"host=127.0.0.1 port={pg_server.port} user=hcpcs_admin dbname=bench_plain"
    plain, plain_rows = _plain_copy(out, conninfo, "s3cret-Pw'd")
    assert plain_rows == first.rows

    publish(tmp_path, f"{2001 + RELEASES // 4}-Q{RELEASES % 4 + 1}",
            _release(universe, RELEASES))
    history.rebuild(tmp_path)
    added = load(tmp_path, ours)
    assert added.added_releases == [f"{2001 + RELEASES // 4}-Q{RELEASES % 4 + 1}"]

    print(f"\nbench_postgres: {RELEASES} releases, {first.rows:,} rows in "
          f"{len({s.partition('/')[0] for s in first.slices})} tables")
    print(f"  hcpcs load, first: {first.seconds:.2f} s = {first.rows / first.seconds:,.0f} rows/s")
    print(f"  plain COPY of the exported Parquet: {plain:.2f} s = "
          f"{plain_rows / plain:,.0f} rows/s (export itself {exported:.2f} s)")
    print(f"  ratio load / plain: {first.seconds / plain:.2f}x")
    print(f"  no-op load: {noop.seconds:.2f} s; one more release: {added.seconds:.2f} s, "
          f"{added.rows:,} rows written")
