"""How CMS packages a release, era by era: which file of a ZIP or folder is the release, in which
format, and which quarter it is (format notes §4.1-4.3, §5 items 8, 15, 19).

ZIPs are built in tmp_path from real records (the 2019 TXT) and real workbooks (the 2020 ANWEB
and transaction-report xlsx), read from ../shared/cms at run time.
"""

from __future__ import annotations

import io
import itertools
import re
import zipfile
from pathlib import Path

import polars as pl
import pytest

from contracts.release import ReleaseFile, release_from_name
from sources.archive import (
    ArchiveError,
    DataMember,
    data_format,
    member_rank,
    read_cross_check,
    read_data_member,
    read_release_file,
    select_data_member,
)
from sources.catalog import folder_catalog, release_of_file
from sources.fetch import FetchError, fetch
from sources.rawstore import RawStore
from sources.registry import resolve_source
from tests.conftest import real_txt
from tests.test_sources_fetch import encrypted, make_zip
from transforms import parse_anweb, parse_member
from transforms.fixed_width import format_code

pytestmark = pytest.mark.realdata

OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: A legacy .xls as far as the archive looks (its magic); no real one is in ../shared/cms.
XLS = OLE2 + bytes(504) + "Workbook".encode("utf-16-le")
TRANS_REPORT = "HCPC2026_APR_ANWEB_Transaction Report.xlsx"
COMPANIONS = {  # what a modern ZIP carries beside its data (the April 2026 listing, §4.2)
    "HCPC2026_recordlayout.txt": b"HCPCS Record Layout 2026: 31 fields\r\n",
    "HCPC2026_APR_Corrections.xlsx": b"corrections",
    "NOC codes_APR2026.xlsx": b"noc",
    "proc_notes_APR2026.txt": b"PROCESSING NOTES\r\n",
}


@pytest.fixture(scope="module")
def records(cms_dir: Path) -> list[bytes]:
    """The real 2019 records, one bytes block (first line and continuations) per code."""
    lines = real_txt(cms_dir, "2019-Q1").split(b"\r\n")
    firsts = [i for i, ln in enumerate(lines) if re.match(rb"[ A-Z0-9]{5}\d{5}[37]", ln)]
    bounds = [*firsts, len(lines) - 1]
    return [b"\r\n".join(lines[a:b]) + b"\r\n" for a, b in itertools.pairwise(bounds)]


@pytest.fixture(scope="module")
def workbook(cms_dir: Path) -> bytes:
    return (cms_dir / "2020-Q3-july/anweb.xlsx").read_bytes()


@pytest.fixture(scope="module")
def trans_report(cms_dir: Path) -> bytes:
    return (cms_dir / "2020-Q3-july/trans_alpha.xlsx").read_bytes()


def txt(records: list[bytes], first: int, count: int) -> bytes:
    return b"".join(records[first : first + count])


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("HCPC2019_CONTR_ANWEB.txt", ".txt"),
        ("HCPC17_CONTR_ANWEB.txt", ".txt"),
        ("HCPC2013_A-N.txt", ".txt"),
        ("HCPC2025_JAN_ANWEB_12172024.TXT", ".txt"),
        ("2026/HCPC2026_OCT_ANWEB_v2.txt", ".txt"),
        ("HCPC2020_APRIL_ANWEB_w_disclaimer_v5.xlsx", ".xlsx"),
        ("HCPC2020_OCT_ANWEB.xlsx", ".xlsx"),
        ("HCPC2021_JULY_ANWEB_v2.xlsx", ".xlsx"),
        ("HCPC2021_APR_CONTR_ANWEB.xlsx", ".xlsx"),
        ("HCPC2020_ANWEB_w_disclaimer.xls", ".xls"),
        ("anweb.xlsx", ".xlsx"),
        # companions and other formats: never the data
        ("HCPC2026_recordlayout.txt", None),
        ("HCPCS2016_recordlayout.txt", None),
        ("trans_alpha.xlsx", None),
        ("HCPC2020_TRANS_ALPHA_w_disclaimer.xlsx", None),
        (TRANS_REPORT, None),
        ("HCPC2026_OCT_ANWEB_Transaction Report_v2.xlsx", None),
        ("HCPC2016_TransactionReport_Alpha.xlsx", None),
        ("HCPC2016_TransReport_Changes_by_Action_Code.txt", None),
        ("HCPC2020_Corrections_Alpha.xlsx", None),
        ("V1_HCPC2018_Corrections_ANWEB.xlsx", None),
        ("NOC_Codes_2019.xlsx", None),
        ("HCPC2019_CONTR_ANWEB.prn", None),
        ("HCPC2020_ANWEB_w_disclaimer.csv", None),
        ("HCPC2019_README.txt", None),
    ],
)
def test_data_file_names(name: str, kind: str | None) -> None:
    assert data_format(name) == kind


def test_revision_rank_reads_every_data_format() -> None:
    assert member_rank("HCPC2020_APRIL_ANWEB_w_disclaimer_v5.xlsx") == (5, "")
    assert member_rank("HCPC2026_JUL_ANWEB_06172026.xlsx") == (0, "20260617")
    assert member_rank("HCPC2026_OCT_ANWEB_v2.txt") > member_rank("HCPC2026_OCT_ANWEB.txt")
    assert member_rank("HCPC2020_ANWEB_w_disclaimer.xls") == (0, "")


def test_latest_date_stamp_wins_and_the_record_layout_is_never_chosen(records, tmp_path) -> None:
    first, reissue = txt(records, 0, 40), txt(records, 0, 41)
    path = write(
        tmp_path / "january-2025-alpha-numeric-hcpcs-file.zip",
        make_zip({
            "HCPC2025_JAN_ANWEB_12172024.txt": first,
            "HCPC2025_JAN_ANWEB_01122026.txt": reissue,
            **COMPANIONS,
        }),
    )  # fmt: skip
    assert read_release_file(path) == DataMember("HCPC2025_JAN_ANWEB_01122026.txt", reissue)
    assert read_cross_check(path) is None
    assert parse_anweb(reissue).codes.height == 41
    assert release_of_file(path) == "2025-Q1"
    only_layout = make_zip({k: v for k, v in COMPANIONS.items() if k.endswith(".txt")})
    members = "among its 2 members: HCPC2026_recordlayout.txt, proc_notes_APR2026.txt"
    with pytest.raises(ArchiveError, match=rf"^archive: no HCPCS data file .* {members}$"):
        read_data_member(only_layout)


def test_vn_suffix_beats_no_suffix_and_a_tie_is_refused(records) -> None:
    plain, v2 = txt(records, 0, 30), txt(records, 30, 30)
    archive = make_zip({"HCPC2026_OCT_ANWEB.txt": plain, "HCPC2026_OCT_ANWEB_v2.txt": v2,
                        **COMPANIONS})  # fmt: skip
    assert read_data_member(archive) == DataMember("HCPC2026_OCT_ANWEB_v2.txt", v2)
    tie = make_zip({"HCPC2026_OCT_ANWEB_v2.txt": v2, "HCPC2026_OCT_ANWEB_V2.TXT": plain})
    with pytest.raises(ArchiveError, match="ambiguous data file, 2 candidates"):
        read_data_member(tie)


@pytest.mark.parametrize(
    ("zip_name", "member", "release"),
    [
        ("october-2023-alpha-numeric-hcpcs-files.zip", "HCPC2023_OCT_ANWEB_v2.txt", "2023-Q4"),
        ("april-2024-alpha-numeric-hcpcs-files.zip", "HCPC2024_APR_ANWEB_v5.txt", "2024-Q2"),
        ("january-2026-alpha-numeric-hcpcs-file.zip", "HCPC2026_JAN_ANWEB_12082025.txt", "2026-Q1"),
        ("2024-alpha-numeric-hcpcs-file.zip", "HCPC2024_JAN_ANWEB_v4.txt", "2024-Q1"),
    ],
)
def test_plural_and_singular_slugs(
    records, tmp_path, zip_name: str, member: str, release: str
) -> None:
    path = write(tmp_path / "in" / zip_name, make_zip({member: txt(records, 0, 20), **COMPANIONS}))
    assert release_from_name(zip_name) == release
    assert folder_catalog(tmp_path / "in") == [ReleaseFile(release, str(path))]
    stored = fetch(str(path), RawStore(tmp_path / "raw"))
    assert (stored.release_id, stored.member_name, stored.path.suffix) == (release, member, ".zip")


def test_xlsx_only_zip_reads_the_workbook(workbook, trans_report, tmp_path) -> None:
    path = write(
        tmp_path / "july-2021-alpha-numeric-hcpcs-file.zip",
        make_zip({
            "HCPC2021_JULY_ANWEB_v2.xlsx": workbook,
            "HCPC2021_JULY_ANWEB_Transaction Report.xlsx": trans_report,
            "HCPC2021_TRANS_ALPHA.xlsx": trans_report,
            "HCPC2021_JUL_Corrections.xlsx": trans_report,
        }),
    )  # fmt: skip
    assert read_release_file(path) == DataMember("HCPC2021_JULY_ANWEB_v2.xlsx", workbook)
    assert read_cross_check(path) is None  # nothing to check the workbook against
    renamed = write(tmp_path / "download.zip", path.read_bytes())
    assert release_of_file(renamed) == "2021-Q3"  # from the workbook's name
    stored = fetch(str(renamed), RawStore(tmp_path / "raw"))
    assert (stored.release_id, stored.member_name) == ("2021-Q3", "HCPC2021_JULY_ANWEB_v2.xlsx")
    assert read_release_file(stored.path) == DataMember("HCPC2021_JULY_ANWEB_v2.xlsx", workbook)


def test_txt_is_the_record_and_the_xlsx_its_cross_check(records, workbook, trans_report,
                                                        tmp_path) -> None:  # fmt: skip
    data = txt(records, 0, 50)
    path = write(
        tmp_path / "april-2026-alpha-numeric-hcpcs-file.zip",
        make_zip({
            "HCPC2026_APR_ANWEB.xlsx": workbook,  # first in the ZIP: order does not matter
            "HCPC2026_APR_ANWEB.txt": data,
            TRANS_REPORT: trans_report,
            **COMPANIONS,
        }),
    )  # fmt: skip
    assert read_release_file(path) == DataMember("HCPC2026_APR_ANWEB.txt", data)
    assert read_cross_check(path) == DataMember("HCPC2026_APR_ANWEB.xlsx", workbook)
    # even a later revision of the workbook does not outrank the TXT, the source of record
    newer_book = make_zip({"HCPC2026_APR_ANWEB.txt": data, "HCPC2026_APR_ANWEB_v2.xlsx": workbook})
    assert read_data_member(newer_book).name == "HCPC2026_APR_ANWEB.txt"
    assert select_data_member(["HCPC2020_ANWEB_w_disclaimer.xls", "HCPC2020_ANWEB.xlsx"]) == (
        "HCPC2020_ANWEB.xlsx"
    )


@pytest.mark.parametrize(
    ("rel", "member", "cross_check", "size"),
    [
        ("2017-annual/2017-Alpha-Numeric-HCPCS-File.zip", "HCPC17_CONTR_ANWEB.txt",
         "HCPC17_CONTR_ANWEB.xlsx", 664_636),
        ("2019-annual/2019-Alpha-Numeric-HCPCS-File.zip", "HCPC2019_CONTR_ANWEB.txt",
         "HCPC2019_CONTR_ANWEB.xlsx", 711_538),
    ],
)  # fmt: skip
def test_real_annual_zips_hold_txt_and_its_workbook(
    cms_dir: Path, rel: str, member: str, cross_check: str, size: int
) -> None:
    path = cms_dir / rel
    assert read_release_file(path).name == member
    check = read_cross_check(path)
    assert check is not None and (check.name, len(check.data)) == (cross_check, size)
    with zipfile.ZipFile(path) as zf:
        assert check.data == zf.read(cross_check)


def test_a_bare_workbook_is_a_workbook_not_a_release_zip(cms_dir: Path, workbook, tmp_path) -> None:
    bare = cms_dir / "2020-Q3-july/anweb.xlsx"
    assert read_release_file(bare) == DataMember("anweb.xlsx", workbook)
    assert read_cross_check(bare) is None
    assert read_cross_check(cms_dir / "2016-annual/HCPC2016_CONTR_ANWEB.txt") is None
    # named by its content, whatever a download or a copy called it
    for name, named in (("download", "download.xlsx"), ("anweb.zip", "anweb.xlsx"),
                        ("anweb.txt", "anweb.xlsx")):  # fmt: skip
        assert read_release_file(write(tmp_path / name, workbook)) == DataMember(named, workbook)
    assert read_release_file(write(tmp_path / "HCPC2020_ANWEB_w_disclaimer", XLS)) == (
        DataMember("HCPC2020_ANWEB_w_disclaimer.xls", XLS)
    )


def test_the_stored_copy_of_a_workbook_is_still_a_workbook(cms_dir: Path, workbook,
                                                           tmp_path) -> None:  # fmt: skip
    store = RawStore(tmp_path / "raw")
    source = cms_dir / "2020-Q3-july/anweb.xlsx"
    stored = fetch(str(source), store)  # the quarter comes from the folder, 2020-Q3-july
    assert (stored.release_id, stored.member_name, stored.status) == ("2020-Q3", "anweb.xlsx",
                                                                      "new")  # fmt: skip
    assert stored.path == store.root / "2020-Q3" / f"{stored.sha256}.xlsx"
    member = read_release_file(stored.path)
    assert member == DataMember(f"{stored.sha256}.xlsx", workbook)
    assert parse_member(member.name, member.data).codes.height == 7_158  # 6,789 + 369 (§4.4)
    assert fetch(source.as_uri(), store, release="2020-Q3").status == "unchanged"
    xls = write(tmp_path / "in" / "HCPC2020_ANWEB_w_disclaimer.xls", XLS)
    legacy = fetch(str(xls), store)
    assert (legacy.release_id, legacy.path.suffix) == ("2020-Q1", ".xls")
    assert read_release_file(legacy.path).name == f"{legacy.sha256}.xls"


def test_a_catalog_gives_a_workbook_its_release_explicitly(cms_dir: Path, tmp_path) -> None:
    """The release id can be given rather than read off a name: a catalog's release,url line."""
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(f"release,url\n2020-Q4,{cms_dir / '2020-Q3-july/anweb.xlsx'}\n")
    (offered,) = resolve_source(str(catalog), tmp_path)
    stored = fetch(offered.source_url, RawStore(tmp_path / "raw"), release=offered.release_id)
    assert (offered.release_id, stored.release_id, stored.member_name) == (
        "2020-Q4", "2020-Q4", "anweb.xlsx")


def test_a_transaction_report_is_never_fetched_as_a_release(cms_dir: Path, tmp_path) -> None:
    store = RawStore(tmp_path / "raw")
    with pytest.raises(FetchError, match=r"trans_alpha\.xlsx is a workbook, but not an ANWEB data"):
        fetch(str(cms_dir / "2020-Q3-july/trans_alpha.xlsx"), store, release="2020-Q3")
    assert store.list() == []


def _deflated(parts: dict[str, bytes]) -> bytes:
    """A workbook-shaped ZIP whose parts are compressed (a bomb is small until opened)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"../HCPC2021_JULY_ANWEB_v2.xlsx": b"PK"}, "unsafe member name '../HCPC2021_JULY_ANW"),
        ({"HCPC2021_JULY_ANWEB_v2.xlsx": b"not a workbook"},
         "HCPC2021_JULY_ANWEB_v2.xlsx is not a readable workbook"),
        ({"HCPC2021_JULY_ANWEB_v2.xlsx": make_zip({"xl/workbook.xml": b"<x/>"})},
         "HCPC2021_JULY_ANWEB_v2.xlsx is not an Excel workbook (no xl/workbook.xml)"),
        ({"HCPC2021_JULY_ANWEB_v2.xlsx": _deflated({"[Content_Types].xml": b"",
                                                    "xl/workbook.xml": b" " * 2_000_000})},
         "workbook HCPC2021_JULY_ANWEB_v2.xlsx declares 2,000,000 bytes uncompressed, over the "
         "1,000,000-byte cap"),
        ({"HCPC2020_ANWEB_w_disclaimer.xls": XLS + "EncryptedPackage".encode("utf-16-le")},
         "workbook HCPC2020_ANWEB_w_disclaimer.xls is encrypted (password-protected)"),
    ],
)  # fmt: skip
def test_a_workbook_member_gets_the_same_safety(members: dict[str, bytes], message: str) -> None:
    with pytest.raises(ArchiveError, match=re.escape(message)):
        read_data_member(make_zip(members), max_bytes=1_000_000)


def test_an_encrypted_or_oversized_workbook_member_is_refused(workbook) -> None:
    archive = make_zip({"HCPC2021_JULY_ANWEB_v2.xlsx": workbook})
    with pytest.raises(ArchiveError, match=r"member HCPC2021_JULY_ANWEB_v2\.xlsx is encrypted$"):
        read_data_member(encrypted(archive))
    with pytest.raises(ArchiveError, match=f"declares {len(workbook):,} bytes, over the 1,000-"):
        read_data_member(archive, max_bytes=1_000)


def test_a_folder_offers_the_txt_not_its_workbook_copy(records, workbook, trans_report,
                                                       tmp_path) -> None:  # fmt: skip
    root = tmp_path / "mirror"
    annual = write(root / "2016-annual/HCPC2016_CONTR_ANWEB.txt", txt(records, 0, 30))
    write(root / "2016-annual/HCPC2016_CONTR_ANWEB.xlsx", workbook)
    write(root / "2016-annual/HCPC2016_TransactionReport_Alpha.xlsx", trans_report)
    first = write(root / "2024-Q3/HCPC2024_JULY_ANWEB.txt", txt(records, 100, 30))
    reissue = write(root / "2024-Q3/HCPC2024_JULY_ANWEB_v2.txt", txt(records, 100, 31))
    write(root / "2024-Q3/HCPC2024_JULY_ANWEB_v2.xlsx", workbook)
    quarterly = write(root / "2021-Q3-july/anweb.xlsx", workbook)
    write(root / "2021-Q3-july/trans_alpha.xlsx", trans_report)
    legacy = write(root / "2020-annual/HCPC2020_ANWEB_w_disclaimer.xls", XLS)
    write(root / "2019-annual/2019-HCPCS-NOC-Codes.zip", make_zip({"NOC_Codes_2019.xlsx": b"x"}))
    write(root / "2022-Q1/download.zip", make_zip({"README.txt": b"no data here"}))
    expected = [
        ReleaseFile("2016-Q1", str(annual)),
        ReleaseFile("2020-Q1", str(legacy)),
        ReleaseFile("2021-Q3", str(quarterly)),
        ReleaseFile("2024-Q3", str(first)),  # two TXT issues of one quarter: both offered
        ReleaseFile("2024-Q3", str(reissue)),
    ]
    assert folder_catalog(root) == expected
    assert resolve_source(str(quarterly), tmp_path) == [expected[2]]
    store = RawStore(tmp_path / "raw")
    assert [fetch(f.source_url, store, release=f.release_id).release_id for f in expected] == [
        "2016-Q1", "2020-Q1", "2021-Q3", "2024-Q3", "2024-Q3r2"
    ]  # fmt: skip


def test_a_description_past_4500_characters_survives_the_fixed_width_file(
    cms_dir: Path, real_parsed
) -> None:
    """§5 item 19: G-code descriptions outgrow 4,000 characters, so sequence numbers pass 05000.
    G0503 of the real 2019 TXT gets a 4,500+ character description made of real wording."""
    codes = real_parsed["2019-Q1"].codes
    longest = codes.sort(pl.col("long_description").str.len_chars(), descending=True)
    words = " ".join(longest["long_description"].head(8)).split()
    text = ""
    while len(text) <= 4_500:
        text = f"{text} {words.pop(0)}".lstrip()
    lines = format_code({**codes.filter(pl.col("code") == "G0503").row(0, named=True),
                         "long_description": text})  # fmt: skip
    assert (len(text), len(lines), lines[-1][5:11]) == (4_504, 59, "059004")  # sequence 05900
    original = real_txt(cms_dir, "2019-Q1").split(b"\r\n")
    at = [i for i, line in enumerate(original) if line.startswith(b"G0503")]
    long_lines = [line.encode() for line in lines]
    data = b"\r\n".join([*original[: at[0]], *long_lines, *original[at[-1] + 1 :]])
    result = parse_anweb(data)
    assert result.rejects.height == 0
    assert result.line_count == real_parsed["2019-Q1"].line_count - len(at) + len(lines)
    g0503 = result.codes.filter(pl.col("code") == "G0503").row(0, named=True)
    assert (g0503["long_description"], g0503["line_count"]) == (text, len(lines))
    others = pl.col("code") != "G0503"
    assert (
        result.codes.filter(others)
        .drop("source_line")
        .equals(codes.filter(others).drop("source_line"))
    )
