"""CMS's ANWEB workbooks read by ``parse_anweb_xlsx`` into exactly the TXT parser's frame, and the
TXT reconciled with them: exact counts on the six real workbooks, every difference named and
classified, and built workbooks for what the real ones lack (a header lower down, a 4,500+
character description, broken rows, a legacy .xls, garbage)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import polars as pl
import pytest
import xlwt
from polars.testing import assert_frame_equal

from contracts.errors import TerminalError
from contracts.layout import CODES_SCHEMA, FIELDS
from tests.conftest import REAL_RELEASES
from transforms import (
    UnsupportedFileError,
    WorkbookError,
    parse_anweb_xlsx,
    parse_member,
)
from transforms.fixed_width import _dates, _ints, typed_text
from transforms.reconcile import DIFFERENCES, RECONCILIATION_SCHEMA, reconcile

WORKBOOKS = {  # release: (path under ../shared/cms, the workbook inside that ZIP or None)
    "2016-Q1": ("2016-annual/HCPC2016_CONTR_ANWEB.xlsx", None),
    "2017-Q1": ("2017-annual/2017-Alpha-Numeric-HCPCS-File.zip", "HCPC17_CONTR_ANWEB.xlsx"),
    "2019-Q1": ("2019-annual/2019-Alpha-Numeric-HCPCS-File.zip", "HCPC2019_CONTR_ANWEB.xlsx"),
    "2020-Q2": ("2020-Q2-april/anweb.xlsx", None),
    "2020-Q3": ("2020-Q3-july/anweb.xlsx", None),
    "2020-Q4": ("2020-Q4-october/anweb.xlsx", None),
}
# release: codes, procedures, modifiers, header's Excel row, sheet rows, preamble rows, and the
# Excel row of G0503 when a stray overflow row (record id 4, SEQNUM 0020) follows it
EXPECTED = {
    "2016-Q1": (6293, 5956, 337, 1, 6294, [], None),
    "2017-Q1": (6498, 6155, 343, 1, 6499, [], None),
    "2019-Q1": (6800, 6440, 360, 8, 6809, [1, 3, 5, 6], 2254),
    "2020-Q2": (7097, 6728, 369, 11, 7109, [1, 3], 2300),
    "2020-Q3": (7158, 6789, 369, 1, 7160, [], 2305),
    "2020-Q4": (7196, 6825, 371, 11, 7208, [1, 3], 2326),
}
JAN_2020_CSV = "derived/HCPC2020_ANWEB_w_disclaimer.csv"  # CMS's .xls of Jan 2020, as CSV


def _workbook_bytes(cms_dir: Path, release: str) -> bytes:
    path, member = WORKBOOKS[release]
    if member is None:
        return (cms_dir / path).read_bytes()
    with zipfile.ZipFile(cms_dir / path) as zf:
        return zf.read(member)


@pytest.fixture(scope="module")
def workbooks(cms_dir: Path):
    """Every real workbook parsed once: release -> ParseResult."""
    return {release: parse_anweb_xlsx(_workbook_bytes(cms_dir, release)) for release in WORKBOOKS}


@pytest.mark.parametrize("release", sorted(EXPECTED))
def test_counts_of_every_real_workbook(workbooks, release):
    result = workbooks[release]
    codes, procedures, modifiers, header, rows, preamble, overflow = EXPECTED[release]
    kinds = dict(result.codes.group_by("kind").len().iter_rows())
    assert (result.codes.height, kinds["procedure"], kinds["modifier"]) == (
        codes,
        procedures,
        modifiers,
    )
    assert dict(result.codes.schema) == CODES_SCHEMA
    assert result.codes["code"].n_unique() == codes
    # no rejects: every SEQNUM is 4 digits (0010, 0020), read as the TXT's 00100, 00200
    assert result.rejects.height == 0
    assert result.line_count == rows
    assert result.preamble["line"].to_list() == preamble
    assert result.codes["source_line"].to_list() == sorted(result.codes["source_line"])
    assert result.codes["source_line"][0] == header + 1  # the header row is found by its HCPC
    assert result.codes.filter(pl.col("unparsed_values").list.len() > 0).height == 0
    # every sheet row after the header is a code's row: the overflow row is G0503's second
    assert result.codes["line_count"].sum() == rows - header
    spans = result.codes.filter(pl.col("line_count") > 1).select("code", "source_line").rows()
    assert spans == ([] if overflow is None else [("G0503", overflow)])


def test_2020_disclaimer_rows_are_the_preamble(workbooks):
    for release in ("2020-Q2", "2020-Q4"):
        preamble = workbooks[release].preamble
        assert preamble["text"][0] == (
            "Note regarding coverage and payment indicators for codes in CMS’ 2020 HCPCS "
            "Update and DMEPOS Fee Schedule Files"
        )
        assert preamble["text"][1].startswith("If specific Medicare coverage or payment")
    # 2019: the same disclaimer as the TXT's, on the same row numbers as its lines
    assert workbooks["2019-Q1"].preamble["text"][0] == "***Disclaimers"


def test_overflow_row_completes_the_g0503_description(workbooks, real_parsed):
    """CMS cut G0503's cell at 1,194 characters and put the rest on a record id 4 row; appended
    with one space, the description is the TXT's but for two double spaces the TXT lost."""
    txt = real_parsed["2019-Q1"].codes.filter(pl.col("code") == "G0503")["long_description"][0]
    for release in ("2019-Q1", "2020-Q2", "2020-Q3", "2020-Q4"):
        row = workbooks[release].codes.filter(pl.col("code") == "G0503").row(0, named=True)
        assert (row["line_count"], len(row["long_description"])) == (2, 1253)
        assert row["long_description"].endswith(
            "other treatment goals and are prepared for discharge from active treatment"
        )
        assert " ".join(row["long_description"].split()) == " ".join(txt.split())
    assert len(txt) == 1251


def test_real_values_read_as_the_txt_reads_them(workbooks):
    codes = workbooks["2020-Q4"].codes
    s2107 = codes.filter(pl.col("code") == "S2107").row(0, named=True)
    assert s2107["pricing_indicators"] == ["00"]
    assert s2107["types_of_service"] == ["9"]
    assert s2107["betos"] == "Z2"
    assert s2107["anesthesia_base_units"] == 0  # "  0" in the cell
    assert s2107["added_date"] == dt.date(2002, 4, 1)
    am = codes.filter(pl.col("code") == "AM").row(0, named=True)  # "   AM" in the HCPC cell
    assert (am["kind"], am["processing_note"], am["anesthesia_base_units"]) == (
        "modifier",
        "0069",
        None,
    )
    assert am["cross_references"] == ["QM"]


@pytest.mark.parametrize(
    ("release", "differing"),
    [
        ("2016-Q1", {"action_effective_date": 115, "long_description": 4}),
        ("2017-Q1", {"action_effective_date": 3, "long_description": 10}),
        (
            "2019-Q1",
            {"action_effective_date": 115, "long_description": 11, "types_of_service": 2},
        ),
    ],
)
def test_frame_equals_the_txt_frame_but_for_the_known_differences(
    workbooks, real_parsed, release, differing
):
    """Same codes, same schema, same values in every column (lists, nulls, unparsed values)
    except the rows the reconciliation names; source_line and line_count count other things."""
    xlsx = workbooks[release].codes.drop("source_line", "line_count").sort("code")
    txt = real_parsed[release].codes.drop("source_line", "line_count").sort("code")
    assert xlsx["code"].to_list() == txt["code"].to_list()
    counts = {c: int((~xlsx[c].eq_missing(txt[c])).sum()) for c in xlsx.columns}
    assert {c: n for c, n in counts.items() if n} == differing
    assert_frame_equal(xlsx.drop(differing), txt.drop(differing))


@pytest.mark.parametrize(
    ("release", "by_class"),
    [
        (
            "2016-Q1",
            {
                ("action_effective_date", "blank_in_xlsx"): 115,
                ("long_description", "whitespace"): 4,
            },
        ),
        (
            "2017-Q1",
            {
                ("action_effective_date", "value_differs"): 3,
                ("long_description", "whitespace"): 10,
            },
        ),
        (
            "2019-Q1",
            {
                ("action_effective_date", "blank_in_xlsx"): 115,
                # 10 double spaces at wrap points, and G0503: the xlsx cell was cut at 1,194
                # characters, but its overflow row carries the rest (see the test above)
                ("long_description", "whitespace"): 11,
                ("types_of_service[4]", "blank_in_txt"): 2,
            },
        ),
    ],
)
def test_every_field_agrees_with_cms_xlsx_except_named_differences(
    workbooks, real_parsed, release, by_class
):
    diff = reconcile(real_parsed[release].codes, workbooks[release].codes)
    assert dict(diff.schema) == RECONCILIATION_SCHEMA
    assert {(f, c): n for f, c, n in diff.group_by("field", "difference").len().rows()} == (
        by_class
    )
    # Action effective dates: the xlsx leaves them blank, except three 2017 typos in the xlsx
    # (in all three the xlsx value is the code's added date).
    dates = diff.filter(pl.col("field") == "action_effective_date")
    if release == "2017-Q1":
        assert dates.drop("field").rows() == [
            ("L5638", "19960101", "19860101", "value_differs"),
            ("L5640", "19960101", "19860101", "value_differs"),
            ("L5643", "19860101", "19880101", "value_differs"),
        ]
    else:
        assert dates["xlsx_value"].null_count() == dates.height
    # 2019: the TXT dropped the 4th type of service (R) that the xlsx and the 2017 TXT carry.
    tos = diff.filter(pl.col("field") == "types_of_service[4]")
    assert tos.drop("field").rows() == (
        [("E0210", None, "R", "blank_in_txt"), ("E0776", None, "R", "blank_in_txt")]
        if release == "2019-Q1"
        else []
    )


def test_every_difference_class_is_found(real_parsed):
    """Each class on purpose, on real codes: the xlsx side edited one way per code."""
    record = real_parsed["2019-Q1"].codes.filter(
        pl.col("code").is_in(["A1", "AM", "E0210", "G0503", "L5638", "S2107"])
    )
    edits = {
        "AM": pl.col("short_description").str.replace(" ", "  "),
        "E0210": pl.lit(None, pl.String).alias("betos"),
        "G0503": pl.col("long_description").str.slice(0, 1194),
        "L5638": pl.lit("C").alias("action_code"),
        "S2107": pl.concat_list(pl.lit("9"), pl.lit("1")).alias("types_of_service"),
    }
    cross_check = pl.concat(
        [record.filter(pl.col("code") == code).with_columns(edit) for code, edit in edits.items()]
        + [record.filter(pl.col("code") == "S2107").with_columns(code=pl.lit("S9999"))]
    )
    diff = reconcile(record, cross_check)
    assert diff.select("code", "field", "difference").rows() == [
        ("A1", "code", "missing_in_xlsx"),
        ("AM", "short_description", "whitespace"),
        ("E0210", "betos", "blank_in_xlsx"),
        ("G0503", "long_description", "truncated_in_xlsx"),
        ("L5638", "action_code", "value_differs"),
        ("S2107", "types_of_service[2]", "blank_in_txt"),
        ("S9999", "code", "only_in_xlsx"),
    ]
    assert set(diff["difference"]) == set(DIFFERENCES)
    assert diff.filter(pl.col("code") == "L5638")["xlsx_value"].to_list() == ["C"]


def test_a_value_that_cannot_be_typed_compares_by_its_raw_text(real_parsed):
    record = real_parsed["2019-Q1"].codes.filter(pl.col("code") == "S2107")
    cross_check = record.with_columns(
        added_date=pl.lit(None, pl.Date),
        unparsed_values=pl.lit(
            pl.Series(
                [[{"field": "added_date", "value": "20020431"}]],
                dtype=CODES_SCHEMA["unparsed_values"],
            )
        ),
    )
    assert reconcile(record, cross_check).rows() == [
        ("S2107", "added_date", "20020401", "20020431", "value_differs")
    ]


# --- Workbooks built in the tests, from real records -------------------------------------------


@pytest.fixture(scope="module")
def jan_2020(cms_dir: Path) -> list[list[str]]:
    """The rows of CMS's January 2020 workbook (header first), from its CSV export."""
    with (cms_dir / JAN_2020_CSV).open(newline="", encoding="ascii") as f:
        return list(csv.reader(f))


def _row(rows: list[list[str]], code: str, cells: dict[str, str] | None = None) -> list[str]:
    """The first row of ``code``, with ``cells`` (header name -> value) replaced."""
    row = next(r for r in rows[1:] if r[0].strip() == code)[:]
    for name, value in (cells or {}).items():
        row[rows[0].index(name)] = value
    return row


def _xlsx(*sheets: list[list[str | None]]) -> bytes:
    """A workbook of ``sheets``, each a list of rows from Excel row 1 (empty cells left out)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for i, rows in enumerate(sheets):
        sheet = book.create_sheet(f"Sheet{i + 1}")
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row, start=1):
                if value:
                    sheet.cell(r, c, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_built_workbook_header_lower_down_and_a_4500_character_description(jan_2020):
    """A notes sheet first, then disclaimer rows, blank rows, and G0503 with a description of
    over 4,500 characters (CMS's longest reached 4,501 in Oct 2025): it comes through whole."""
    header = jan_2020[0]
    g0503 = [r for r in jan_2020 if r[0] == "G0503"]
    long = " ".join([g0503[0][3], g0503[1][3]] * 4)
    assert len(long) > 4500
    first = _row(jan_2020, "G0503")
    first[header.index("LONG DESCRIPTION")] = long + "   "  # trailing blanks are trimmed
    data = _xlsx(
        [["Notes"], ["HCPC is not here"]],
        [
            ["Disclaimer:", None, "the data starts below"],
            [],
            [None, "  second line  "],
            [],
            header,
            _row(jan_2020, "AM"),
            first,
            ["   ", "\t"],  # blank: white space only
            _row(jan_2020, "S2107"),
        ],
    )
    result = parse_anweb_xlsx(data)
    assert result.preamble.rows() == [
        (1, "Disclaimer:\tthe data starts below"),
        (3, "  second line  "),
    ]
    assert result.codes.select("code", "source_line", "line_count").rows() == [
        ("AM", 6, 1),
        ("G0503", 7, 1),
        ("S2107", 9, 1),
    ]
    assert result.codes["long_description"][1] == long
    assert (result.rejects.height, result.line_count) == (0, 9)
    assert dict(result.codes.schema) == CODES_SCHEMA


def test_broken_rows_are_rejected_and_nothing_is_lost(jan_2020):
    """Rows that are no record, a continuation that continues nothing, a sequence number that is
    not 4 or 5 digits: rejects naming the row; untypable values and cells outside the layout's
    columns go to ``unparsed_values``; a 5-digit SEQNUM (the TXT's) is accepted too."""
    header = [*jan_2020[0], "NOTE"]
    rows = [
        header,
        [*_row(jan_2020, "A1", {"RECID": "9"}), None],
        [*_row(jan_2020, "A2", {"HCPC": "  "}), None],
        [*_row(jan_2020, "A3", {"SEQNUM": "00100"}), None],
        [*_row(jan_2020, "A4", {"SEQNUM": "010"}), None],
        [*_row(jan_2020, "S2107", {"ADD DT": "20020230", "ANEST_BU": " x"}), "kept"],
        [*_row(jan_2020, "S2112"), None],
        ["S2115", "0020", "4", "the continuation of another code"],
    ]
    result = parse_anweb_xlsx(_xlsx(rows))
    assert result.codes["code"].to_list() == ["A3", "S2107"]
    s2107 = result.codes.row(1, named=True)
    assert (s2107["added_date"], s2107["anesthesia_base_units"]) == (None, None)
    assert s2107["unparsed_values"] == [
        {"field": "anesthesia_base_units", "value": " x"},
        {"field": "added_date", "value": "20020230"},
        {"field": "NOTE", "value": "kept"},
    ]
    assert result.rejects.drop("text").rows() == [
        (2, "A1", "row is not a record: record id 9 is not 3, 4, 7 or 8"),
        (3, None, "row is not a record: its HCPC cell is blank"),
        (5, "A4", "sequence number '010' is not numeric"),
        (
            7,
            "S2112",
            "record of S2112 rejected because of line 8: continuation line of S2115 "
            "inside the record of S2112 that starts at line 7 (orphan continuation or code "
            "mismatch)",
        ),
        (
            8,
            "S2115",
            "continuation line of S2115 inside the record of S2112 that starts at "
            "line 7 (orphan continuation or code mismatch)",
        ),
    ]
    assert result.rejects["text"][-1] == "S2115\t0020\t4\tthe continuation of another code"


def test_a_repeated_code_is_kept_and_reported(jan_2020):
    """As in the TXT parser: both records stay codes (the gate's code_unique refuses the file)
    and the later one is a reject naming the first."""
    rows = [jan_2020[0], _row(jan_2020, "S2107"), _row(jan_2020, "S2112"),
            _row(jan_2020, "S2107")]
    result = parse_anweb_xlsx(_xlsx(rows))
    assert result.codes["code"].to_list() == ["S2107", "S2112", "S2107"]
    assert result.rejects.drop("text").rows() == [
        (4, "S2107", "code S2107 appears again: its first record starts at line 2")]
    assert result.rejects["text"][0].startswith("S2107\t0010\t3\tAdoptive immunotherapy")


def test_legacy_xls_of_january_2020(jan_2020):
    """CMS's January 2020 file was an .xls; only its CSV export survives, so the .xls is
    written again from it (xlwt, BIFF8) and read like the xlsx."""
    book = xlwt.Workbook()
    sheet = book.add_sheet("HCPC2020_ANWEB")
    for r, row in enumerate(jan_2020):
        for c, value in enumerate(row):
            if value:
                sheet.write(r, c, value)
    out = io.BytesIO()
    book.save(out)
    result = parse_member("HCPC2020_ANWEB_w_disclaimer.xls", out.getvalue())
    kinds = dict(result.codes.group_by("kind").len().iter_rows())
    assert (result.codes.height, kinds["procedure"], kinds["modifier"]) == (7079, 6710, 369)
    assert (result.rejects.height, result.line_count) == (0, 7081)
    g0503 = result.codes.filter(pl.col("code") == "G0503").row(0, named=True)
    assert (g0503["source_line"], g0503["line_count"], len(g0503["long_description"])) == (
        2286,
        2,
        1253,
    )


def test_not_an_anweb_workbook_is_a_clear_terminal_error(jan_2020):
    with pytest.raises(WorkbookError, match=r"^bad\.xlsx: not a readable \.xlsx or \.xls"):
        parse_member("bad.xlsx", b"PK\x03\x04 not really a zip")
    with pytest.raises(
        WorkbookError,
        match=r"^notes\.xlsx: no sheet has a header row \(a cell "
        r"'HCPC'\); sheets: 'Sheet1', 'Sheet2'$",
    ):
        parse_member("notes.xlsx", _xlsx([["Notes"]], [["HCPCS", "SEQNUM"]]))
    header = [c for c in jan_2020[0] if c not in ("PRICE4", "TOS5")]
    with pytest.raises(
        WorkbookError,
        match=r"^short\.xlsx, sheet 'Sheet1', row 2: the header "
        r"row lacks the columns PRICE4, TOS5$",
    ) as err:
        parse_member("short.xlsx", _xlsx([["note"], header]))
    assert isinstance(err.value, TerminalError)


def test_member_is_parsed_by_its_suffix(cms_dir):
    txt = parse_member(
        "X/HCPC2016_CONTR_ANWEB.TXT", (cms_dir / REAL_RELEASES["2016-Q1"][0]).read_bytes()
    )
    assert txt.codes.height == 6293
    with pytest.raises(
        UnsupportedFileError,
        match=r"^HCPC2020_ANWEB\.csv: a \.csv file is no "
        r"ANWEB data file \(\.txt, \.xlsx or \.xls\)$",
    ) as err:
        parse_member("HCPC2020_ANWEB.csv", b"HCPC,SEQNUM")
    assert isinstance(err.value, TerminalError) and isinstance(err.value, ValueError)


def test_typed_text_accepts_exactly_what_the_txt_parser_accepts():
    """The xlsx types its text with ``typed_text``; the TXT types bytes with numpy (``_dates``,
    ``_ints``). Same answers on every edge: no day 0 or 32, February 29th only in leap years,
    signs and white space around numbers, Int16's range."""
    rng = np.random.default_rng(0)
    dates = [
        f"{y:04d}{m:02d}{d:02d}"
        for y in (1, 4, 100, 400, 1900, 2000, 2023, 2024)
        for m in range(14)
        for d in range(33)
    ]
    dates += ["".join(rng.choice(list("0123456789"), 8)) for _ in range(5000)]
    dates += ["2019013a", " 2019010", "-2019010", "2019-1-1"]
    days, valid = _dates(np.frombuffer("".join(dates).encode(), np.uint8).reshape(-1, 8))
    text = pl.Series(dates).str.strip_chars_end()
    typed = pl.select(typed_text(FIELDS["added_date"], pl.lit(text))).to_series()
    assert typed.cast(pl.Int32).to_list() == [
        int(d) if v else None for d, v in zip(days, valid, strict=True)
    ]
    width = FIELDS["anesthesia_base_units"].length
    ints = [
        "".join(t)
        for n in range(1, width + 1)
        for t in itertools.product(" +-09\t\xa0a5", repeat=n)
    ]
    padded = [i.ljust(width) for i in ints]
    values, valid = _ints(
        np.frombuffer("".join(padded).encode("cp1252"), np.uint8).reshape(-1, width)
    )
    text = pl.Series(padded).str.strip_chars_end()
    typed = pl.select(typed_text(FIELDS["anesthesia_base_units"], pl.lit(text))).to_series()
    assert typed.to_list() == [int(v) if ok else None for v, ok in zip(values, valid, strict=True)]
    assert pl.select(typed_text(FIELDS["anesthesia_base_units"], pl.lit("99999"))).item() is None
