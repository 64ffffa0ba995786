"""History and change log on small synthetic releases, where every expected row is known."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pytest

from contracts.paths import DataDir
from tests.warehouse_synth import D, codes_frame, publish
from warehouse import history, queries

T = D(2019, 12, 31)
R = {  # release -> rows (code + the fields that differ from the synthetic defaults)
    "2020-Q1": [
        {"code": "A0001"},
        {"code": "A0003"},
        {"code": "A0004"},
        {"code": "A0005", "termination_date": T},
        {"code": "A0006", "termination_date": T, "long_description": "The old meaning"},
        {"code": "A0007", "long_description": "Foo  bar baz"},
        {"code": "A0008", "long_description": "Widget, small"},
        {"code": "A0009"},
        {"code": "A0010"},
        {"code": "A0011"},
    ],
    "2020-Q2": [
        {"code": "A0001"},
        {"code": "A0002", "action_code": "A", "added_date": D(2020, 4, 1)},
        {"code": "A0003", "action_code": "D", "termination_date": D(2020, 3, 31)},
        {"code": "A0005", "action_code": "R"},
        {"code": "A0007", "long_description": "Foo bar  baz "},
        {"code": "A0008", "long_description": "Widget, large"},
        {"code": "A0009", "action_code": "S", "short_description": "Renamed"},
        {"code": "A0010"},
        {"code": "A0011"},
    ],
    "2020-Q3": [
        {"code": "A0001"},
        {"code": "A0002", "added_date": D(2020, 4, 1)},
        {"code": "A0003", "termination_date": D(2020, 3, 31)},
        {"code": "A0005"},
        {"code": "A0006", "action_code": "A", "added_date": D(2020, 7, 1),
         "long_description": "A brand new meaning"},
        {"code": "A0007", "long_description": "Foo bar baz"},
        {"code": "A0008", "long_description": "Widget, large"},
        {"code": "A0009", "short_description": "Renamed"},
        {"code": "A0010", "action_code": "P", "pricing_indicators": ["11", None, None, None]},
        {"code": "A0011"},
    ],
    "2020-Q4": [
        {"code": "A0001"},
        {"code": "A0002", "added_date": D(2020, 4, 1)},
        {"code": "A0005"},
        {"code": "A0006", "added_date": D(2020, 7, 1), "long_description": "A brand new meaning"},
        {"code": "A0007", "long_description": "Foo bar baz"},
        {"code": "A0008", "long_description": "Widget, large"},
        {"code": "A0009", "short_description": "Renamed"},
        {"code": "A0010", "pricing_indicators": ["11", None, None, None]},
        {"code": "A0011", "action_code": "C", "coverage_code": "I",
         "long_description": "Changed on purpose"},
    ],
}


def _publish_all(data_dir: Path, order: list[str]) -> duckdb.DuckDBPyConnection:
    for rid in order:
        publish(data_dir, rid, codes_frame(R[rid]))
    history.rebuild(data_dir)
    return duckdb.connect(str(data_dir / history.DB_NAME), read_only=True)


@pytest.fixture(scope="module")
def con(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    return _publish_all(tmp_path_factory.mktemp("hist"), list(R))


def test_change_log_has_exactly_the_expected_rows(con) -> None:
    rows = con.sql(
        "SELECT release_id, previous_release_id, code, change_type, field, action_code, "
        "action_agrees, silent FROM code_changes"
    ).fetchall()
    assert rows == [
        ("2020-Q2", "2020-Q1", "A0002", "added", "long_description", "A", True, False),
        ("2020-Q2", "2020-Q1", "A0003", "discontinued", "termination_date", "D", True, False),
        ("2020-Q2", "2020-Q1", "A0004", "dropped", None, None, False, None),
        ("2020-Q2", "2020-Q1", "A0005", "reactivated", "termination_date", "R", True, False),
        ("2020-Q2", "2020-Q1", "A0006", "dropped", None, None, True, None),
        ("2020-Q2", "2020-Q1", "A0008", "long_description_changed", "long_description", "N",
         False, True),
        ("2020-Q2", "2020-Q1", "A0009", "short_description_changed", "short_description", "S",
         True, False),
        ("2020-Q3", "2020-Q2", "A0006", "reused", "long_description", "A", True, False),
        ("2020-Q3", "2020-Q2", "A0010", "pricing_indicators_changed", "pricing_indicators", "P",
         True, False),
        ("2020-Q4", "2020-Q3", "A0003", "dropped", None, None, True, None),
        ("2020-Q4", "2020-Q3", "A0011", "coverage_code_changed", "coverage_code", "C", False,
         False),
        ("2020-Q4", "2020-Q3", "A0011", "long_description_changed", "long_description", "C",
         True, False),
    ]


def test_old_and_new_values(con) -> None:
    def values(code: str, change_type: str) -> tuple:
        return con.execute(
            "SELECT old_value, new_value FROM code_changes WHERE code = ? AND change_type = ?",
            [code, change_type]).fetchone()

    assert values("A0003", "discontinued") == (None, "2020-03-31")
    assert values("A0005", "reactivated") == ("2019-12-31", None)
    assert values("A0006", "reused") == ("The old meaning", "A brand new meaning")
    assert values("A0008", "long_description_changed") == ("Widget, small", "Widget, large")
    assert values("A0010", "pricing_indicators_changed") == (
        "[00, NULL, NULL, NULL]", "[11, NULL, NULL, NULL]")
    assert values("A0004", "dropped") == ("Long description of A0004", None)


def test_whitespace_only_description_change_is_ignored(con) -> None:
    assert con.sql("SELECT count(*) FROM code_changes WHERE code = 'A0007'").fetchone() == (0,)
    assert con.sql("SELECT count(*) FROM code_history WHERE code = 'A0007'").fetchone() == (1,)


def test_history_versions_and_episodes(con) -> None:
    rows = con.sql(
        "SELECT code, episode, version, valid_from_release, valid_to_release, ended_in_release, "
        "end_reason, is_current FROM code_history"
    ).fetchall()
    q1, q2, q3, q4 = "2020-Q1", "2020-Q2", "2020-Q3", "2020-Q4"
    assert rows == [
        ("A0001", 1, 1, q1, q4, None, None, True),
        ("A0002", 1, 1, q2, q4, None, None, True),
        ("A0003", 1, 1, q1, q1, q2, "changed", False),
        ("A0003", 1, 2, q2, q3, q4, "dropped", False),
        ("A0004", 1, 1, q1, q1, q2, "dropped", False),
        ("A0005", 1, 1, q1, q1, q2, "changed", False),
        ("A0005", 1, 2, q2, q4, None, None, True),
        ("A0006", 1, 1, q1, q1, q2, "dropped", False),
        ("A0006", 2, 2, q3, q4, None, None, True),
        ("A0007", 1, 1, q1, q4, None, None, True),
        ("A0008", 1, 1, q1, q1, q2, "changed", False),
        ("A0008", 1, 2, q2, q4, None, None, True),
        ("A0009", 1, 1, q1, q1, q2, "changed", False),
        ("A0009", 1, 2, q2, q4, None, None, True),
        ("A0010", 1, 1, q1, q2, q3, "changed", False),
        ("A0010", 1, 2, q3, q4, None, None, True),
        ("A0011", 1, 1, q1, q3, q4, "changed", False),
        ("A0011", 1, 2, q4, q4, None, None, True),
    ]
    # Reuse keeps the old meaning in its own episode, with CMS's own dates for each.
    assert con.sql(
        "SELECT episode, long_description, added_date, termination_date, valid_from_date, "
        "valid_to_date FROM code_history WHERE code = 'A0006'"
    ).fetchall() == [
        (1, "The old meaning", D(2000, 1, 1), T, D(2020, 1, 1), D(2020, 3, 31)),
        (2, "A brand new meaning", D(2020, 7, 1), None, D(2020, 7, 1), None),
    ]


@pytest.mark.parametrize(
    ("day", "codes"),
    [
        (D(2019, 6, 1), ["A0001", "A0003", "A0004", "A0005", "A0006", "A0007", "A0008",
                         "A0009", "A0010", "A0011"]),
        (D(2020, 3, 15), ["A0001", "A0003", "A0004", "A0007", "A0008", "A0009", "A0010",
                          "A0011"]),
        (D(2020, 5, 1), ["A0001", "A0002", "A0005", "A0007", "A0008", "A0009", "A0010",
                         "A0011"]),
        (D(2020, 8, 1), ["A0001", "A0002", "A0005", "A0006", "A0007", "A0008", "A0009",
                         "A0010", "A0011"]),
    ],
)
def test_hcpcs_as_of(con, day, codes) -> None:
    got = con.execute("SELECT code FROM hcpcs_as_of(?::DATE)", [day]).fetchall()
    assert [c for (c,) in got] == codes


def test_as_of_gives_the_meaning_in_force_on_that_date(con) -> None:
    q = "SELECT long_description FROM hcpcs_as_of(?::DATE) WHERE code = 'A0008'"
    assert con.execute(q, [D(2020, 2, 1)]).fetchone() == ("Widget, small",)
    assert con.execute(q, [D(2020, 6, 1)]).fetchone() == ("Widget, large",)


def test_silent_changes_are_easy_to_list(con) -> None:
    assert con.sql("SELECT release_id, code, field FROM code_changes WHERE silent").fetchall() == [
        ("2020-Q2", "A0008", "long_description")]


def test_every_object_and_column_is_commented(con) -> None:
    tables = {"releases", "codes", "code_history", "code_changes", "validation_results",
              "change_types", "findings", "repairs", "reconciliation", "waivers"}
    rows = con.sql("SELECT table_name, comment FROM duckdb_tables()").fetchall()
    assert tables <= {t for t, _ in rows}
    assert [t for t, c in rows if not c] == []
    views = con.sql("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall()
    assert {v for v, _ in views} == {"codes_current", "code_pages", "code_changes_decoded",
                                     "code_flags"}
    assert [v for v, c in views if not c] == []
    missing = con.sql(
        "SELECT table_name, column_name FROM duckdb_columns() "
        "WHERE table_name IN (SELECT table_name FROM duckdb_tables()) "
        "AND (comment IS NULL OR comment = '')").fetchall()
    assert missing == []


def test_queries(con) -> None:
    summary = queries.release_summary(con)
    assert summary.select("release_id", "added", "discontinued", "dropped", "reactivated",
                          "reused", "field_changes", "silent_changes").rows() == [
        ("2020-Q1", 0, 0, 0, 0, 0, 0, 0),
        ("2020-Q2", 1, 1, 2, 1, 0, 2, 1),
        ("2020-Q3", 0, 0, 0, 0, 1, 1, 0),
        ("2020-Q4", 0, 0, 1, 0, 0, 2, 0),
    ]
    between = queries.changes_between(con, "2020-Q2", "2020-Q4")
    assert between.select("release_id", "code", "change_type").rows() == [
        ("2020-Q3", "A0006", "reused"), ("2020-Q3", "A0010", "pricing_indicators_changed"),
        ("2020-Q4", "A0003", "dropped"), ("2020-Q4", "A0011", "coverage_code_changed"),
        ("2020-Q4", "A0011", "long_description_changed")]
    timeline = queries.code_timeline(con, "A0006")
    assert timeline.select("episode", "version", "valid_from_release", "change_type",
                           "long_description").rows() == [
        (1, 1, "2020-Q1", None, "The old meaning"),
        (2, 2, "2020-Q3", "reused", "A brand new meaning")]
    page = queries.code_page(con, "A0008", "2020-Q1")
    assert page.select("release_id", "long_description").rows() == [("2020-Q1", "Widget, small")]
    assert queries.code_page(con, "A0008")["release_id"].to_list() == ["2020-Q4"]


def _tables(con: duckdb.DuckDBPyConnection) -> dict:
    names = [t for (t,) in con.sql("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
    return {t: con.sql(f"SELECT * FROM {t}").pl() for t in names}


def test_any_load_order_and_reloading_give_identical_tables(tmp_path: Path, con) -> None:
    reference = _tables(con)
    rng = random.Random(5)
    for i in range(3):
        order = list(R)
        rng.shuffle(order)
        with _publish_all(tmp_path / f"d{i}", order) as other:
            got = _tables(other)
        assert list(got) == list(reference)
        for name, frame in reference.items():
            assert got[name].equals(frame), f"{name} differs for load order {order}"
    history.rebuild(tmp_path / "d0")  # re-load: rebuild again from the same releases
    with duckdb.connect(str(tmp_path / "d0" / history.DB_NAME), read_only=True) as again:
        got = _tables(again)
    assert all(got[n].equals(f) for n, f in reference.items())
    d0, d1 = DataDir(tmp_path / "d0"), DataDir(tmp_path / "d1")
    assert d0.history_parquet.read_bytes() == d1.history_parquet.read_bytes()
    assert d0.changes_parquet.read_bytes() == d1.changes_parquet.read_bytes()
