"""Real CMS releases 2016, 2017 and 2019, published in shuffled order, against CMS's own report."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import zipfile
from pathlib import Path

import duckdb
import pytest

from contracts.release import ReleaseFile
from tests.conftest import REAL_RELEASES
from tests.warehouse_synth import no_findings
from transforms.transaction_report import parse_transaction_report
from warehouse import history, queries
from warehouse.publish import publish_release

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def con(cms_dir: Path, real_parsed, tmp_path_factory) -> duckdb.DuckDBPyConnection:
    data = tmp_path_factory.mktemp("real")
    order = list(REAL_RELEASES)
    random.Random(2017).shuffle(order)
    assert order != sorted(order)
    for rid in order:
        path = cms_dir / REAL_RELEASES[rid][0]
        parsed = real_parsed[rid]
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        file = ReleaseFile(rid, path.as_uri(), sha256=digest,
                           member_name=REAL_RELEASES[rid][1] or path.name,
                           fetched_at="2026-11-24T00:00:00+00:00")
        publish_release(data, file=file, codes=parsed.codes, rejects=parsed.rejects,
                        validation=no_findings(rid, parsed.codes))
    history.rebuild(data)
    return duckdb.connect(str(data / history.DB_NAME), read_only=True)


def test_counts_per_release(con) -> None:
    assert con.sql("SELECT release_id, history_seq, code_count, procedure_count, modifier_count, "
                   "reject_count FROM releases").fetchall() == [
        ("2016-Q1", 1, 6293, 5956, 337, 0),
        ("2017-Q1", 2, 6498, 6155, 343, 0),
        ("2019-Q1", 3, 6800, 6440, 360, 0),
    ]
    assert con.sql("SELECT count(*) FROM codes").fetchone() == (6293 + 6498 + 6800,)
    assert con.sql("SELECT count(*) FROM codes_current").fetchone() == (6800,)


def test_change_counts_2017(con) -> None:
    rows = dict(con.sql(
        "SELECT change_type, count(*) FROM code_changes WHERE release_id = '2017-Q1' "
        "GROUP BY 1").fetchall())
    assert {k: rows[k] for k in ("added", "discontinued", "dropped", "reactivated",
                                 "long_description_changed", "short_description_changed")} == {
        "added": 303, "discontinued": 175, "dropped": 98, "reactivated": 1,
        "long_description_changed": 168, "short_description_changed": 115}
    assert "reused" not in rows


def test_silent_long_description_changes_2016_to_2017(con) -> None:
    silent = con.sql(
        "SELECT code, old_value, new_value FROM code_changes WHERE release_id = '2017-Q1' "
        "AND change_type = 'long_description_changed' AND silent").fetchall()
    assert len(silent) == 37
    named = {c: (o, n) for c, o, n in silent if c in {"A4720", "C1820", "E0296", "G0281"}}
    assert sorted(named) == ["A4720", "C1820", "E0296", "G0281"]
    assert "249cc" in named["A4720"][0] and "249 cc" in named["A4720"][1]
    assert "non high-frequency" in named["C1820"][0]
    assert "non high-frequency" not in named["C1820"][1]
    assert "adjustments). without" in named["E0296"][0]
    assert "adjustments), without" in named["E0296"][1]
    assert "statsis" in named["G0281"][0] and "stasis ulcers" in named["G0281"][1]
    assert con.sql("SELECT DISTINCT action_code, action_agrees FROM code_changes WHERE code IN "
                   "('A4720','C1820','E0296','G0281') AND release_id = '2017-Q1' AND "
                   "change_type = 'long_description_changed'").fetchall() == [("N", False)]


def test_2017_change_log_agrees_with_cms_transaction_report(cms_dir: Path, con) -> None:
    with zipfile.ZipFile(cms_dir / REAL_RELEASES["2017-Q1"][0]) as zf:
        report = parse_transaction_report(zf.read("HCPCS2017_Trans Report_ChangesbyAction.prn"))
    assert report.height == 6498
    table = {r["cms_actions"]: r for r in queries.action_agreement(con, "2017-Q1", report)
             .iter_rows(named=True)}
    counts = {a: (r["cms_codes"], r["our_codes"], r["both"], len(r["cms_only"]),
                  len(r["ours_only"])) for a, r in table.items()}
    assert counts == {
        "A": (278, 303, 278, 0, 25),
        "D": (147, 175, 146, 1, 29),
        "CB": (125, 168, 125, 0, 43),
        "S": (2, 115, 2, 0, 113),
        "R": (1, 1, 1, 0, 0),
        "P": (38, 50, 38, 0, 12),
        "T": (4, 6, 4, 0, 2),
        "F": (1, 1, 1, 0, 0),
    }
    # Every disagreement on adds and discontinuations has one of these explanations:
    born_terminated = [f"C{n}" for n in (9137, 9138, 9139, 9461, *range(9470, 9482))] + ["Q9981"]
    added_after_2016_file = [f"G0{n}" for n in (477, 478, 479, 480, 481, 482, 483, 498)]
    assert table["A"]["ours_only"] == sorted(born_terminated + added_after_2016_file)
    codes_2017 = con.sql("SELECT code, added_date, termination_date, action_code FROM codes "
                         "WHERE release_id = '2017-Q1'").pl().rows_by_key("code", unique=True)
    assert {codes_2017[c][1] for c in born_terminated} == {dt.date(2016, 12, 31)}
    assert {codes_2017[c][2] for c in born_terminated} == {"D"}  # CMS flags the last action
    assert {codes_2017[c] for c in added_after_2016_file} == {
        (dt.date(2016, 1, 1), None, "N")}
    # G0154 was already terminated in 2016; 2017 moved its termination date, under action D.
    assert table["D"]["cms_only"] == ["G0154"]
    assert con.sql("SELECT change_type, old_value, new_value, action_agrees FROM code_changes "
                   "WHERE release_id = '2017-Q1' AND code = 'G0154'").fetchall() == [
        ("termination_date_changed", "2015-12-31", "2016-02-29", True)]
    # Retroactive terminations CMS made under action N: silent discontinuations.
    assert table["D"]["ours_only"] == ["G0464"] + [f"G60{n}" for n in range(30, 59) if n != 33]
    assert con.sql("SELECT DISTINCT new_value, action_code, silent FROM code_changes WHERE "
                   "release_id = '2017-Q1' AND change_type = 'discontinued' AND action_code = 'N'"
                   ).fetchall() == [("2015-12-31", "N", True)]
    # Long description changes CMS did not flag C/B: 37 under N (silent), 4 under D, 2 under P.
    assert dict(con.sql(
        "SELECT action_code, count(*) FROM code_changes WHERE release_id = '2017-Q1' AND "
        "change_type = 'long_description_changed' AND action_code NOT IN ('C', 'B') GROUP BY 1"
    ).fetchall()) == {"N": 37, "D": 4, "P": 2}


def test_as_of_and_history_on_real_data(con) -> None:
    n = con.sql("SELECT count(*) FROM hcpcs_as_of(DATE '2017-06-01')").fetchone()
    active_2017 = con.sql("SELECT count(*) FROM codes WHERE release_id = '2017-Q1' AND "
                          "(termination_date IS NULL OR termination_date >= DATE '2017-06-01') "
                          "AND added_date <= DATE '2017-06-01'").fetchone()
    assert n == active_2017
    assert con.sql("SELECT count(*) FROM code_history WHERE code = 'A4720'").fetchone() == (2,)
    assert con.sql("SELECT count(DISTINCT code) FROM code_history").fetchone() == con.sql(
        "SELECT count(DISTINCT code) FROM codes").fetchone()
