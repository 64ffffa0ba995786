"""The finding policy end to end (real flows, real files, real DuckDB): record-level findings
publish and are kept per code, known CMS defects are repaired from the table with their raw values
kept, and a refused release publishes after an operator's waiver, for that file only."""

from __future__ import annotations

import datetime as dt
import getpass
from pathlib import Path

import polars as pl
import pytest

from contracts.layout import FIELDS
from contracts.settings import GateSettings
from contracts.validation import Waiver
from expectations.gate import run_gate
from flows.summary import EXIT_FAILED, EXIT_PUBLISHED
from tests.conftest import real_txt
from tests.test_flows import hcpcs, query
from transforms import parse_anweb
from transforms.repairs import RepairsTableError, apply_repairs, read_repairs

pytestmark = pytest.mark.realdata

#: CMS's 2018 defect (cms-hcpcs-format.md section 5, item 5): the intended ASC dates.
ASC_2018 = {"C9488": "20170401", "C9745": "20170701", "C9746": "20170701",
            "C9747": "20170701", "C9748": "20180101"}


def shifted_asc_copy(data: bytes) -> bytes:
    """The 2019 file with CMS's 2018 pattern built into the five codes: ``YY`` and the ASC date
    written from column 231 instead of 233 (so the group reads "20", the date six digits)."""
    start = FIELDS["asc_group"].start - 1
    for code, date in ASC_2018.items():
        at = data.index(b"\n" + code.encode() + b"00100") + 1 + start
        data = data[:at] + date.encode() + b"  " + data[at + 10:]
    return data


@pytest.fixture(scope="module")
def shifted(cms_dir: Path) -> bytes:
    return shifted_asc_copy(real_txt(cms_dir, "2019-Q1"))


def _publish_as_2018(tmp: Path, data: bytes, monkeypatch: pytest.MonkeyPatch,
                     repairs: Path | None = None) -> tuple[Path, int, dict]:
    source = tmp / "src"
    source.mkdir()
    (source / "HCPC2018_CONTR_ANWEB_disc.txt").write_bytes(data)
    if repairs is not None:
        monkeypatch.setenv("HCPCS_GATE_REPAIRS_TABLE", str(repairs))
    data_dir = tmp / "data"
    code, doc = hcpcs("backfill", "--source", str(source), "--data-dir", str(data_dir))
    return data_dir, code, doc


def test_shifted_asc_copy_publishes_repaired_from_the_table(tmp_path, shifted, monkeypatch):
    data_dir, code, doc = _publish_as_2018(tmp_path, shifted, monkeypatch)
    assert code == EXIT_PUBLISHED, doc
    (release,) = doc["releases"]
    assert (release["release_id"], release["status"], release["repairs"]) == ("2018-Q1",
                                                                             "published", 10)
    # the published codes carry the repaired values...
    assert query(data_dir, f"""SELECT code, asc_group, asc_effective_date, len(unparsed_values)
                               FROM codes WHERE code IN {tuple(ASC_2018)} ORDER BY code""") == [
        (c, "YY", dt.datetime.strptime(d, "%Y%m%d").date(), 0) for c, d in ASC_2018.items()]
    # ... the raw values stay on record, with the evidence ...
    assert query(data_dir, """SELECT code, field, raw_value, repaired_value, applied
                              FROM repairs ORDER BY code, field""") == [
        row for c, d in ASC_2018.items()
        for row in ((c, "asc_effective_date", d[2:], d, True), (c, "asc_group", "20", "YY", True))]
    # ... and each code has its finding, found on the file as CMS wrote it
    assert query(data_dir, """SELECT code, raw_value FROM findings
                              WHERE rule = 'asc_fields_shifted' ORDER BY code""") == [
        (c, "20") for c in ASC_2018]
    page = query(data_dir, """SELECT has_findings, findings, repairs FROM code_pages
                              WHERE code = 'C9488'""")[0]
    assert page[0] is True
    assert page[1] == ["asc_fields_shifted asc_group=20", "asc_group_in_domain asc_group=20",
                       "dates_valid asc_effective_date=170401"]
    assert [(r["field"], r["raw_value"], r["repaired_value"]) for r in page[2]] == [
        ("asc_effective_date", "170401", "20170401"), ("asc_group", "20", "YY")]
    # 3 per shifted code, plus the 6 CMS warnings of the 2019 file it was built from
    assert query(data_dir, """SELECT finding_count, repair_count FROM releases""") == [(21, 10)]
    assert query(data_dir, "SELECT count(*) FROM codes_current WHERE has_findings") == [(11,)]
    from flows.cli import app
    from tests.test_flows import runner

    out = runner.invoke(app, ["code", "C9488", "--data-dir", str(data_dir)]).stdout
    page = [line.strip() for line in out.splitlines()]
    assert ["asc_group", "YY"] in [line.split()[:2] for line in page]  # the repaired value
    assert [line.split(" (")[0] for line in page if line.startswith(("finding", "repaired"))] == [
        "finding                    asc_fields_shifted asc_group=20",
        "finding                    asc_group_in_domain asc_group=20",
        "finding                    dates_valid asc_effective_date=170401",
        "repaired asc_effective_date 170401 -> 20170401",
        "repaired asc_group         20 -> YY"]
    code, status = hcpcs("status", "--data-dir", str(data_dir))
    assert [(r["code"], r["field"], r["raw"], r["repaired"])
            for r in status["details"]["repairs (transforms/repairs.csv)"]][:2] == [
        ("C9488", "asc_effective_date", "170401", "20170401"), ("C9488", "asc_group", "20", "YY")]


def test_shifted_asc_copy_without_a_repair_entry_still_publishes(tmp_path, shifted, monkeypatch):
    empty = tmp_path / "no-repairs.csv"
    empty.write_text("release,code,field,raw_value,repaired_value,evidence\n")
    data_dir, code, doc = _publish_as_2018(tmp_path, shifted, monkeypatch, empty)
    assert code == EXIT_PUBLISHED, doc
    assert doc["releases"][0]["repairs"] == 0
    assert query(data_dir, """SELECT asc_group, asc_effective_date, unparsed_values FROM codes
                              WHERE code = 'C9748'""") == [
        ("20", None, [{"field": "asc_effective_date", "value": "180101"}])]
    assert query(data_dir, "SELECT count(*) FROM repairs") == [(0,)]
    assert query(data_dir, """SELECT count(DISTINCT code) FROM findings
                              WHERE rule = 'asc_fields_shifted'""") == [(5,)]


def test_a_repair_applies_only_where_the_file_holds_the_raw_value(cms_dir, shifted):
    """The real 2019 file (no defect) under the 2018 id: nothing matches, nothing changes."""
    table = read_repairs()
    clean = parse_anweb(real_txt(cms_dir, "2019-Q1")).codes
    codes, report = apply_repairs(clean, "2018-Q1", table)
    assert codes.equals(clean)
    assert report.height == 10 and not report["applied"].any()
    assert report.filter(pl.col("code") == "C9488")["found_value"].to_list() == ["YY", "20170401"]
    # the shifted copy under another quarter: the table says nothing about it
    broken = parse_anweb(shifted).codes
    assert apply_repairs(broken, "2019-Q1", table)[1].height == 0


@pytest.mark.parametrize(("row", "message"), [
    ("2018-Q5,C9488,asc_group,20,YY,x", "invalid release id"),
    ("2018-Q1,C9488,types_of_service,20,YY,x", "not a single-valued data field"),
    ("2018-Q1,C9488,asc_effective_date,170401,2017-04-01,x", "is not a valid date"),
    ("2018-Q1,C9488,asc_group,20,YY,", "every column is required"),
])
def test_a_bad_repairs_table_is_refused_naming_the_line(tmp_path, row, message):
    path = tmp_path / "repairs.csv"
    path.write_text(f"release,code,field,raw_value,repaired_value,evidence\n{row}\n")
    with pytest.raises(RepairsTableError, match=f"{path}:2: .*{message}"):
        read_repairs(path)


def test_a_waiver_covers_one_rule_of_one_file(real_parsed):
    codes = real_parsed["2019-Q1"].codes
    result = run_gate(codes.head(4000), previous=codes, release_id="2019-Q1",
                      settings=GateSettings(max_vanished_share=0.5))
    assert [o.name for o in result.blocking] == ["code_count_drift"]
    waiver = Waiver("2019-Q1", "code_count_drift", "a" * 64, "truncated on purpose", "me", "now")
    assert result.with_waivers([waiver], "b" * 64).blocking == result.blocking  # another file
    other_release = Waiver("2017-Q1", *list(vars(waiver).values())[1:])
    assert not result.with_waivers([other_release], "a" * 64).passed
    waived = result.with_waivers([waiver, other_release], "a" * 64)
    assert waived.passed and waived.waivers == (waiver,)
    assert waived.outcome("code_count_drift").waived
    assert waived.to_dict()["waivers"][0]["reason"] == "truncated on purpose"


def test_a_refused_release_publishes_after_accept_and_only_that_file(tmp_path, cms_dir):
    source = tmp_path / "src"
    source.mkdir()
    full = real_txt(cms_dir, "2019-Q1")
    (source / "HCPC17_CONTR_ANWEB.txt").write_bytes(real_txt(cms_dir, "2017-Q1"))
    (source / "HCPC2019_CONTR_ANWEB.txt").write_bytes(full[: full.index(b"\nJ0") + 1])
    data_dir = tmp_path / "data"
    args = ("backfill", "--source", str(source), "--data-dir", str(data_dir))

    code, doc = hcpcs(*args)
    assert code == EXIT_FAILED
    refused = next(r for r in doc["releases"] if r["release_id"] == "2019-Q1")
    assert refused["status"] == "failed"
    assert refused["refused_by"] == ["code_count_drift", "vanished_codes_share"]
    assert "hcpcs accept 2019-Q1" in refused["message"]

    from flows.cli import app
    from tests.test_flows import runner

    for rule in refused["refused_by"][:1]:
        out = runner.invoke(app, ["accept", "2019-Q1", "--rule", rule, "--reason",
                                  "CMS posted half a file; we want it anyway", "--by", "ops",
                                  "--data-dir", str(data_dir)])
        assert out.exit_code == 0, out.output
    code, doc = hcpcs(*args)  # one rule waived, the other still refuses
    assert code == EXIT_FAILED
    still = next(r for r in doc["releases"] if r["release_id"] == "2019-Q1")
    assert (still["refused_by"], still["waived"][0].split()[0]) == (
        ["vanished_codes_share"], "code_count_drift")

    out = runner.invoke(app, ["accept", "2019-Q1", "--rule", "vanished_codes_share", "--reason",
                              "same", "--data-dir", str(data_dir)])
    assert out.exit_code == 0, out.output
    code, doc = hcpcs(*args)
    assert code == EXIT_PUBLISHED, doc
    assert query(data_dir, """SELECT w.rule, w.accepted_by, w.applied, w.sha256 = r.raw_sha256
                              FROM waivers w JOIN releases r USING (release_id)
                              ORDER BY accepted_at, rule""") == [
        ("code_count_drift", "ops", True, True),
        ("vanished_codes_share", getpass.getuser(), True, True)]
    code, status = hcpcs("status", "--data-dir", str(data_dir))
    assert code == 0
    assert {(w["release"], w["rule"]) for w in status["details"]["waivers"]} == {
        ("2019-Q1", "code_count_drift"), ("2019-Q1", "vanished_codes_share")}
    assert [r["waivers"] for r in status["releases"]] == [0, 2]


def test_accept_refuses_an_unknown_rule_or_a_release_not_refused(tmp_path):
    from flows.cli import app
    from tests.test_flows import runner

    out = runner.invoke(app, ["accept", "2019-Q1", "--rule", "coverage_code_in_domain",
                              "--reason", "x", "--data-dir", str(tmp_path)])
    assert out.exit_code == 2
    assert "not a release-level rule" in out.output
    out = runner.invoke(app, ["accept", "2019-Q1", "--rule", "code_unique", "--reason", "x",
                              "--data-dir", str(tmp_path)])
    assert out.exit_code == 2
    assert "did not refuse 2019-Q1 for code_unique" in out.output
