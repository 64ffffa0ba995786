"""``warehouse.tables``: every base table of the database is declared, and each declared key is
unique (and not null where it must not be) on the demo and on the real releases."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest

from contracts.paths import DataDir
from tests.test_flows import hcpcs
from warehouse.export import ExportError, export
from warehouse.history import database_is_current, empty_database
from warehouse.postgres import LoadError, load
from warehouse.tables import DATABASE_LAYOUT, TABLES, layout_sha256, table


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("tables") / "data"
    assert hcpcs("run", "-d", str(data_dir))[0] == 0
    return data_dir


def keys_hold(data_dir: Path) -> dict[str, int]:
    """Table -> rows, after checking its key is unique and null only where declared."""
    rows = {}
    with duckdb.connect(str(DataDir(data_dir).database), read_only=True) as con:
        for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            spec = table(name)
            key = ", ".join(spec.key)
            total, distinct = con.execute(
                f"SELECT count(*), count(DISTINCT ({key})) FROM {name}").fetchone()
            assert total == distinct, f"{name}: key ({key}) not unique"
            for column in set(spec.key) - set(spec.nullable_key):
                assert con.execute(f"SELECT count(*) FROM {name} WHERE {column} IS NULL"
                                   ).fetchone() == (0,), f"{name}.{column} is null"
            if spec.per_release:
                assert con.execute(f"SELECT count(*) FROM {name} WHERE release_id IS NULL"
                                   ).fetchone() == (0,)
            rows[name] = total
    return rows


def test_every_table_is_declared_and_its_key_holds_on_the_demo(demo: Path) -> None:
    rows = keys_hold(demo)
    assert set(TABLES) <= set(rows) and len(rows) == len(TABLES) + 9  # and nine lookups
    assert rows["codes"] == 1694


def test_keys_hold_on_the_real_releases(backfill: tuple[Path, dict]) -> None:
    rows = keys_hold(backfill[0])
    assert (rows["codes"], rows["code_history"], rows["findings"]) == (41_042, 8_316, 383)


def test_an_undeclared_table_is_an_error_naming_it() -> None:
    with pytest.raises(KeyError, match=r"scratch: a base table of hcpcs\.duckdb with no entry"):
        table("scratch")


def test_the_recorded_layout_is_this_versions() -> None:
    got = layout_sha256(empty_database())
    assert got == DATABASE_LAYOUT, (f"the database's tables changed: set "
                                    f"warehouse.tables.DATABASE_LAYOUT = {got!r}")


def test_a_database_of_another_layout_is_refused_then_rebuilt(demo: Path,
                                                              tmp_path: Path) -> None:
    """As a database built before code_history.version became INTEGER (it was HUGEINT)."""
    data_dir = tmp_path / "data"
    shutil.copytree(demo, data_dir)
    db = DataDir(data_dir).database
    with duckdb.connect(str(db)) as con:
        con.execute("ALTER TABLE code_history ALTER version TYPE HUGEINT")
    assert database_is_current(data_dir) is False
    message = f"{db} was built by another version of hcpcs-pipeline"
    with pytest.raises(ExportError, match=re.escape(message)):
        export(data_dir, tmp_path / "out")
    with pytest.raises(LoadError, match=re.escape(message)):  # before any connection is tried
        load(data_dir, "postgresql://nobody@127.0.0.1:9/none")
    assert hcpcs("run", "-d", str(data_dir))[0] == 3  # nothing new, but rebuilt
    with duckdb.connect(str(db), read_only=True) as con:
        assert layout_sha256(con) == DATABASE_LAYOUT
    assert database_is_current(data_dir)
