"""Announced against observed (action_reconciliation) and replacement chains (code_replacements),
on small synthetic releases where each reason and each chain end is made to happen once."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tests.warehouse_synth import D, codes_frame, publish
from warehouse import announcements, history, replacements

T = D(2020, 12, 31)
STEADY = [  # unchanged in every release: the replacement chains (latest knowledge)
    {"code": "B0013"},
    {"code": "B0014", "termination_date": T, "cross_references": ["99213"]},
    {"code": "B0015", "termination_date": T, "cross_references": ["B0016"]},
    {"code": "B0016", "termination_date": T},
    {"code": "B0017", "termination_date": T, "cross_references": [None, "B0005"]},
    {"code": "B0018", "termination_date": T, "cross_references": ["B0019"]},
    {"code": "B0019", "termination_date": T, "cross_references": ["B0018"]},
]
Q1 = [
    {"code": "B0001", "action_code": "A", "added_date": D(2021, 1, 1)},
    {"code": "B0005"},
    {"code": "B0006"},
    {"code": "B0007"},
    {"code": "B0008"},
    {"code": "B0009"},
    {"code": "B0010"},
    {"code": "B0011"},
    {"code": "B0012"},
    {"code": "B0020"},
    *STEADY,
]
Q2 = [
    {"code": "B0001", "added_date": D(2021, 1, 1)},
    {"code": "B0002", "action_code": "A", "added_date": D(2021, 4, 1)},
    {"code": "B0003", "action_code": "D", "added_date": D(2021, 1, 1),
     "termination_date": D(2021, 3, 31)},
    {"code": "B0004", "added_date": D(2021, 2, 1)},
    {"code": "B0006", "long_description": "Changed, report silent"},
    {"code": "B0007", "short_description": "Changed under N"},
    {"code": "B0008", "action_code": "C"},
    {"code": "B0009", "action_code": "D", "termination_date": D(2021, 3, 31),
     "cross_references": ["B0012"]},
    {"code": "B0010", "action_code": "S", "short_description": "Renamed",
     "pricing_indicators": ["11"]},
    {"code": "B0011"},
    {"code": "B0012"},
    {"code": "B0020", "action_code": "S", "pricing_indicators": ["11"]},
    *STEADY,
]
Q4 = [  # 2021-Q3 is not loaded
    *({**r, "action_code": "N"} for r in Q2 if r["code"] not in ("B0011", "B0012")),
    {"code": "B0011", "long_description": "Changed across the gap"},
    {"code": "B0012", "action_code": "D", "termination_date": D(2021, 9, 30),
     "cross_references": ["B0013"]},
]
REPORTS = {
    "2021-Q1": {"B0001": "A", **{r["code"]: "N" for r in Q1 if r["code"] != "B0001"}},
    "2021-Q2": {"B0002": "A", "B0003": "D", "B0004": "N", "B0007": "N", "B0008": "C",
                "B0009": "D", "B0010": "S", "B0020": "S",
                **{r["code"]: "N" for r in STEADY}, "B0001": "N", "B0011": "N", "B0012": "N"},
}


@pytest.fixture(scope="module")
def con(tmp_path_factory) -> duckdb.DuckDBPyConnection:
    data: Path = tmp_path_factory.mktemp("recon")
    publish(data, "2021-Q1", codes_frame(Q1), REPORTS["2021-Q1"])
    publish(data, "2021-Q2", codes_frame(Q2), REPORTS["2021-Q2"])
    publish(data, "2021-Q4", codes_frame(Q4))  # no report: its records' action codes
    history.rebuild(data)
    return duckdb.connect(str(data / history.DB_NAME), read_only=True)


EXPECTED = [
    ("2021-Q1", "B0001", "transaction_report", "A", [], "previous_not_loaded"),
    ("2021-Q2", "B0002", "transaction_report", "A", ["added"], "agrees"),
    ("2021-Q2", "B0003", "transaction_report", "D", ["added", "discontinued"],
     "added_already_terminated"),
    ("2021-Q2", "B0004", "transaction_report", "N", ["added"], "absent_from_previous_file"),
    ("2021-Q2", "B0005", "transaction_report", None, ["dropped"], "left_the_file"),
    ("2021-Q2", "B0006", "transaction_report", None, ["long_description_changed"],
     "report_omits_code"),
    ("2021-Q2", "B0007", "transaction_report", "N", ["short_description_changed"],
     "changed_under_action_n"),
    ("2021-Q2", "B0008", "transaction_report", "C", [], "announced_not_observed"),
    ("2021-Q2", "B0009", "transaction_report", "D", ["cross_references_changed", "discontinued"],
     "cleared_on_discontinuation"),
    ("2021-Q2", "B0010", "transaction_report", "S",
     ["pricing_indicators_changed", "short_description_changed"], "changed_beyond_action"),
    ("2021-Q2", "B0020", "transaction_report", "S", ["pricing_indicators_changed"],
     "unclassified"),
    ("2021-Q4", "B0011", "record", "N", ["long_description_changed"], "previous_not_loaded"),
    # D does not announce a cross reference change, and 2021-Q3 is not loaded
    ("2021-Q4", "B0012", "record", "D", ["cross_references_changed", "discontinued"],
     "previous_not_loaded"),
]


def test_each_announcement_is_lined_up_with_what_changed(con) -> None:
    rows = con.sql("SELECT release_id, code, announced_in, announced, observed, reason "
                   "FROM action_reconciliation").fetchall()
    assert rows == EXPECTED
    assert con.sql("SELECT DISTINCT reason = 'agrees' AS r, agrees FROM action_reconciliation "
                   "ORDER BY 1").fetchall() == [(False, False), (True, True)]


def test_every_reason_is_made_to_happen() -> None:
    assert sorted({r[-1] for r in EXPECTED}) == sorted(announcements.CLASSES)


def test_changes_carry_the_reported_action(con) -> None:
    assert con.sql("SELECT code, change_type, action_code, reported_action FROM code_changes "
                   "WHERE release_id = '2021-Q2' AND code IN ('B0004', 'B0006', 'B0010') "
                   "ORDER BY ALL").fetchall() == [
        ("B0004", "added", "N", "N"),
        ("B0006", "long_description_changed", "N", None),
        ("B0010", "pricing_indicators_changed", "S", "S"),
        ("B0010", "short_description_changed", "S", "S")]


def test_replacement_chains_are_followed_to_their_end(con) -> None:
    rows = con.sql("SELECT code, position, replaced_by, replacement, chain, hops, "
                   "replacement_status FROM code_replacements").fetchall()
    assert rows == [
        ("B0009", 1, "B0012", "B0013", ["B0009", "B0012", "B0013"], 2, "in_force"),
        ("B0012", 1, "B0013", "B0013", ["B0012", "B0013"], 1, "in_force"),
        ("B0014", 1, "99213", "99213", ["B0014", "99213"], 1, "not_level_ii"),
        ("B0015", 1, "B0016", "B0016", ["B0015", "B0016"], 1, "terminated"),
        ("B0017", 2, "B0005", "B0005", ["B0017", "B0005"], 1, "dropped"),
        ("B0018", 1, "B0019", "B0019", ["B0018", "B0019"], 1, "terminated"),  # a loop stops
        ("B0019", 1, "B0018", "B0018", ["B0019", "B0018"], 1, "terminated"),
    ]
    assert sorted({r[-1] for r in rows}) == sorted(replacements.STATUSES)


def test_an_annual_file_is_compared_with_the_previous_annual_file(tmp_path: Path) -> None:
    """Before 2020 CMS's annual files (Q1) are reconciled with the previous year's; a gap of a
    quarter or more is not."""
    quiet = {"code": "B0100"}
    reworded = {"code": "B0100", "long_description": "Reworded under N"}
    publish(tmp_path, "2018-Q1", codes_frame([quiet]))
    publish(tmp_path, "2019-Q1", codes_frame([reworded]))
    publish(tmp_path, "2020-Q2", codes_frame([quiet]))
    history.rebuild(tmp_path)
    with duckdb.connect(str(tmp_path / history.DB_NAME), read_only=True) as con:
        assert con.sql("SELECT release_id, reason FROM action_reconciliation").fetchall() == [
            ("2019-Q1", "changed_under_action_n"), ("2020-Q2", "previous_not_loaded")]
