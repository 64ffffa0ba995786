"""CMS's transaction reports: every real layout parsed, one report chosen per release, the report
of a loose data file kept in the raw store beside it, and every release published with its report
as ``transactions.parquet`` (empty, with the error in the manifest, when it cannot be read).

Real files from ../shared/cms, copied to temporary folders where a run needs a source folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

from contracts.paths import DataDir
from contracts.release import Manifest, names_other_release
from contracts.settings import FetchSettings
from flows.steps import read_transactions
from flows.summary import EXIT_PUBLISHED
from sources.archive import read_report_member, report_format, select_report
from sources.catalog import sibling_report
from sources.demo import demo_states, write_demo_releases
from sources.fetch import fetch
from sources.rawstore import RawStore, RawStoreError
from tests.test_flows import hcpcs, query
from tests.test_sources_fetch import RECORD, make_zip
from transforms import parse_anweb, parse_member
from transforms.transaction_report import (
    TransactionReportError,
    parse_transaction_report_file,
)
from warehouse import doctor

PHRASE_HINT = "(add CMS's wording to contracts.domains.ACTION_CODE.phrases)"
ZIP_2017 = "2017-annual/2017-Alpha-Numeric-HCPCS-File.zip"
ZIP_2019 = "2019-annual/2019-Alpha-Numeric-HCPCS-File.zip"
#: Every report CMS shipped with a release (folder or ZIP), the chosen one first.
REPORTS = {
    "2016-Q1": ("2016-annual", ["HCPC2016_TransactionReport_Alpha.xlsx",
                                "HCPC2016_TransReport_Changes_by_Action_Code.txt",
                                "HCPC2016_TransReport_Changes_by_HCPCS_Code.txt"]),
    "2017-Q1": (ZIP_2017, ["HCPCS2017_Trans Report_Alpha.xlsx",
                           "HCPCS2017_Trans Report_ChangesbyAction.prn",
                           "HCPCS2017_Trans Report_ChangesbyHCPC.prn"]),
    "2019-Q1": (ZIP_2019, ["HCPC2019_Trans_Alpha.xlsx", "Changes_by_ActionCode.prn",
                           "Changes_by_HCPCSCode.prn"]),
}
DATA = {"2016-Q1": "HCPC2016_CONTR_ANWEB.txt", "2017-Q1": "HCPC17_CONTR_ANWEB.txt",
        "2019-Q1": "HCPC2019_CONTR_ANWEB.txt"}
ACTIONS = {  # release -> CMS's announced actions, counted
    "2016-Q1": {"A": 236, "C": 44, "D": 88, "F": 2, "N": 5893, "P": 28, "T": 1},
    "2017-Q1": {"A": 278, "B": 1, "C": 124, "D": 147, "F": 1, "N": 5902, "P": 38, "R": 1,
                "S": 2, "T": 4},
    "2019-Q1": {"A": 228, "B": 1, "C": 94, "D": 49, "F": 1, "N": 6372, "P": 47, "S": 8},
    "2020-Q2": {"A": 18, "C": 4, "D": 1, "N": 7074},
    "2020-Q3": {"A": 61, "C": 4, "D": 9, "N": 7083, "S": 1},
    "2020-Q4": {"A": 38, "C": 7, "D": 4, "F": 2, "N": 7145},
}
FOLDERS_2020 = {"2020-Q2": "2020-Q2-april", "2020-Q3": "2020-Q3-july",
                "2020-Q4": "2020-Q4-october"}
JULY_REPORT_SHA = "27681e7ae05f174a728f60aa0584b5f461d42ecd9a732359b3a1735151c200f9"  # SOURCES.md
JULY_DATA_SHA = "6d23e253ac2c54435a1d45d975d5adf196ec3a7248b61296edcae5400db4eb13"
REFETCH = "fetch the release again to restore the entry, or restore it from a backup"
REPORT_SCHEMA = {"code": pl.String(), "action": pl.String(), "change_text": pl.String(),
                 "line": pl.Int64()}


def counts(frame: pl.DataFrame) -> dict[str, int]:
    return dict(sorted(frame.group_by("action").len().iter_rows()))


def release_bytes(cms_dir: Path, release: str, name: str) -> bytes:
    where, _ = REPORTS[release]
    path = cms_dir / where
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            return zf.read(name)
    return (path / name).read_bytes()


def broken_workbook(good: bytes) -> bytes:
    """The real 2020-Q4 report with CMS's "Coverage Change" reworded into an unknown phrase."""
    src, out = zipfile.ZipFile(io.BytesIO(good)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/sharedStrings.xml":
                assert data.count(b"<t>Coverage Change</t>") == 1
                data = data.replace(b"<t>Coverage Change</t>", b"<t>Coverage Revamp</t>")
            dst.writestr(info, data)
    return out.getvalue()


# Parsing: every real layout.


@pytest.mark.realdata
@pytest.mark.parametrize("release", list(REPORTS))
def test_every_report_of_a_release_gives_the_same_codes_and_actions(cms_dir, release) -> None:
    where, names = REPORTS[release]
    frames = [parse_transaction_report_file(n, release_bytes(cms_dir, release, n)) for n in names]
    for frame in frames:
        assert dict(frame.schema) == REPORT_SCHEMA
        assert counts(frame) == ACTIONS[release]
    pairs = [set(f.select("code", "action").iter_rows()) for f in frames]
    assert pairs[1:] == [pairs[0]] * (len(pairs) - 1)
    # the announced action is the letter the data record carries, code by code
    data = (cms_dir / where / DATA[release]).read_bytes() if release == "2016-Q1" else (
        release_bytes(cms_dir, release, DATA[release]))
    records = parse_anweb(data).codes.select("code", "action_code")
    joined = frames[0].join(records, on="code", how="full", coalesce=True)
    assert joined.filter(pl.col("action") != pl.col("action_code")).height == 0
    # CMS left the 2016 modifier DA out of its report; every other code is listed
    assert joined.filter(pl.col("action").is_null())["code"].to_list() == (
        ["DA"] if release == "2016-Q1" else [])
    assert joined.filter(pl.col("action_code").is_null()).height == 0


@pytest.mark.realdata
@pytest.mark.parametrize("release", list(FOLDERS_2020))
def test_each_2020_workbook_has_its_exact_actions(cms_dir, release) -> None:
    folder = cms_dir / FOLDERS_2020[release]
    report = parse_transaction_report_file("trans_alpha.xlsx",
                                           (folder / "trans_alpha.xlsx").read_bytes())
    assert counts(report) == ACTIONS[release]
    assert report.row(0) == ("A1", "N", "No Change", 12)  # Excel row 12, below CMS's note
    records = parse_member("anweb.xlsx", (folder / "anweb.xlsx").read_bytes()).codes
    joined = report.join(records.select("code", "action_code"), on="code", how="full")
    assert joined.height == report.height == records.height
    assert joined.filter(pl.col("action") != pl.col("action_code")).height == 0


@pytest.mark.realdata
def test_the_sheet_listing_by_code_is_read(cms_dir) -> None:
    # July 2020's "by Action Code" sheet lists CS twice (a stale "No Change"); by code: once
    data = (cms_dir / "2020-Q3-july/trans_alpha.xlsx").read_bytes()
    report = parse_transaction_report_file("trans_alpha.xlsx", data)
    assert report.filter(code="CS").rows() == [("CS", "C", "Long/Short Description Change", 67)]


@pytest.mark.realdata
def test_an_unknown_phrase_in_a_workbook_names_file_sheet_row_and_value(cms_dir) -> None:
    good = (cms_dir / "2020-Q4-october/trans_alpha.xlsx").read_bytes()
    with pytest.raises(TransactionReportError) as err:
        parse_transaction_report_file("trans_alpha.xlsx", broken_workbook(good))
    assert str(err.value) == (  # A4226, the first code with CMS's "Coverage Change"
        "trans_alpha.xlsx, sheet 'Changes by HCPC', row 442: unknown type of change "
        f"'Coverage Revamp' {PHRASE_HINT}")


@pytest.mark.parametrize(("name", "data", "message"), [
    ("r.txt", b"HCPCS/Modifier Code\tType of Change\r\nA0001\tAdd\r\nA0002\tRenamed\r\n",
     f"r.txt, line 3: unknown type of change 'Renamed' {PHRASE_HINT}"),
    ("r.txt", b"HCPCS/Modifier Code\tType of Change\r\nA0001\tAdd\r\nA0001\tNo Change\r\n",
     "r.txt, line 3: code A0001 listed twice (first at line 2)"),
    ("r.prn", b"HCPCS/Modifier Code Type of Change\r\n   A1               Add\r\nHELLO! Add\r\n",
     "r.prn, line 3: 'HELLO!' is no HCPCS code or modifier"),
    ("r.prn", b"HCPCS/Modifier Code Type of Change\r\nA0001\r\n",
     "r.prn, line 2: no code and change in 'A0001'"),
    ("r.txt", b"\r\nA0001\tAdd\r\n",
     "r.txt, line 2: expected the header line (HCPCS/Modifier Code, Type of Change), got "
     "'A0001\\tAdd'"),
    ("r.txt", b"HCPCS/Modifier Code\tType of Change\r\nA0001\tAdd\x81\r\n",
     "r.txt: not a text report (byte 0x81 at offset 45 is no cp1252 character)"),
    ("r.pdf", b"%PDF", "r.pdf: a .pdf file is no transaction report layout "
     "(.xlsx, .xls, .txt, .prn)"),
])
def test_a_bad_report_is_an_error_naming_file_line_and_value(name, data, message) -> None:
    with pytest.raises(TransactionReportError) as err:
        parse_transaction_report_file(name, data)
    assert str(err.value) == message


def test_bytes_that_are_no_workbook_are_named() -> None:
    with pytest.raises(TransactionReportError, match=r"^r\.xlsx: not a readable \.xlsx or \.xls "
                                                     r"workbook \("):
        parse_transaction_report_file("r.xlsx", b"HCPCS/Modifier Code\tType of Change\r\n")


# Choosing the one report of a release.


@pytest.mark.realdata
def test_one_report_is_chosen_among_a_real_release_s_files(cms_dir) -> None:
    for release, (where, names) in REPORTS.items():
        path = cms_dir / where
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                listing = zf.namelist()
        else:
            listing = sorted(p.name for p in path.iterdir())
        assert select_report(listing) == select_report(listing[::-1]) == names[0], release
        # without the workbook, the text listing by code
        assert select_report(names[1:]) == names[2], release
        others = [n for n in listing if n not in names]
        assert [n for n in others if report_format(n)] == [], release
        assert select_report(others) is None
    for folder in FOLDERS_2020.values():
        assert select_report(sorted(p.name for p in (cms_dir / folder).iterdir())) == (
            "trans_alpha.xlsx")
    for name in ("hcpc2017_corrections_alpha.txt", "NOC_Codes_2019.prn", "HCPC2016_README.txt",
                 "HCPCS2019_recordlayout.txt", "HCPC2019_CONTR_ANWEB.xlsx", "anweb.xlsx",
                 "2017-Alpha-Numeric-HCPCS-File.zip"):
        assert report_format(name) is None, name


def test_a_folder_s_report_is_the_one_of_the_data_file_s_release(tmp_path: Path) -> None:
    assert names_other_release("HCPCS2017_Trans Report_Alpha.xlsx", "2016-Q1")
    assert names_other_release("HCPC2020_JUL_TransReport.xlsx", "2020-Q2")
    assert not names_other_release("HCPC2020_APR_TransReport.xlsx", "2020-Q2")
    assert not names_other_release("trans_alpha.xlsx", "2016-Q1")
    for name in ("HCPC2016_CONTR_ANWEB.txt", "HCPCS2017_Trans Report_Alpha.xlsx",
                 "HCPC2016_TransReport_Changes_by_Action_Code.txt", "HCPC2016_README.txt"):
        (tmp_path / name).write_bytes(b"")
    data = tmp_path / "HCPC2016_CONTR_ANWEB.txt"
    assert sibling_report(data, "2016-Q1") == (
        tmp_path / "HCPC2016_TransReport_Changes_by_Action_Code.txt")
    assert sibling_report(data, "2018-Q1") is None  # neither report is 2018's


def test_every_demo_zip_carries_its_report(tmp_path: Path) -> None:
    paths = write_demo_releases(tmp_path)
    for path, (quarter, rows) in zip(paths, demo_states(), strict=True):
        member = read_report_member(path)
        assert member is not None and member.name.endswith(
            "_TransReport_Changes_by_Action_Code.txt"), path
        report = parse_transaction_report_file(member.name, member.data)
        flagged = {r["code"]: r["action_code"] for r in rows if r["action_code"] != "N"}
        assert dict(report.select("code", "action").iter_rows()) == flagged, quarter.release


# The pipeline's step: the report of any stored release, never an exception.


def test_the_step_reads_a_zip_s_report_and_records_a_broken_one(tmp_path: Path) -> None:
    store = RawStore(tmp_path / "raw")
    [first, *_] = write_demo_releases(tmp_path / "demo")
    demo = read_transactions(fetch(str(first), store))
    assert (demo.name, demo.error) == ("HCPC2024_JAN_TransReport_Changes_by_Action_Code.txt", None)
    assert counts(demo.frame) == {"A": 1}  # 2024-Q1 adds G0136, and flags nothing else
    header = b"HCPCS/Modifier Code\tType of Change\r\n"
    broken = tmp_path / "january-2023-alpha-numeric-hcpcs-file.zip"
    broken.write_bytes(make_zip({"HCPC2023_JAN_ANWEB.txt": RECORD * 3,
                                 "HCPC2023_TransReport.txt": header + b"A0021\tZapped\r\n"}))
    report = read_transactions(fetch(str(broken), store))
    assert (report.name, report.frame.height, report.error) == (
        "HCPC2023_TransReport.txt", 0,
        f"HCPC2023_TransReport.txt, line 2: unknown type of change 'Zapped' {PHRASE_HINT}")
    assert dict(report.frame.schema) == REPORT_SCHEMA
    bare = tmp_path / "HCPC2022_JAN_ANWEB.txt"  # a loose file with no report beside it
    bare.write_bytes(RECORD * 3)
    none = read_transactions(fetch(str(bare), store))
    assert (none.name, none.frame.height, none.error) == (None, 0, None)


# The raw store keeps a loose data file's report.


@pytest.fixture
def july(cms_dir: Path, tmp_path: Path) -> Path:
    """A copy of the 2020-Q3 folder: anweb.xlsx and its trans_alpha.xlsx."""
    folder = tmp_path / "src" / "2020-Q3-july"
    shutil.copytree(cms_dir / "2020-Q3-july", folder)
    for f in folder.iterdir():
        f.chmod(0o644)
    folder.chmod(0o755)
    return folder


def sidecar(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_bytes())


@pytest.mark.realdata
def test_the_report_beside_a_loose_file_is_kept_without_changing_the_release(
    july: Path, store: RawStore
) -> None:
    stored = fetch(str(july / "anweb.xlsx"), store)
    assert (stored.release_id, stored.sha256, stored.member_name) == (
        "2020-Q3", JULY_DATA_SHA, "anweb.xlsx")  # the data file is the release
    kept = stored.path.with_name(f"{JULY_DATA_SHA}.report.xlsx")
    assert sidecar(stored.path)["report"] == {
        "name": "trans_alpha.xlsx", "sha256": JULY_REPORT_SHA, "file": kept.name, "size": 657375}
    assert kept.read_bytes() == (july / "trans_alpha.xlsx").read_bytes()
    assert store.list() == [replace(stored, status="stored", attempts=0)]
    assert store.check() == []
    member = store.transaction_report(stored)
    assert member is not None and member.name == "trans_alpha.xlsx"
    assert member.data == kept.read_bytes()
    shutil.rmtree(july)  # the store's copy is what is read from now on
    assert store.transaction_report(store.list()[0]) == member


@pytest.mark.realdata
def test_a_damaged_kept_report_is_named_and_a_fetch_restores_it(
    july: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    store = RawStore(DataDir(data_dir).raw)
    stored = fetch(str(july / "anweb.xlsx"), store)
    kept = stored.path.with_name(f"{stored.sha256}.report.xlsx")
    kept.write_bytes(b"not the report")
    damage = (f"{kept}: bytes changed since they were stored: sha256 "
              f"{hashlib.sha256(b'not the report').hexdigest()}, expected {JULY_REPORT_SHA}; "
              f"{REFETCH}")
    assert store.check() == [damage]
    assert [e.release_id for e in store.list()] == ["2020-Q3"]  # the release itself is intact
    with pytest.raises(RawStoreError) as err:
        store.transaction_report(stored)
    assert str(err.value) == damage
    [problem] = doctor.check(data_dir)
    assert (problem.path, problem.fix) == (
        kept, f"hcpcs run --source {july / 'anweb.xlsx'} (fetches it again)")
    again = fetch(str(july / "anweb.xlsx"), store)
    assert (again.status, again.fetched_at) == ("unchanged", stored.fetched_at)
    assert store.check() == [] and doctor.check(data_dir) == []
    assert kept.read_bytes() == (july / "trans_alpha.xlsx").read_bytes()


@pytest.mark.realdata
def test_a_missing_or_stray_kept_report_is_reported(july: Path, tmp_path: Path) -> None:
    store = RawStore(DataDir(tmp_path / "data").raw)
    stored = fetch(str(july / "anweb.xlsx"), store)
    kept = stored.path.with_name(f"{stored.sha256}.report.xlsx")
    stray = kept.with_name("ab" * 32 + ".report.prn")
    stray.write_bytes(b"HCPCS/MOD TYPE OF CHANGE\r\n")
    kept.unlink()
    assert store.check() == [
        f"{kept}: the transaction report the sidecar names is missing; not read ({REFETCH})",
        f"{stray}: transaction report no sidecar names; not read ({REFETCH})"]
    assert [e.sha256 for e in store.list()] == [stored.sha256]  # the release itself is listed
    assert [(p.path, p.what, p.fix) for p in doctor.check(tmp_path / "data")] == [
        (kept, "the transaction report the sidecar names is missing",
         f"hcpcs run --source {july / 'anweb.xlsx'} (fetches it again)"),
        (stray, "transaction report no sidecar names", f"not read ({REFETCH})")]


@pytest.mark.realdata
def test_an_entry_stored_without_its_report_gets_it_on_the_next_fetch(
    july: Path, store: RawStore
) -> None:
    report = july / "trans_alpha.xlsx"
    aside = july.parent / "trans_alpha.xlsx"
    report.rename(aside)
    first = fetch(str(july / "anweb.xlsx"), store)
    assert "report" not in sidecar(first.path)
    assert store.transaction_report(first) is None
    aside.rename(report)
    again = fetch(str(july / "anweb.xlsx"), store)
    assert (again.status, again.release_id, again.sha256, again.fetched_at) == (
        "unchanged", "2020-Q3", first.sha256, first.fetched_at)
    assert sidecar(first.path)["report"]["sha256"] == JULY_REPORT_SHA


@pytest.mark.realdata
def test_a_report_that_cannot_be_kept_never_stops_the_fetch(july: Path, store: RawStore) -> None:
    report = july / "trans_alpha.xlsx"
    report.write_bytes(report.read_bytes() + b"\0" * (8_000_000 - report.stat().st_size))
    stored = fetch(str(july / "anweb.xlsx"), store,  # the data (5.9 MB inflated) is in the cap
                   settings=FetchSettings(max_member_bytes=7_000_000))
    reason = f"{report}: not kept: 8,000,000 bytes, over the 7,000,000-byte cap"
    assert sidecar(stored.path)["report"] == {"name": "trans_alpha.xlsx", "error": reason}
    assert store.check() == []
    with pytest.raises(RawStoreError) as err:
        store.transaction_report(stored)
    assert str(err.value) == reason


# End to end: a backfill of real folders publishes each release's report.


@pytest.fixture(scope="module")
def backfill(cms_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """2016 (loose TXT and its reports), 2017 (ZIP), 2020-Q3 (loose workbook) and 2020-Q4 whose
    report has an unknown phrase."""
    root = tmp_path_factory.mktemp("reports")
    src = root / "src"
    shutil.copytree(cms_dir / "2016-annual", src / "2016-annual")
    (src / "2017-annual").mkdir()
    shutil.copy(cms_dir / ZIP_2017, src / ZIP_2017)
    shutil.copytree(cms_dir / "2020-Q3-july", src / "2020-Q3-july")
    shutil.copytree(cms_dir / "2020-Q4-october", src / "2020-Q4-october")
    broken = src / "2020-Q4-october/trans_alpha.xlsx"
    broken.chmod(0o644)
    broken.write_bytes(broken_workbook(broken.read_bytes()))
    data_dir = root / "data"
    code, doc = hcpcs("backfill", "--source", str(src), "--data-dir", str(data_dir))
    assert code == EXIT_PUBLISHED, doc
    return src, data_dir, doc


def manifest(data_dir: Path, release: str) -> dict:
    return json.loads((DataDir(data_dir).release(release) / "manifest.json").read_bytes())


def transactions(data_dir: Path, release: str) -> pl.DataFrame:
    return pl.read_parquet(DataDir(data_dir).release(release) / "transactions.parquet")


PUBLISHED = {"2016-Q1": "HCPC2016_TransactionReport_Alpha.xlsx",
             "2017-Q1": "HCPCS2017_Trans Report_Alpha.xlsx", "2020-Q3": "trans_alpha.xlsx"}


@pytest.mark.realdata
def test_each_release_publishes_its_report(backfill) -> None:
    _, data_dir, doc = backfill
    assert [(r["release_id"], r["status"]) for r in doc["releases"]] == [
        ("2016-Q1", "published"), ("2017-Q1", "published"), ("2020-Q3", "published"),
        ("2020-Q4", "published")]
    for release, name in PUBLISHED.items():
        m, frame = manifest(data_dir, release), transactions(data_dir, release)
        assert dict(frame.schema) == {"release_id": pl.String(), **REPORT_SCHEMA}
        assert frame["release_id"].unique().to_list() == [release]
        assert counts(frame) == ACTIONS[release]
        assert (m["transaction_report"], m["transaction_report_error"]) == (name, None)
        assert m["counts"]["transactions"] == frame.height == sum(ACTIONS[release].values())
        assert m["files"]["transactions.parquet"]["rows"] == frame.height
    assert query(data_dir, "SELECT release_id, count(*) FROM transactions GROUP BY ALL "
                           "ORDER BY ALL") == [("2016-Q1", 6292), ("2017-Q1", 6498),
                                               ("2020-Q3", 7158)]


@pytest.mark.realdata
def test_a_report_that_cannot_be_read_never_stops_the_release(backfill) -> None:
    _, data_dir, doc = backfill
    [q4] = [r for r in doc["releases"] if r["release_id"] == "2020-Q4"]
    assert (q4["status"], q4["codes"]) == ("published", 7196)
    m = manifest(data_dir, "2020-Q4")
    assert m["transaction_report"] == "trans_alpha.xlsx"
    assert m["transaction_report_error"] == (
        "trans_alpha.xlsx, sheet 'Changes by HCPC', row 442: unknown type of change "
        f"'Coverage Revamp' {PHRASE_HINT}")
    assert m["counts"]["transactions"] == transactions(data_dir, "2020-Q4").height == 0
    assert dict(transactions(data_dir, "2020-Q4").schema) == {"release_id": pl.String(),
                                                               **REPORT_SCHEMA}


@pytest.mark.realdata
def test_the_raw_store_keeps_the_loose_reports_and_the_doctor_is_clean(backfill) -> None:
    _, data_dir, _ = backfill
    store = RawStore(DataDir(data_dir).raw)
    reports = {z.release_id: sidecar(z.path).get("report", {}).get("name")
               for z in store.list()}
    assert reports == {"2016-Q1": "HCPC2016_TransactionReport_Alpha.xlsx", "2017-Q1": None,
                       "2020-Q3": "trans_alpha.xlsx", "2020-Q4": "trans_alpha.xlsx"}
    [q1] = [z for z in store.list() if z.release_id == "2016-Q1"]
    assert sidecar(q1.path)["report"]["sha256"] == (
        "2a46b3ce0c07a46ceffefa2ce8ebea32e1bffafdc9a4c00867980faa278b9526")
    assert q1.sha256 == "1e3e902810899f40c6b1202f58af988dbf411d309cbd95e787eb326faffa9fb6"
    code, problems = hcpcs("doctor", "--data-dir", str(data_dir))
    assert (code, problems) == (0, [])


@pytest.mark.realdata
def test_a_release_derived_again_from_the_raw_store_keeps_its_report(backfill) -> None:
    src, data_dir, _ = backfill  # runs last: it changes the data directory
    shutil.rmtree(src)  # the report can only come from the raw store now
    damaged = DataDir(data_dir).release("2016-Q1") / "transactions.parquet"
    damaged.write_bytes(b"damaged")
    code, doc = hcpcs("doctor", "--repair", "--data-dir", str(data_dir))
    assert code == 0, doc
    assert [(r["release_id"], r["status"]) for r in doc["run"]["releases"]] == [
        ("2016-Q1", "published")]
    assert counts(transactions(data_dir, "2016-Q1")) == ACTIONS["2016-Q1"]
    assert manifest(data_dir, "2016-Q1")["transaction_report"] == PUBLISHED["2016-Q1"]


@pytest.mark.realdata
def test_a_link_in_place_of_a_kept_report_is_never_followed(
    july: Path, store: RawStore, tmp_path: Path
) -> None:
    stored = fetch(str(july / "anweb.xlsx"), store)
    kept = stored.path.with_name(f"{stored.sha256}.report.xlsx")
    forged = tmp_path / "forged.xlsx"
    forged.write_bytes(b"forged")
    kept.unlink()
    kept.symlink_to(forged)
    unlink = "remove the link, then fetch the release again"
    assert store.check() == [f"{kept}: a symbolic link in place of a stored file; not read "
                             f"({unlink})"]
    with pytest.raises(RawStoreError) as err:
        store.transaction_report(stored)
    assert str(err.value) == (f"{kept}: a symbolic link in place of a transaction report; not "
                              f"read ({unlink})")
    fetch(str(july / "anweb.xlsx"), store)  # the genuine report replaces the link
    assert not kept.is_symlink() and store.check() == []
    assert forged.read_bytes() == b"forged"


@pytest.mark.realdata
def test_a_malformed_report_entry_is_a_broken_sidecar(july: Path, store: RawStore) -> None:
    stored = fetch(str(july / "anweb.xlsx"), store)
    meta = sidecar(stored.path)
    meta["report"]["file"] = "../../elsewhere.xlsx"
    stored.path.with_suffix(".json").write_text(json.dumps(meta))
    kept = stored.path.with_name(f"{stored.sha256}.report.xlsx")
    assert store.list() == []
    assert store.check() == [
        f"{stored.path.with_suffix('.json')}: sidecar's report entry is malformed; {REFETCH}",
        f"{kept}: transaction report no sidecar names; not read ({REFETCH})"]


def test_a_manifest_written_before_transaction_reports_still_loads() -> None:
    doc = {"release_id": "2019-Q1", "quarter": "2019-Q1", "revision": 1, "source_url": None,
           "raw_sha256": "ab" * 32, "member_name": None, "fetched_at": None,
           "counts": {"codes": 1}, "schema_version": 1, "schema_fingerprint": "f",
           "pipeline_version": "0", "files": {}}
    m = Manifest.from_json(json.dumps(doc))
    assert (m.transaction_report, m.transaction_report_error) == (None, None)
    assert json.loads(m.to_json())["transaction_report"] is None
