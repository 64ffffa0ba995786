"""History and change log on small synthetic releases, where every expected row is known."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import duckdb
import pytest

from contracts.paths import DataDir
from tests.warehouse_synth import D, codes_frame, publish
from warehouse import history, queries
from warehouse.database import execute_all, values_table
from warehouse.doctor import REPAIR, DamagedFileError

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
        {"code": "A0012", "long_description": "Old sense"},
        {"code": "A0013"},
    ],
    "2020-Q2": [
        {"code": "A0001"},
        {"code": "A0002", "action_code": "A", "added_date": D(2020, 4, 1)},
        {"code": "A0003", "action_code": "D", "termination_date": D(2020, 3, 31)},
        {"code": "A0005", "action_code": "R"},
        {"code": "A0007", "long_description": "Foo bar  baz "},
        {"code": "A0008", "long_description": "Widget, large"},
        {"code": "A0009", "action_code": "S", "short_description": "Renamed",
         "action_effective_date": D(2020, 5, 1)},
        {"code": "A0010"},
        {"code": "A0011"},
        # redefined in place: a later add date and a new meaning, no gap, under action A
        {"code": "A0012", "action_code": "A", "added_date": D(2020, 4, 1),
         "long_description": "New sense"},
        # terminated retroactively, without a word (action N)
        {"code": "A0013", "termination_date": D(2020, 2, 29)},
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
        {"code": "A0009", "short_description": "Renamed", "action_effective_date": D(2020, 5, 1)},
        {"code": "A0010", "action_code": "P", "pricing_indicators": ["11"]},
        {"code": "A0011"},
        {"code": "A0012", "added_date": D(2020, 4, 1), "long_description": "New sense"},
        {"code": "A0013", "termination_date": D(2020, 2, 29)},
        # added in mid-quarter: only the next file carries it
        {"code": "A0014", "action_code": "A", "added_date": D(2020, 5, 15)},
    ],
    "2020-Q4": [
        {"code": "A0001"},
        {"code": "A0002", "added_date": D(2020, 4, 1)},
        {"code": "A0005"},
        {"code": "A0006", "added_date": D(2020, 7, 1), "long_description": "A brand new meaning"},
        {"code": "A0007", "long_description": "Foo bar baz"},
        {"code": "A0008", "long_description": "Widget, large"},
        {"code": "A0009", "short_description": "Renamed", "action_effective_date": D(2020, 5, 1)},
        {"code": "A0010", "pricing_indicators": ["11"]},
        {"code": "A0011", "action_code": "C", "coverage_code": "I",
         "long_description": "Changed on purpose"},
        {"code": "A0012", "added_date": D(2020, 4, 1), "long_description": "New sense"},
        {"code": "A0013", "termination_date": D(2020, 2, 29)},
        {"code": "A0014", "added_date": D(2020, 5, 15)},
    ],
}
Q1, Q2, Q3, Q4 = "2020-Q1", "2020-Q2", "2020-Q3", "2020-Q4"


def _publish_all(data_dir: Path, order: list[str]) -> duckdb.DuckDBPyConnection:
    for rid in order:
        publish(data_dir, rid, codes_frame(R[rid]))
    history.rebuild(data_dir)
    return duckdb.connect(str(data_dir / history.DB_NAME), read_only=True)


@pytest.fixture(scope="module")
def con(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    return _publish_all(tmp_path_factory.mktemp("hist"), list(R))


def _codes(con, sql: str) -> list[str]:
    return [c for (c,) in con.sql(sql).fetchall()]


def test_change_log_has_exactly_the_expected_rows(con) -> None:
    rows = con.sql(
        "SELECT release_id, previous_release_id, code, change_type, field, action_code, "
        "action_agrees, silent FROM code_changes"
    ).fetchall()
    assert rows == [
        (Q2, Q1, "A0002", "added", None, "A", True, False),
        (Q2, Q1, "A0003", "discontinued", "termination_date", "D", True, False),
        (Q2, Q1, "A0004", "dropped", None, None, False, True),  # removed without a word
        (Q2, Q1, "A0005", "reactivated", "termination_date", "R", True, False),
        (Q2, Q1, "A0006", "dropped", None, None, True, False),  # terminated before it left
        (Q2, Q1, "A0008", "long_description_changed", "long_description", "N", False, True),
        (Q2, Q1, "A0009", "short_description_changed", "short_description", "S", True, False),
        (Q2, Q1, "A0012", "redefined", None, "A", True, False),
        (Q2, Q1, "A0013", "discontinued", "termination_date", "N", False, True),
        (Q3, Q2, "A0006", "reused", None, "A", True, False),
        (Q3, Q2, "A0010", "pricing_indicators_changed", "pricing_indicators", "P", True, False),
        (Q3, Q2, "A0014", "added", None, "A", True, False),
        (Q4, Q3, "A0003", "dropped", None, None, True, False),
        (Q4, Q3, "A0011", "coverage_code_changed", "coverage_code", "C", False, False),
        (Q4, Q3, "A0011", "long_description_changed", "long_description", "C", True, False),
    ]
    assert con.sql("SELECT count(*) FROM code_changes WHERE silent IS NULL").fetchone() == (0,)


def test_old_and_new_values_keep_their_type(con) -> None:
    def values(code: str, change_type: str) -> tuple:
        return con.execute(
            "SELECT old_value, new_value, old_text, new_text, old_date, new_date, old_list, "
            "new_list, old_number, new_number FROM code_changes WHERE code = ? "
            "AND change_type = ?", [code, change_type]).fetchone()

    n = (None, None)
    assert values("A0003", "discontinued") == (None, "2020-03-31", *n, None, D(2020, 3, 31), *n, *n)
    assert values("A0005", "reactivated") == ("2019-12-31", None, *n, T, None, *n, *n)
    assert values("A0006", "reused") == ("The old meaning", "A brand new meaning",
                                         "The old meaning", "A brand new meaning", *n, *n, *n)
    assert values("A0012", "redefined") == ("Old sense", "New sense", "Old sense", "New sense",
                                            *n, *n, *n)
    assert values("A0010", "pricing_indicators_changed") == (
        "[00]", "[11]", *n, *n, ["00"], ["11"], *n)
    assert values("A0004", "dropped") == ("Long description of A0004", None,
                                          "Long description of A0004", None, *n, *n, *n)
    assert con.sql("SELECT DISTINCT typeof(old_list), typeof(new_date), typeof(old_number) "
                   "FROM code_changes").fetchall() == [("VARCHAR[]", "DATE", "INTEGER")]


def test_decoded_changes_give_the_meaning_of_old_and_new_codes(con) -> None:
    rows = con.sql(
        "SELECT code, field, old_meaning, new_meaning, action_code_meaning, change_type_meaning "
        "FROM code_changes_decoded WHERE code IN ('A0010', 'A0011') ORDER BY ALL").fetchall()
    pricing = con.sql("SELECT map(list(code), list(meaning)) FROM lookup_pricing_indicator"
                      ).fetchone()[0]
    coverage = dict(con.sql("SELECT code, meaning FROM lookup_coverage_code").fetchall())
    assert rows[0][:4] == ("A0010", "pricing_indicators", f"00: {pricing['00']}",
                           f"11: {pricing['11']}")
    assert rows[1][:4] == ("A0011", "coverage_code", coverage["C"], coverage["I"])
    assert rows[1][5].startswith("Value of coverage_code differs")
    assert rows[2][2:4] == (None, None)  # the long description has no code domain


def test_whitespace_only_description_change_is_ignored(con) -> None:
    assert con.sql("SELECT count(*) FROM code_changes WHERE code = 'A0007'").fetchone() == (0,)
    assert con.sql("SELECT count(*) FROM code_history WHERE code = 'A0007'").fetchone() == (1,)


def test_history_versions_and_episodes(con) -> None:
    rows = con.sql(
        "SELECT code, episode, version, valid_from_release, valid_to_release, ended_in_release, "
        "end_reason, is_current FROM code_history"
    ).fetchall()
    assert rows == [
        ("A0001", 1, 1, Q1, Q4, None, None, True),
        ("A0002", 1, 1, Q2, Q4, None, None, True),
        ("A0003", 1, 1, Q1, Q1, Q2, "discontinued", False),
        ("A0003", 1, 2, Q2, Q3, Q4, "dropped", False),
        ("A0004", 1, 1, Q1, Q1, Q2, "dropped", False),
        ("A0005", 1, 1, Q1, Q1, Q2, "changed", False),
        ("A0005", 1, 2, Q2, Q4, None, None, True),
        ("A0006", 1, 1, Q1, Q1, Q2, "dropped", False),
        ("A0006", 2, 2, Q3, Q4, None, None, True),
        ("A0007", 1, 1, Q1, Q4, None, None, True),
        ("A0008", 1, 1, Q1, Q1, Q2, "changed", False),
        ("A0008", 1, 2, Q2, Q4, None, None, True),
        ("A0009", 1, 1, Q1, Q1, Q2, "changed", False),
        ("A0009", 1, 2, Q2, Q4, None, None, True),
        ("A0010", 1, 1, Q1, Q2, Q3, "changed", False),
        ("A0010", 1, 2, Q3, Q4, None, None, True),
        ("A0011", 1, 1, Q1, Q3, Q4, "changed", False),
        ("A0011", 1, 2, Q4, Q4, None, None, True),
        ("A0012", 1, 1, Q1, Q1, Q2, "redefined", False),
        ("A0012", 2, 2, Q2, Q4, None, None, True),
        ("A0013", 1, 1, Q1, Q1, Q2, "discontinued", False),
        ("A0013", 1, 2, Q2, Q4, None, None, True),
        ("A0014", 1, 1, Q3, Q4, None, None, True),
    ]


def test_valid_time_comes_from_cms_dates(con) -> None:
    rows = con.sql("SELECT code, version, valid_from_date, valid_to_date, valid_from_basis "
                   "FROM code_history").fetchall()
    old = D(2000, 1, 1)
    assert rows == [
        ("A0001", 1, old, None, "added_date"),
        ("A0002", 1, D(2020, 4, 1), None, "added_date"),
        ("A0003", 1, old, D(2020, 3, 31), "added_date"),
        ("A0003", 2, D(2020, 4, 1), D(2020, 3, 31), "termination_date"),  # never in force
        ("A0004", 1, old, D(2020, 3, 31), "added_date"),  # the day before the file without it
        ("A0005", 1, old, T, "added_date"),
        ("A0005", 2, D(2020, 4, 1), None, "release_start"),
        ("A0006", 1, old, T, "added_date"),
        ("A0006", 2, D(2020, 7, 1), None, "added_date"),
        ("A0007", 1, old, None, "added_date"),
        ("A0008", 1, old, D(2020, 3, 31), "added_date"),
        ("A0008", 2, D(2020, 4, 1), None, "release_start"),  # an undated change
        ("A0009", 1, old, D(2020, 4, 30), "added_date"),
        ("A0009", 2, D(2020, 5, 1), None, "action_effective_date"),  # a dated change
        ("A0010", 1, old, D(2020, 6, 30), "added_date"),
        ("A0010", 2, D(2020, 7, 1), None, "release_start"),
        ("A0011", 1, old, D(2020, 9, 30), "added_date"),
        ("A0011", 2, D(2020, 10, 1), None, "release_start"),
        ("A0012", 1, old, D(2020, 3, 31), "added_date"),
        ("A0012", 2, D(2020, 4, 1), None, "added_date"),
        ("A0013", 1, old, D(2020, 2, 29), "added_date"),  # the later, retroactive termination
        ("A0013", 2, D(2020, 3, 1), D(2020, 2, 29), "termination_date"),
        ("A0014", 1, D(2020, 5, 15), None, "added_date"),
    ]


def test_episodes_start_on_reuse_and_on_redefinition_in_place(con) -> None:
    rows = con.sql(
        "SELECT code, episode, started_by, first_release, last_release, valid_from_date, "
        "valid_to_date, ended_by, long_description FROM code_episodes "
        "WHERE code IN ('A0006', 'A0012', 'A0014')").fetchall()
    old = D(2000, 1, 1)
    assert rows == [
        ("A0006", 1, "in_first_release", Q1, Q1, old, T, "dropped", "The old meaning"),
        ("A0006", 2, "reused", Q3, Q4, D(2020, 7, 1), None, None, "A brand new meaning"),
        ("A0012", 1, "in_first_release", Q1, Q1, old, D(2020, 3, 31), "redefined", "Old sense"),
        ("A0012", 2, "redefined", Q2, Q4, D(2020, 4, 1), None, None, "New sense"),
        ("A0014", 1, "added", Q3, Q4, D(2020, 5, 15), None, None, "Long description of A0014"),
    ]


AS_OF = {  # (date, known_at) -> codes in force
    (D(2020, 3, 15), None): ["A0001", "A0003", "A0004", "A0007", "A0008", "A0009", "A0010",
                             "A0011", "A0012"],
    # Q1 did not yet know that CMS would terminate A0013 on 2020-02-29.
    (D(2020, 3, 15), Q1): ["A0001", "A0003", "A0004", "A0007", "A0008", "A0009", "A0010",
                           "A0011", "A0012", "A0013"],
    # A0014 was added on 2020-05-15: only the Q3 file says so.
    (D(2020, 6, 1), None): ["A0001", "A0002", "A0005", "A0007", "A0008", "A0009", "A0010",
                            "A0011", "A0012", "A0014"],
    (D(2020, 6, 1), Q2): ["A0001", "A0002", "A0005", "A0007", "A0008", "A0009", "A0010",
                          "A0011", "A0012"],
    (D(2020, 8, 1), None): ["A0001", "A0002", "A0005", "A0006", "A0007", "A0008", "A0009",
                            "A0010", "A0011", "A0012", "A0014"],
}


@pytest.mark.parametrize(("day", "known_at"), list(AS_OF))
def test_hcpcs_as_of(con, day, known_at) -> None:
    known = "NULL" if known_at is None else f"'{known_at}'"
    assert _codes(con, f"SELECT code FROM hcpcs_as_of(DATE '{day}', known_at := {known})"
                  ) == AS_OF[(day, known_at)]


def test_as_published_answers_from_the_file_in_force(con) -> None:
    assert _codes(con, "SELECT code FROM hcpcs_as_published(DATE '2020-06-01')") == [
        "A0001", "A0002", "A0005", "A0007", "A0008", "A0009", "A0010", "A0011", "A0012"]
    assert con.sql("SELECT DISTINCT release_id FROM hcpcs_as_published('2020-06-01')"
                   ).fetchall() == [(Q2,)]


@pytest.mark.parametrize(("query", "message"), [
    ("hcpcs_as_of(DATE '2019-12-31')",
     "2019-12-31 is before 2020-01-01, the first day the loaded releases cover (2020-Q1)"),
    ("hcpcs_as_of(DATE '2021-01-01')", "2021-01-01 is after 2020-12-31, the last day of 2020-Q4"),
    ("hcpcs_as_of(DATE '2020-05-01', known_at := '2020-Q1')",
     "2020-05-01 is after 2020-03-31, the last day of 2020-Q1"),
    ("hcpcs_as_of(DATE '2020-05-01', known_at := '2019-Q4')",
     "known_at 2019-Q4 is not a loaded release"),
    ("hcpcs_as_published(DATE '2010-01-01')", "2010-01-01 is before 2020-01-01"),
])
def test_dates_the_releases_cannot_answer_are_refused(con, query, message) -> None:
    with pytest.raises(duckdb.Error, match=re.escape(message)):
        con.sql(f"SELECT count(*) FROM {query}").fetchall()


def test_as_of_gives_the_meaning_in_force_on_that_date(con) -> None:
    q = "SELECT long_description FROM hcpcs_as_of(DATE '{}') WHERE code = '{}'"
    assert con.sql(q.format("2020-02-01", "A0008")).fetchone() == ("Widget, small",)
    assert con.sql(q.format("2020-06-01", "A0008")).fetchone() == ("Widget, large",)
    assert con.sql(q.format("2020-03-31", "A0012")).fetchone() == ("Old sense",)
    assert con.sql(q.format("2020-04-01", "A0012")).fetchone() == ("New sense",)


def test_silent_changes_include_removals_without_termination(con) -> None:
    assert con.sql("SELECT release_id, code, change_type FROM code_changes WHERE silent"
                   ).fetchall() == [(Q2, "A0004", "dropped"),
                                    (Q2, "A0008", "long_description_changed"),
                                    (Q2, "A0013", "discontinued")]


def test_every_object_and_column_is_commented(con) -> None:
    tables = {"releases", "codes", "code_history", "code_changes", "validation_results",
              "change_types", "findings", "repairs", "reconciliation", "waivers",
              "transactions", "code_replacements"}
    rows = con.sql("SELECT table_name, comment FROM duckdb_tables()").fetchall()
    assert tables <= {t for t, _ in rows}
    assert [t for t, c in rows if not c] == []
    views = con.sql("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall()
    assert {v for v, _ in views} == {"codes_current", "code_pages", "code_changes_decoded",
                                     "code_flags", "code_episodes", "release_summary",
                                     "action_reconciliation"}
    assert [v for v, c in views if not c] == []
    missing = con.sql(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE NOT internal "
        "AND (comment IS NULL OR comment = '')").fetchall()
    assert missing == []
    macros = con.sql("SELECT function_name, comment FROM duckdb_functions() "
                     "WHERE function_type IN ('macro', 'table_macro') AND NOT internal").fetchall()
    assert {m for m, _ in macros} == {
        "hcpcs_as_of", "hcpcs_as_published", "hcpcs_code", "hcpcs_covered", "hcpcs_known_seq",
        "hcpcs_release_on", "hcpcs_versions"}
    assert [m for m, c in macros if not c] == []


def test_release_summary_counts_announced_beside_observed(con) -> None:
    rows = con.sql(
        "SELECT release_id, announced_a, announced_d, added, discontinued, dropped, reactivated, "
        "reused, redefined, codes_changed, field_changes, silent_changes, silent_removals "
        "FROM release_summary").fetchall()
    assert rows == [
        (Q1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        (Q2, 2, 1, 1, 2, 2, 1, 0, 1, 9, 2, 3, 1),
        (Q3, 2, 0, 1, 0, 0, 0, 1, 0, 3, 1, 0, 0),
        (Q4, 0, 0, 0, 0, 1, 0, 0, 0, 2, 2, 0, 0),
    ]


def test_queries(con) -> None:
    summary = queries.release_summary(con)
    assert summary.select("release_id", "added", "discontinued", "dropped", "redefined",
                          "silent_changes").fetchall() == [
        (Q1, 0, 0, 0, 0, 0), (Q2, 1, 2, 2, 1, 3), (Q3, 1, 0, 0, 0, 0), (Q4, 0, 0, 1, 0, 0)]
    between = queries.changes_between(con, Q2, Q4)
    assert between.select("release_id", "code", "change_type").fetchall() == [
        (Q3, "A0006", "reused"), (Q3, "A0010", "pricing_indicators_changed"),
        (Q3, "A0014", "added"), (Q4, "A0003", "dropped"), (Q4, "A0011", "coverage_code_changed"),
        (Q4, "A0011", "long_description_changed")]
    timeline = queries.code_timeline(con, "A0006")
    assert timeline.select("episode", "version", "valid_from_release", "change_type",
                           "long_description").fetchall() == [
        (1, 1, Q1, None, "The old meaning"),
        (2, 2, Q3, "reused", "A brand new meaning")]
    page = queries.code_page(con, "A0008", Q1)
    assert page.select("release_id", "long_description").fetchall() == [(Q1, "Widget, small")]
    assert queries.code_page(con, "A0008").select("release_id").fetchall() == [(Q4,)]
    # A code gone from the latest release: its last page, in SQL as in the CLI.
    assert queries.code_page(con, "A0004").select("release_id").fetchall() == [(Q1,)]
    assert con.sql("SELECT release_id FROM hcpcs_code('A0003')").fetchall() == [(Q3,)]


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


def test_a_later_release_can_end_a_version_earlier(tmp_path: Path) -> None:
    """C0001 is reworded silently in Q2, then Q3 terminates it retroactively on 2020-02-29:
    known now, its first version ended then; as Q2 knew it, on 2020-03-31."""
    releases = {
        Q1: [{"code": "C0001"}, {"code": "C0002"}],
        Q2: [{"code": "C0001", "long_description": "Reworded"},
             {"code": "C0002", "action_code": "P", "anesthesia_base_units": 5}],
        Q3: [{"code": "C0001", "long_description": "Reworded", "termination_date": D(2020, 2, 29)},
             {"code": "C0002", "anesthesia_base_units": 5}],
    }
    for rid, rows in releases.items():
        publish(tmp_path, rid, codes_frame(rows))
    history.rebuild(tmp_path)
    with duckdb.connect(str(tmp_path / history.DB_NAME), read_only=True) as con:
        assert con.sql("SELECT version, valid_from_date, valid_to_date FROM code_history "
                       "WHERE code = 'C0001'").fetchall() == [
            (1, D(2000, 1, 1), D(2020, 2, 29)), (2, D(2020, 4, 1), D(2020, 2, 29)),
            (3, D(2020, 4, 1), D(2020, 2, 29))]
        assert con.sql("SELECT version, valid_to_date FROM hcpcs_versions(known_at := '2020-Q2') "
                       "WHERE code = 'C0001' ORDER BY version").fetchall() == [
            (1, D(2020, 3, 31)), (2, None)]
        in_march = "SELECT code FROM hcpcs_as_of(DATE '2020-03-15'{})"
        assert con.sql(in_march.format("")).fetchall() == [("C0002",)]
        assert con.sql(in_march.format(", known_at := '2020-Q2'")).fetchall() == [
            ("C0001",), ("C0002",)]
        assert con.sql("SELECT change_type, old_value, new_value, old_number, new_number FROM "
                       "code_changes WHERE code = 'C0002'").fetchall() == [
            ("anesthesia_base_units_changed", "0", "5", 0, 5)]


def test_a_new_meaning_needs_a_later_add_date_or_a_new_text(tmp_path: Path) -> None:
    releases = {
        Q1: [{"code": "C0003", "long_description": "Old text"},
             {"code": "C0004", "long_description": "First meaning"}, {"code": "C0005"}],
        # C0003: an earlier add date with a new text is a correction, not a new meaning
        Q2: [{"code": "C0003", "added_date": D(1999, 6, 1), "long_description": "Fixed text"}],
        # C0004 comes back with its add date but another meaning: reused; C0005 as it was
        Q3: [{"code": "C0003", "added_date": D(1999, 6, 1), "long_description": "Fixed text"},
             {"code": "C0004", "long_description": "Second meaning"}, {"code": "C0005"}],
    }
    for rid, rows in releases.items():
        publish(tmp_path, rid, codes_frame(rows))
    history.rebuild(tmp_path)
    with duckdb.connect(str(tmp_path / history.DB_NAME), read_only=True) as con:
        assert con.sql("SELECT release_id, code, change_type FROM code_changes").fetchall() == [
            (Q2, "C0003", "added_date_changed"), (Q2, "C0003", "long_description_changed"),
            (Q2, "C0004", "dropped"), (Q2, "C0005", "dropped"),
            (Q3, "C0004", "reused"), (Q3, "C0005", "reactivated")]
        assert con.sql("SELECT code, count(*) FROM code_episodes GROUP BY 1 ORDER BY 1"
                       ).fetchall() == [("C0003", 1), ("C0004", 2), ("C0005", 1)]


def test_releases_published_with_padded_lists_read_as_written(tmp_path: Path) -> None:
    """Schema 1 padded every repeating group with NULLs to the layout's maximum; a data
    directory holding such a release next to newer ones shows no change that is not one."""
    padded = codes_frame([{"code": "C0006", "pricing_indicators": ["00", None, None, None],
                           "types_of_service": ["9", None, None, None, None]}])
    publish(tmp_path, Q1, padded)
    manifest = DataDir(tmp_path).release(Q1) / "manifest.json"
    doc = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**doc, "schema_version": 1}))
    publish(tmp_path, Q2, codes_frame([{"code": "C0006"}]))
    history.rebuild(tmp_path)
    with duckdb.connect(str(tmp_path / history.DB_NAME), read_only=True) as con:
        assert con.sql("SELECT release_id, pricing_indicators, types_of_service, "
                       "cross_references FROM codes").fetchall() == [
            (Q1, ["00"], ["9"], []), (Q2, ["00"], ["9"], [])]
        assert con.sql("SELECT count(*) FROM code_changes").fetchone() == (0,)


def test_values_table_keeps_types_order_and_any_text(tmp_path: Path) -> None:
    types = {"k": "VARCHAR", "d": "DATE", "n": "BIGINT", "b": "BOOLEAN", "j": "JSON"}
    rows = [{"k": "O'Brien's; DROP TABLE t; --", "d": D(2020, 2, 29), "n": 2, "b": True,
             "j": '{"a": [1, "x"]}'},
            {"k": None, "d": None, "n": 1, "b": None, "j": None}]
    with duckdb.connect(str(tmp_path / "t.duckdb")) as con:
        execute_all(con, values_table("t", types, rows, "n"))
        execute_all(con, values_table("empty", types, [], "n"))
        assert con.sql("SELECT * FROM t").fetchall() == [
            (None, None, 1, None, None),
            ("O'Brien's; DROP TABLE t; --", D(2020, 2, 29), 2, True, '{"a": [1, "x"]}')]
        assert con.sql("SELECT table_name, column_name, data_type FROM duckdb_columns() "
                       "WHERE NOT internal ORDER BY table_name DESC, column_index").fetchall() == [
            (table, c, t) for table in ("t", "empty") for c, t in types.items()]
        assert con.sql("SELECT count(*) FROM empty").fetchone() == (0,)


def test_execute_all_is_one_transaction(tmp_path: Path) -> None:
    """All of the statements or none: a failure undoes the ones before it."""
    db = str(tmp_path / "t.duckdb")
    with duckdb.connect(db) as con, pytest.raises(duckdb.CatalogException, match="missing"):
        execute_all(con, ["CREATE TABLE a (x INTEGER)", "INSERT INTO a VALUES (1)",
                          "INSERT INTO missing VALUES (1)"])
    with duckdb.connect(db) as con:
        assert con.sql("SELECT table_name FROM duckdb_tables()").fetchall() == []
        execute_all(con, ["CREATE TABLE a (x INTEGER)", "INSERT INTO a VALUES (1)"])
        assert con.sql("SELECT * FROM a").fetchall() == [(1,)]


def test_tables_of_the_published_files_are_read_from_each_release(tmp_path: Path) -> None:
    """A release published before a table existed has no file, hence no rows in it; a table no
    release has a file of is there, empty, with its columns; a damaged file is named."""
    publish(tmp_path, Q1, codes_frame(R[Q1]), report={"A0001": "N"})
    publish(tmp_path, Q2, codes_frame(R[Q2]), report={"A0011": "N", "A0002": "A"})
    (DataDir(tmp_path).release(Q1) / "transactions.parquet").unlink()
    for rid in (Q1, Q2):
        (DataDir(tmp_path).release(rid) / "repairs.parquet").unlink()
    history.rebuild(tmp_path)
    with duckdb.connect(str(tmp_path / history.DB_NAME), read_only=True) as con:
        assert con.sql("SELECT * FROM transactions").fetchall() == [
            (Q2, "A0002", "A", "action A", 2), (Q2, "A0011", "N", "action N", 3)]
        assert con.sql("SELECT count(*) FROM repairs").fetchone() == (0,)
        assert con.sql("SELECT column_name, data_type FROM duckdb_columns() "
                       "WHERE table_name = 'repairs' ORDER BY column_index").fetchall() == [
            ("release_id", "VARCHAR"), ("code", "VARCHAR"), ("field", "VARCHAR"),
            ("raw_value", "VARCHAR"), ("repaired_value", "VARCHAR"), ("evidence", "VARCHAR"),
            ("found_value", "VARCHAR"), ("applied", "BOOLEAN")]
    findings = DataDir(tmp_path).release(Q2) / "findings.parquet"
    findings.write_bytes(findings.read_bytes()[:100])
    with pytest.raises(DamagedFileError) as err:
        history.rebuild(tmp_path)
    assert str(err.value) == (
        f"{DataDir(tmp_path).releases}: cannot be read (Invalid Input Error: No magic bytes "
        f"found at end of file '{findings}'); `hcpcs doctor` checks every published file against "
        f"its manifest, `{REPAIR}` quarantines what is damaged so the next run derives it again")


def test_rebuild_summary_and_currency_read_a_database_others_have_open(tmp_path: Path) -> None:
    """The summary a rebuild returns counts what the database holds (2020-Q1: 12 codes, 2020-Q2:
    11, of which 7 bring a new version), and both it and ``database_is_current`` open the
    database read-only: an analyst's open connection does not stop a run."""
    data = tmp_path / "data"
    data.mkdir()
    with pytest.raises(ValueError, match=f"^{re.escape(str(data))}: no published release to "):
        history.rebuild(data)
    assert not history.database_is_current(data)  # no database yet
    for rid in (Q1, Q2):
        publish(data, rid, codes_frame(R[rid]))
    summary = history.rebuild(data)
    db = DataDir(data).database
    assert summary == history.RebuildSummary(
        releases=2, effective_releases=2, codes=23, versions=19, changes=9,
        changes_by_type={"added": 1, "discontinued": 2, "dropped": 2, "reactivated": 1,
                         "redefined": 1, "long_description_changed": 1,
                         "short_description_changed": 1},
        database=db)
    with duckdb.connect(str(db), read_only=True):
        assert history.summarize(db) == summary
        assert history.database_is_current(data)
    publish(data, Q3, codes_frame(R[Q3]))
    assert not history.database_is_current(data)  # a release it does not hold
    history.rebuild(data)
    assert history.database_is_current(data)
    with duckdb.connect(str(db)) as con:  # as another version of the pipeline would build it
        con.execute("ALTER TABLE releases ADD COLUMN colour TEXT")
    assert not history.database_is_current(data)
    db.write_bytes(b"not a database")
    assert not history.database_is_current(data)


def test_every_field_change_type_says_how_values_are_compared() -> None:
    from contracts.layout import FIELDS
    from warehouse.changes import _field_description

    assert _field_description(FIELDS["short_description"]) == (
        "Value of short_description differs from the previous release (whitespace-only "
        "differences ignored).")
    assert _field_description(FIELDS["statute"]) == (
        "Value of statute differs from the previous release.")
