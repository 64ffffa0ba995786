"""A release never loses codes silently: edited copies of the real CMS files.

Each way a code can go missing from a release is named by the gate: a code whose only record the
parser rejected (``rejected_codes_missing``, blocks), a revision of a quarter that drops codes its
predecessor had not terminated (``revision_removes_codes``, blocks), and any release that drops
such codes (``vanished_without_termination``, a warning). A code twice is reported by the parser
as well as refused by the gate.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from contracts.settings import GateSettings, Settings
from contracts.validation import GateResult, Sample
from expectations.gate import is_revision, run_gate
from expectations.vanished import vanished_without_termination
from flows.cli import app
from flows.summary import EXIT_FAILED, EXIT_PUBLISHED
from tests.conftest import real_txt
from tests.test_cli import with_code_twice
from tests.test_flows import hcpcs, query, runner
from transforms import parse_anweb

pytestmark = pytest.mark.realdata

OVERLONG = "line is 400 characters long; a record has 320"
#: How 2016 described G9668 (2017 dropped it without a termination date).
G9668 = (
    "Documentation of medical reason (s) for not currently being a statin therapy user or receive "
    "an order (prescription) for statin therapy (e.g., patient with adverse effect, allergy or "
    "intolerance to statin medication therapy, patients who have an active diagnosis of pregnancy "
    "or who are breastfeeding, patients who are receiving palliative care, patients with active "
    "liver disease or hepatic disease or insufficiency, patients with end stage renal disease "
    "(esrd), and patients with diabetes who have a fasting or direct ldl-c laboratory test result "
    "< 70 mg/dl and are not taking statin therapy)"
)


def overlong(data: bytes, code: str, length: int = 400) -> bytes:
    """The file with the first record line of ``code`` padded with text to ``length`` bytes."""
    start = data.index(b"\n" + code.encode() + b"00100") + 1
    end = data.index(b"\r\n", start)
    return data[:end] + b"X" * (length - (end - start)) + data[end:]


@pytest.fixture(scope="module")
def full(cms_dir: Path) -> bytes:
    return real_txt(cms_dir, "2019-Q1")


@pytest.fixture(scope="module")
def codes_2019(real_parsed) -> pl.DataFrame:
    return real_parsed["2019-Q1"].codes


def gate(parsed, **kwargs) -> GateResult:
    return run_gate(parsed.codes, rejects=parsed.rejects, release_id="2019-Q1", **kwargs)


# --- a code whose only record was rejected ------------------------------------------------------


def test_one_overlong_line_refuses_the_release_naming_the_lost_code(full) -> None:
    parsed = parse_anweb(overlong(full, "S2107"))
    assert parsed.codes.height == 6799
    assert parsed.rejects.select("line", "code", "reason").rows() == [
        (10578, "S2107", OVERLONG),
        (10579, "S2107", f"record of S2107 rejected because of line 10578: {OVERLONG}"),
    ]
    result = gate(parsed)
    assert [o.name for o in result.blocking] == ["rejected_codes_missing"]
    lost = result.outcome("rejected_codes_missing")
    assert (lost.scope, lost.severity, lost.unexpected_count, lost.element_count) == (
        "release", "error", 1, 2)  # one code, whichever of its lines were rejected
    assert lost.samples == (Sample("S2107", "line", f"10578: {OVERLONG}"),)
    assert result.outcome("rejects_within_limit").success  # 2 lines: far under 1%
    row = next(line for line in result.summary_text().splitlines()
               if line.startswith("rejected_codes_missing"))
    assert row.split()[:5] == ["rejected_codes_missing", "error", "BLOCK", "1", "S2107"]
    assert row.endswith(f"S2107 line=10578: {OVERLONG}")


def test_lines_that_name_no_code_stay_with_the_reject_share(full) -> None:
    """Stray text names no code: only ``rejects_within_limit`` judges it; each lost code is
    counted once, in file order."""
    data = overlong(overlong(full, "S2107"), "A0021", 321) + b"not a record\r\n" * 3
    parsed = parse_anweb(data)
    assert parsed.rejects["code"].to_list() == ["A0021", "S2107", "S2107", None, None, None]
    lost = gate(parsed).outcome("rejected_codes_missing")
    assert lost.unexpected_count == 2
    assert lost.samples == (
        Sample("A0021", "line", "535: line is 321 characters long; a record has 320"),
        Sample("S2107", "line", f"10578: {OVERLONG}"),
    )
    only_stray = gate(parse_anweb(full + b"not a record\r\n" * 3))
    assert only_stray.passed
    assert only_stray.outcome("rejected_codes_missing").unexpected_count == 0
    assert only_stray.outcome("rejects_within_limit").observed == "3 rejected lines"


def test_a_code_twice_is_a_reject_of_the_parse_and_refused_by_code_unique_only(full) -> None:
    parsed = parse_anweb(with_code_twice(full, "S2107"))
    assert parsed.codes.height == 6801  # both records stay: the gate must see the duplicate
    assert parsed.rejects.select("line", "code", "reason").rows() == [
        (11631, "S2107", "code S2107 appears again: its first record starts at line 10578")]
    assert parsed.rejects["text"][0].startswith("S2107001003Adoptive immunotherapy")
    result = gate(parsed)
    assert [o.name for o in result.blocking] == ["code_unique"]  # S2107 has a record: not lost
    assert result.outcome("rejected_codes_missing").unexpected_count == 0


def test_hcpcs_parse_reports_a_code_twice_and_exits_1(full, tmp_path) -> None:
    path = tmp_path / "HCPC2019_CONTR_ANWEB.txt"
    path.write_bytes(with_code_twice(full, "S2107"))
    result = runner.invoke(app, ["parse", str(path), "--out", str(tmp_path / "codes.parquet")])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "  rejected line 11631 (S2107): code S2107 appears again: its first record starts at "
        "line 10578",
        "1 lines rejected",
    ]


def test_a_release_that_lost_a_code_is_refused_and_publishes_only_when_accepted(
        tmp_path, full) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "HCPC2019_CONTR_ANWEB.txt").write_bytes(overlong(full, "S2107"))
    data_dir = tmp_path / "data"
    args = ("backfill", "--source", str(source), "--data-dir", str(data_dir))
    code, doc = hcpcs(*args)
    assert code == EXIT_FAILED
    (refused,) = doc["releases"]
    assert (refused["status"], refused["refused_by"]) == ("failed", ["rejected_codes_missing"])
    assert "hcpcs accept 2019-Q1" in refused["message"]

    out = runner.invoke(app, ["accept", "2019-Q1", "--rule", "rejected_codes_missing",
                                "--reason", "S2107 is fixed in the next file", "--by", "ops",
                                "--data-dir", str(data_dir)])
    assert out.exit_code == 0, out.output
    code, doc = hcpcs(*args)
    assert code == EXIT_PUBLISHED, doc
    assert query(data_dir, "SELECT count(*), count(*) FILTER (code = 'S2107') FROM codes") == [
        (6799, 0)]
    assert query(data_dir, "SELECT rule, accepted_by, applied FROM waivers") == [
        ("rejected_codes_missing", "ops", True)]


# --- a revision that drops codes its predecessor had not terminated ------------------------------


@pytest.fixture(scope="module")
def cut(full) -> pl.DataFrame:
    """2019 cut at the line boundary before S4005: 609 codes (8.96%) missing, under the 10%
    ``vanished_codes_share`` limit; 601 of them without a termination date."""
    parsed = parse_anweb(full[: full.index(b"\nS400500100") + 1])
    assert (parsed.codes.height, parsed.rejects.height) == (6191, 0)
    return parsed.codes


def test_a_cut_revision_of_the_same_quarter_is_refused(cut, codes_2019) -> None:
    result = run_gate(cut, previous=codes_2019, release_id="2019-Q1r2",
                      previous_release_id="2019-Q1")
    assert [o.name for o in result.blocking] == ["revision_removes_codes"]
    removed = result.outcome("revision_removes_codes")
    assert (removed.scope, removed.unexpected_count, removed.element_count) == (
        "release", 601, 6800)
    assert removed.samples[0] == Sample("S4005", "short_description",
                                        "Interim labor facility globa")
    # what let it through before: each share is under its limit
    assert result.outcome("vanished_codes_share").success
    assert result.outcome("vanished_codes_share").unexpected_count == 609
    assert result.outcome("code_count_drift").observed == "6,191 codes (previous 6,800, -9.0%)"


def test_a_cut_copy_after_the_good_release_never_supersedes_it(tmp_path, cms_dir, full) -> None:
    """The fault campaign's case: the real 2019 ZIP published, then its TXT cut at a line
    boundary (609 codes missing) offered as a revision: refused, the good release stays current."""
    from tests.conftest import REAL_RELEASES

    data_dir = tmp_path / "data"
    code, _ = hcpcs("run", "--source", str(cms_dir / REAL_RELEASES["2019-Q1"][0]),
                    "--data-dir", str(data_dir))
    assert code == EXIT_PUBLISHED
    cut_txt = tmp_path / "HCPC2019_CONTR_ANWEB.txt"
    cut_txt.write_bytes(full[: full.index(b"\nS400500100") + 1])
    code, doc = hcpcs("run", "--source", str(cut_txt), "--data-dir", str(data_dir))
    assert code == EXIT_FAILED
    (refused,) = doc["releases"]
    assert (refused["release_id"], refused["refused_by"]) == ("2019-Q1r2",
                                                              ["revision_removes_codes"])
    assert query(data_dir, "SELECT release_id, code_count FROM releases") == [("2019-Q1", 6800)]
    assert query(data_dir, "SELECT count(*) FROM codes_current") == [(6800,)]


@pytest.mark.parametrize("previous_release_id", [None, "2018-Q4", "HCPC2019_CONTR_ANWEB.txt"])
def test_against_another_quarter_the_revision_rule_does_not_apply(cut, codes_2019,
                                                                  previous_release_id) -> None:
    result = run_gate(cut, previous=codes_2019, release_id="2019-Q1",
                      previous_release_id=previous_release_id)
    assert result.passed
    removed = result.outcome("revision_removes_codes")
    assert (removed.success, removed.unexpected_count, removed.samples) == (True, 0, ())
    # still counted and shown, as a warning
    assert result.outcome("vanished_without_termination").unexpected_count == 601


def test_without_a_previous_release_there_is_no_revision_rule(codes_2019) -> None:
    names = {o.name for o in run_gate(codes_2019, release_id="2019-Q1r2").outcomes}
    assert not names & {"revision_removes_codes", "vanished_without_termination"}


@pytest.fixture(scope="module")
def without_termination(codes_2019) -> list[str]:
    return codes_2019.filter(pl.col("termination_date").is_null())["code"].head(6).to_list()


@pytest.mark.parametrize(("dropped", "settings", "blocks"), [
    (5, GateSettings(), False),
    (6, GateSettings(), True),
    (6, Settings.from_env({"HCPCS_GATE_MAX_REVISION_REMOVED_CODES": "6"}).gate, False),
])
def test_a_revision_may_drop_a_handful_of_unterminated_codes(codes_2019, without_termination,
                                                             dropped, settings, blocks) -> None:
    """Codes the predecessor had terminated do not count (515 of them are dropped here too)."""
    gone = without_termination[:dropped]
    terminated = pl.col("termination_date").is_not_null()
    revision = codes_2019.filter(~pl.col("code").is_in(gone) & ~terminated)
    assert revision.height == 6800 - dropped - 515
    result = run_gate(revision, previous=codes_2019, settings=settings,
                      release_id="2019-Q1r2", previous_release_id="2019-Q1")
    removed = result.outcome("revision_removes_codes")
    assert (removed.unexpected_count, removed.blocks, result.passed) == (dropped, blocks,
                                                                        not blocks)
    assert [s.code for s in removed.samples] == gone


@pytest.mark.parametrize(("release_id", "previous_release_id", "revision"), [
    ("2019-Q1r2", "2019-Q1", True),
    ("2019-Q1r3", "2019-Q1r2", True),
    ("2019-Q1", "2019-Q1", True),
    ("2019-Q2", "2019-Q1", False),
    ("2019-Q1", None, False),
    (None, "2019-Q1", False),
    ("HCPC2019_CONTR_ANWEB.txt", "2019-Q1", False),
])
def test_is_revision(release_id, previous_release_id, revision) -> None:
    assert is_revision(release_id, previous_release_id) is revision


# --- codes gone without termination, in any release ---------------------------------------------


def test_vanished_without_termination_on_the_real_releases(real_parsed) -> None:
    codes = {rid: parsed.codes for rid, parsed in real_parsed.items()}
    assert vanished_without_termination(codes["2017-Q1"], codes["2016-Q1"]).rows() == [
        ("G0298", "procedure", "Hiv antigen/antibody, combination assay, screening",
         "Hiv combination assay", dt.date(2015, 4, 13)),
        ("G9668", "procedure", G9668, "Doc med rsn no stat tx/presc", dt.date(2016, 1, 1)),
    ]
    late = vanished_without_termination(codes["2019-Q1"], codes["2017-Q1"])
    assert late.columns == ["code", "kind", "long_description", "short_description", "added_date"]
    assert late.rows() == [("DA", "modifier", "Oral health assessment by a licensed health "
                            "professional other than a dentist", "Oral health assess, not dent",
                            dt.date(2011, 1, 1))]
    # of all the codes that left (98 and 108), these are the only ones never terminated
    assert vanished_without_termination(codes["2019-Q1"], codes["2019-Q1"]).height == 0


def test_the_gate_warns_with_the_same_codes(cut, codes_2019) -> None:
    result = run_gate(cut, previous=codes_2019, release_id="2019-Q1")
    warning = result.outcome("vanished_without_termination")
    listed = vanished_without_termination(cut, codes_2019)
    assert (warning.severity, warning.scope, warning.blocks) == ("warning", "release", False)
    assert warning.unexpected_count == listed.height == 601
    assert [s.code for s in warning.samples] == listed["code"].head(10).to_list()
    doc = next(r for r in result.to_dict()["results"]
               if r["name"] == "vanished_without_termination")
    assert (doc["success"], doc["unexpected_count"]) == (False, 601)
