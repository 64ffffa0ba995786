"""What an analyst asks of the history, answered on every real release in ../shared/cms (2016,
2017, 2019 annual files; April, July, October 2020 workbooks, each with its transaction report)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from tests.test_flows import hcpcs, query
from tests.warehouse_synth import publish
from warehouse import history
from warehouse.publish import load_codes

pytestmark = pytest.mark.realdata
D = dt.date


def _codes(data_dir: Path, sql: str) -> set[str]:
    return {c for (c,) in query(data_dir, sql)}


def test_as_of_a_mid_year_date_uses_what_later_releases_know(backfill) -> None:
    data_dir, _ = backfill
    known = _codes(data_dir, "SELECT code FROM hcpcs_as_of(DATE '2017-06-01')")
    published = _codes(data_dir, "SELECT code FROM hcpcs_as_published(DATE '2017-06-01')")
    # added in 2017 after the annual file was made: only the 2019 file says so
    assert sorted(known - published) == ["C1842", "C9484", "C9485", "C9486", "C9487", "C9488",
                                         "G0659"]
    # in force as the 2017 file said, but the 2019 file terminates them on 2016-12-31
    assert sorted(published - known) == ["G0477", "G0478", "G0479"]
    versions = ("SELECT valid_to_date FROM hcpcs_versions(known_at := {}) WHERE code = 'G0477' "
                "ORDER BY version")
    assert query(data_dir, versions.format("'2017-Q1'")) == [(None,)]
    assert query(data_dir, versions.format("NULL")) == [(D(2016, 12, 31),), (D(2016, 12, 31),)]


def test_known_at_answers_as_that_release_knew(backfill) -> None:
    data_dir, _ = backfill
    april = _codes(data_dir, "SELECT code FROM hcpcs_as_of('2020-05-01', known_at := '2020-Q2')")
    latest = _codes(data_dir, "SELECT code FROM hcpcs_as_of('2020-05-01')")
    assert (len(april), len(latest)) == (6481, 6485)
    # added with an April 2020 date after the April file was made
    assert sorted(latest - april) == ["C9803", "G2025", "U0003", "U0004"]
    # in its own quarter, a release knew what its file said
    assert april == _codes(data_dir, "SELECT code FROM hcpcs_as_published('2020-05-01')")


@pytest.mark.parametrize(("sql", "message"), [
    ("hcpcs_as_of(DATE '2010-01-01')",
     "hcpcs: 2010-01-01 is before 2016-01-01, the first day the loaded releases cover (2016-Q1)"),
    ("hcpcs_as_of(DATE '2021-02-01')",
     "hcpcs: 2021-02-01 is after 2020-12-31, the last day of 2020-Q4"),
    ("hcpcs_as_of(DATE '2017-06-01', known_at := '2017-Q1')",
     "hcpcs: 2017-06-01 is after 2017-03-31, the last day of 2017-Q1"),
    ("hcpcs_as_published(DATE '2010-01-01')", "hcpcs: 2010-01-01 is before 2016-01-01"),
])
def test_a_date_the_releases_cannot_answer_is_refused(backfill, sql, message) -> None:
    data_dir, _ = backfill
    with pytest.raises(duckdb.InvalidInputException, match=re.escape(message)):
        query(data_dir, f"SELECT count(*) FROM {sql}")


def test_silent_removals_are_flagged_and_silent_is_never_null(backfill) -> None:
    data_dir, _ = backfill
    assert query(data_dir, "SELECT release_id, code FROM code_changes WHERE silent AND "
                           "change_type = 'dropped' ORDER BY ALL") == [
        ("2017-Q1", "G0298"), ("2017-Q1", "G9668"), ("2019-Q1", "DA")]
    assert query(data_dir, "SELECT count(*) FROM code_changes WHERE silent IS NULL") == [(0,)]
    # DA, removed in error in 2019, came back in April 2020 without a word, with its meaning
    assert query(data_dir, "SELECT release_id, change_type, field, old_value IS NULL, "
                           "new_value, action_code, silent FROM code_changes WHERE code = 'DA' "
                           "ORDER BY ALL") == [
        ("2019-Q1", "dropped", None, False, None, None, True),
        ("2020-Q2", "reactivated", None, False, "Oral health assessment by a licensed health "
         "professional other than a dentist", "N", True)]
    assert query(data_dir, "SELECT episode, version, valid_from_date, valid_to_date, "
                           "valid_from_basis FROM code_history WHERE code = 'DA'") == [
        (1, 1, D(2011, 1, 1), D(2018, 12, 31), "added_date"),
        (1, 2, D(2020, 4, 1), None, "release_start")]


def test_an_earlier_add_date_with_a_new_text_is_a_correction_not_a_new_meaning(backfill) -> None:
    data_dir, _ = backfill
    assert query(data_dir, "SELECT release_id, change_type, old_date, new_date, action_code "
                           "FROM code_changes WHERE code = 'G0300' ORDER BY ALL") == [
        ("2017-Q1", "added_date_changed", D(2016, 1, 1), D(2015, 11, 2), "N"),
        ("2017-Q1", "long_description_changed", None, None, "N")]
    assert query(data_dir, "SELECT count(*) FROM code_episodes WHERE code = 'G0300'") == [(1,)]


def test_a_current_episode_of_several_versions_has_no_end(backfill) -> None:
    """A4720's long description changed (silently) in 2017 and the code is still in force: its
    one episode has two versions, and neither an end date nor an end reason (the first
    version's end is not the episode's)."""
    data_dir, _ = backfill
    assert query(data_dir, "SELECT episode, versions, first_release, last_release, "
                           "valid_from_date, valid_to_date, ended_by, is_current "
                           "FROM code_episodes WHERE code = 'A4720'") == [
        (1, 2, "2016-Q1", "2020-Q4", D(2002, 1, 1), None, None, True)]


def test_redefinition_in_place_starts_an_episode(backfill, tmp_path: Path) -> None:
    """CMS redefined G9890 between the 2018 and 2019 annual files (action A, add date 2018-04-01).
    2018 is not in ../shared/cms, so the earlier record is the real 2019 one with an older add
    date and another description, as the 2018 file had them."""
    data_dir, _ = backfill
    real = load_codes(data_dir, "2019-Q1").filter(pl.col("code") == "G9890")
    assert real.select("added_date", "action_code").row(0) == (D(2018, 4, 1), "A")
    before = real.with_columns(added_date=pl.lit(D(2017, 1, 1)), action_code=pl.lit("N"),
                               long_description=pl.lit("An earlier quality measure"))
    publish(tmp_path, "2018-Q1", before)
    publish(tmp_path, "2019-Q1", real)
    history.rebuild(tmp_path)
    with duckdb.connect(str(tmp_path / history.DB_NAME), read_only=True) as con:
        assert con.sql("SELECT release_id, change_type, field, action_code, action_agrees, "
                       "silent FROM code_changes").fetchall() == [
            ("2019-Q1", "redefined", None, "A", True, False)]
        assert con.sql("SELECT episode, started_by, first_release, valid_from_date, "
                       "valid_to_date FROM code_episodes").fetchall() == [
            (1, "in_first_release", "2018-Q1", D(2017, 1, 1), D(2018, 3, 31)),
            (2, "redefined", "2019-Q1", D(2018, 4, 1), None)]
        meaning = "SELECT long_description FROM hcpcs_as_of(DATE '{}')"
        assert con.sql(meaning.format("2018-03-31")).fetchall() == [
            ("An earlier quality measure",)]
        assert con.sql(meaning.format("2019-03-31")).fetchall() == [
            (real["long_description"][0],)]


def test_changes_keep_typed_values_and_decode_them(backfill) -> None:
    data_dir, _ = backfill
    assert query(data_dir, "SELECT code, field, old_list, new_list, old_text, new_text, "
                           "old_meaning, new_meaning FROM code_changes_decoded "
                           "WHERE release_id = '2020-Q4' AND code = 'A4226' ORDER BY field") == [
        ("A4226", "coverage_code", None, None, "C", "I", "Carrier judgment",
         "Not payable by Medicare"),
        ("A4226", "pricing_indicators", ["99"], ["00"], None, None,
         "99: Value not established",
         "00: Service not separately priced by part B (e.g., services not covered, bundled, "
         "used by part a only, etc.)")]
    assert query(data_dir, "SELECT change_type, old_date, new_date FROM code_changes WHERE "
                           "code = 'G0477' AND field = 'termination_date'") == [
        ("discontinued", None, D(2016, 12, 31))]


def test_release_summary_gives_announced_and_observed_counts(backfill) -> None:
    data_dir, _ = backfill
    assert query(data_dir, "SELECT release_id, announced_a, announced_d, added, discontinued, "
                           "dropped, reactivated, silent_changes, silent_removals "
                           "FROM release_summary") == [
        ("2016-Q1", 236, 88, 0, 0, 0, 0, 0, 0),
        ("2017-Q1", 278, 147, 303, 175, 98, 1, 85, 2),
        ("2019-Q1", 228, 49, 410, 92, 108, 0, 461, 1),
        ("2020-Q2", 18, 1, 296, 101, 0, 1, 560, 0),  # 2020-Q1 is not loaded
        ("2020-Q3", 61, 9, 61, 9, 0, 0, 0, 0),
        ("2020-Q4", 38, 4, 38, 4, 0, 0, 0, 0)]


def test_every_disagreement_with_the_transaction_reports_is_classified(backfill) -> None:
    data_dir, _ = backfill
    assert query(data_dir, "SELECT release_id, count(*) FROM transactions GROUP BY 1 "
                           "ORDER BY 1") == [
        ("2016-Q1", 6292), ("2017-Q1", 6498), ("2019-Q1", 6800), ("2020-Q2", 7097),
        ("2020-Q3", 7158), ("2020-Q4", 7196)]
    assert query(data_dir, "SELECT release_id, reason, count(*) FROM action_reconciliation "
                           "GROUP BY ALL ORDER BY ALL") == [
        ("2016-Q1", "previous_not_loaded", 399),
        ("2017-Q1", "absent_from_previous_file", 8),
        ("2017-Q1", "added_already_terminated", 17),
        ("2017-Q1", "agrees", 557),
        ("2017-Q1", "changed_beyond_action", 5),
        ("2017-Q1", "changed_under_action_n", 70),
        ("2017-Q1", "cleared_on_discontinuation", 17),
        ("2017-Q1", "left_the_file", 98),
        ("2019-Q1", "agrees", 380),
        ("2019-Q1", "previous_not_loaded", 479),  # 2018 is not loaded
        ("2020-Q2", "agrees", 19),
        ("2020-Q2", "previous_not_loaded", 460),  # January 2020 is not loaded
        ("2020-Q3", "agrees", 69),
        ("2020-Q3", "cleared_on_discontinuation", 6),
        ("2020-Q4", "agrees", 47),
        ("2020-Q4", "cleared_on_discontinuation", 4)]
    assert query(data_dir, "SELECT announced_in, reported_text, observed, reason FROM "
                           "action_reconciliation WHERE release_id = '2017-Q1' AND "
                           "code = 'G0477'") == [
        ("transaction_report", "No Change", ["added"], "absent_from_previous_file")]


def test_discontinued_codes_lead_to_their_replacement(backfill) -> None:
    data_dir, _ = backfill
    assert query(data_dir, "SELECT replacement_status, count(*) FROM code_replacements "
                           "GROUP BY 1 ORDER BY 1") == [
        ("in_force", 150), ("not_level_ii", 30), ("terminated", 4)]
    assert query(data_dir, "SELECT replaced_by, replacement, chain, replacement_status FROM "
                           "code_replacements WHERE code = 'C9136'") == [
        ("Q9975", "J7205", ["C9136", "Q9975", "J7205"], "in_force")]


def test_code_page_sql_and_cli_agree_for_a_code_gone_from_the_file(backfill) -> None:
    data_dir, _ = backfill
    assert query(data_dir, "SELECT release_id, code FROM hcpcs_code('G0298')") == [
        ("2016-Q1", "G0298")]
    code, page = hcpcs("code", "G0298", "--data-dir", str(data_dir))
    assert code == 0
    assert page["page"]["release_id"] == "2016-Q1"


def test_2017_disagreements_with_cms_report_name_the_codes(backfill) -> None:
    data_dir, _ = backfill

    def codes(reason: str) -> list[str]:
        return [c for (c,) in query(data_dir, "SELECT code FROM action_reconciliation WHERE "
                                    f"release_id = '2017-Q1' AND reason = '{reason}'")]

    # added and terminated during 2016: first seen terminated 2016-12-31, CMS reports D
    assert codes("added_already_terminated") == [
        *(f"C{n}" for n in (9137, 9138, 9139, 9461, *range(9470, 9482))), "Q9981"]
    # add date 2016-01-01 but missing from the 2016 annual file; CMS reports no change
    assert codes("absent_from_previous_file") == [
        f"G0{n}" for n in (477, 478, 479, 480, 481, 482, 483, 498)]
    # retroactive terminations (2015-12-31) and text fixes CMS made under N: silent changes
    silent = codes("changed_under_action_n")
    assert len(silent) == 70 and {"A4720", "C1820", "E0296", "G0281"} <= set(silent)
    assert query(data_dir, "SELECT list(code ORDER BY code) FROM code_changes WHERE release_id "
                 "= '2017-Q1' AND change_type = 'discontinued' AND silent") == [
        (["G0464", *(f"G60{n}" for n in range(30, 59) if n != 33)],)]
    assert set(query(data_dir, "SELECT list(code) FROM code_changes WHERE release_id = "
                               "'2017-Q1' AND change_type = 'discontinued' AND silent")[0][0]
               ) <= set(silent)
    # G0154 was already terminated; 2017 moved its termination date, under D: agrees
    assert query(data_dir, "SELECT observed, reason FROM action_reconciliation WHERE "
                           "release_id = '2017-Q1' AND code = 'G0154'") == [
        (["termination_date_changed"], "agrees")]


def _readme_queries() -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("## Querying", 1)[1].split("```sql\n", 1)[1].split("```", 1)[0]
    lines = [ln for ln in block.splitlines() if not ln.startswith("--")]
    return [q.strip() for q in "\n".join(lines).split(";") if q.strip()]


def test_every_readme_query_answers_on_the_real_releases(backfill) -> None:
    data_dir, _ = backfill
    answers = [query(data_dir, q) for q in _readme_queries()]
    assert len(answers) == 7 and all(answers)
    assert answers[1] == [(410, 228, 273)]  # codes added in 2019, by the three definitions


REBUILD_PEAK = """
import sys
from pathlib import Path
from warehouse import history

def mib(field):  # VmHWM: this process's peak (ru_maxrss may be its parent's, from the fork)
    return int(Path("/proc/self/status").read_text().split(field + ":")[1].split()[0]) / 1024

before = mib("VmRSS")
history.rebuild(Path(sys.argv[1]))
print(mib("VmHWM") - before)
"""


def test_a_rebuild_of_the_real_releases_stays_within_its_memory_share(
        backfill, tmp_path: Path) -> None:
    """A whole run must peak under 500 MiB (issue 14), the rebuild on top of what the process
    already holds: its own peak, in a fresh process, stays under 120 MiB for these six
    releases (180 MiB with DuckDB's defaults, 80 MiB as ``history._configure`` sets it)."""
    data_dir = shutil.copytree(backfill[0], tmp_path / "data")
    out = subprocess.run([sys.executable, "-c", REBUILD_PEAK, str(data_dir)], check=True,
                         cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True)
    assert float(out.stdout) < 120
