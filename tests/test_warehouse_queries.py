"""The queries analysts and the CLI run: values inlined safely, and no pandas import on the way."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.warehouse_synth import codes_frame, publish
from warehouse import history
from warehouse.queries import code_page, code_timeline, records
from warehouse.sql import literal

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "value", ["J0135", "O'Brien's", "a\\b", "'; DROP TABLE codes; --", "é – ü", "", 0, -42, None]
)
def test_literal_reads_back_as_the_same_value(value: object) -> None:
    with duckdb.connect() as con:
        assert con.execute(f"SELECT {literal(value)}").fetchone() == (value,)


def test_literal_list_is_a_varchar_list_even_when_empty() -> None:
    with duckdb.connect() as con:
        values = ["a", "it's"]
        assert con.execute(f"SELECT {literal(values)}").fetchone() == (values,)
        assert con.execute(f"SELECT list_contains({literal([])}, 'a')").fetchone() == (False,)


def test_queries_take_any_text_as_a_plain_value(tmp_path: Path) -> None:
    publish(tmp_path, "2024-Q1", codes_frame([{"code": "J0135"}, {"code": "A0021"}]))
    history.rebuild(tmp_path)
    with duckdb.connect(str(tmp_path / history.DB_NAME), read_only=True) as con:
        assert [p["added_date"] for p in records(code_page(con, "J0135"))] == [date(2000, 1, 1)]
        assert code_page(con, "J0135").pl()["added_date"].to_list() == [date(2000, 1, 1)]
        for odd in ("J0135' OR '1'='1", "O'X", "J0135'--"):
            assert records(code_page(con, odd)) == []
            assert records(code_timeline(con, odd)) == []


PANDAS_PROBE = """
import sys
from pathlib import Path
from sources.demo import write_demo_releases
from sources.archive import read_release_file
from transforms import parse_anweb
from tests.warehouse_synth import publish
from warehouse import history
from warehouse.queries import (changes_between, changes_by_type, code_page, code_timeline,
                               records, release_details, release_summary)
import duckdb

tmp = Path(sys.argv[1])
zips = write_demo_releases(tmp / "zips")
parsed = parse_anweb(read_release_file(zips[-1]).data)
publish(tmp / "data", "2024-Q1", parsed.codes)
publish(tmp / "data", "2024-Q2", parsed.codes.head(50))
history.rebuild(tmp / "data")
with duckdb.connect(str(tmp / "data" / history.DB_NAME), read_only=True) as con:
    code = records(code_page(con, "J0135"))[0]["release_id"]
    records(code_timeline(con, "J0135")), records(release_summary(con))
    [records(r) for r in release_details(con).values()]
    records(changes_between(con, "2024-Q1", "2024-Q2")), changes_by_type(con, ["2024-Q2"])
print(code, "pandas" in sys.modules)
"""


def test_parse_rebuild_and_queries_never_import_pandas(tmp_path: Path) -> None:
    """pandas costs 2 s to import on these machines; pyarrow (``pa.array`` on numpy) and
    DuckDB's Python API (parameters, reading Python objects) import it as a side effect."""
    out = subprocess.run([sys.executable, "-c", PANDAS_PROBE, str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2024-Q1", "False"]
