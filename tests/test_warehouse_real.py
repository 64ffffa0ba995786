"""Real CMS releases 2016, 2017 and 2019, published in shuffled order, against CMS's own report."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import duckdb
import pytest

from contracts.release import ReleaseFile
from tests.conftest import REAL_RELEASES
from tests.warehouse_synth import no_findings
from warehouse import history
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


def test_as_of_and_history_on_real_data(con) -> None:
    # Known at 2019: on 2017-06-01, the codes of the 2017 file still in force by the 2019 file's
    # dates, and the codes the 2019 file adds with a 2017 date (none of them as of 2017-01-01).
    n = con.sql("SELECT count(*) FROM hcpcs_as_of(DATE '2017-06-01')").fetchone()
    assert n == (5972,)
    assert con.sql("SELECT count(*) FROM hcpcs_as_published(DATE '2017-06-01')").fetchone() == (
        5968,)
    with pytest.raises(duckdb.InvalidInputException, match="2010-01-01 is before 2016-01-01"):
        con.sql("SELECT count(*) FROM hcpcs_as_of(DATE '2010-01-01')").fetchall()
    assert con.sql("SELECT count(*) FROM code_history WHERE code = 'A4720'").fetchone() == (2,)
    assert con.sql("SELECT count(DISTINCT code) FROM code_history").fetchone() == con.sql(
        "SELECT count(DISTINCT code) FROM codes").fetchone()
