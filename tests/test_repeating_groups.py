"""Repeating groups (``Field.occurs`` > 1) as CMS wrote them: trailing blanks dropped, a blank
between two values kept as null (element i is occurrence i + 1), ``[]`` when there is none; the
same lists from the TXT and from CMS's workbook, on every real release and on built ones."""

from __future__ import annotations

from pathlib import Path

import fastexcel
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.layout import DATA_FIELDS, FIELDS, Field
from tests.conftest import REAL_RELEASES, real_txt
from tests.test_xlsx_real import WORKBOOKS, _row, _workbook_bytes, _xlsx
from transforms import parse_anweb, parse_anweb_xlsx
from transforms.fixed_width import as_written, format_code
from transforms.reconcile import reconcile
from transforms.xlsx import XLSX_COLUMNS

GROUPS: tuple[Field, ...] = tuple(f for f in DATA_FIELDS if f.occurs > 1)
NAMES = [f.name for f in GROUPS]


@pytest.fixture(scope="module")
def workbooks(cms_dir: Path):
    """Every real workbook (2016, 2017, 2019, the 2020 quarters) parsed once."""
    return {release: parse_anweb_xlsx(_workbook_bytes(cms_dir, release)) for release in WORKBOOKS}


def _every_real_frame(real_parsed, workbooks) -> dict[str, pl.DataFrame]:
    return {f"{r} txt": real_parsed[r].codes for r in REAL_RELEASES} | {
        f"{r} xlsx": workbooks[r].codes for r in WORKBOOKS
    }


def test_no_real_list_holds_a_null_and_a_blank_group_is_empty(real_parsed, workbooks):
    """No release of 2016-2020 (TXT or xlsx) has a gap between two occurrences, so once the
    trailing blanks are dropped no list holds a null; a code without any value has ``[]``: the
    pricing indicators and types of service of exactly the modifiers."""
    for name, codes in _every_real_frame(real_parsed, workbooks).items():
        modifiers = codes.filter(pl.col("kind") == "modifier").height
        for group in NAMES:
            lists = codes[group]
            assert lists.null_count() == 0, (name, group)
            assert lists.list.eval(pl.element().is_null()).list.any().sum() == 0, (name, group)
        for group in ("pricing_indicators", "types_of_service"):
            empty = codes.filter(pl.col(group).list.len() == 0)
            assert (empty.height, set(empty["kind"])) == (modifiers, {"modifier"}), (name, group)


def test_list_lengths_of_2019(real_parsed):
    """How many occurrences CMS filled, per group, on the 6,800 codes of 2019 (0 = ``[]``)."""
    codes = real_parsed["2019-Q1"].codes
    lengths = {
        g: dict(sorted(codes.group_by(pl.col(g).list.len()).len().rows())) for g in NAMES
    }
    assert lengths == {
        "pricing_indicators": {0: 360, 1: 6433, 2: 7},
        "cim_references": {0: 6300, 1: 482, 2: 18},
        "mcm_references": {0: 5714, 1: 1030, 2: 53, 3: 3},
        "lab_certifications": {0: 6729, 1: 60, 2: 9, 3: 2},
        "cross_references": {0: 6648, 1: 147, 2: 5},
        "types_of_service": {0: 360, 1: 4887, 2: 1002, 3: 551},
    }


@pytest.mark.parametrize("release", ["2019-Q1", "2020-Q4"])
def test_one_value_and_none_on_real_codes(real_parsed, workbooks, release):
    """S2107 (a procedure) and AM (a modifier): one value, several groups with none."""
    frames = [workbooks[release].codes]
    if release in real_parsed:
        frames.append(real_parsed[release].codes)
    for codes in frames:
        rows = codes.filter(pl.col("code").is_in(["AM", "S2107"])).select("code", *NAMES).rows()
        assert rows == [
            ("AM", [], [], ["4105.7"], [], ["QM"], []),
            ("S2107", ["00"], [], [], [], [], ["9"]),
        ]


@pytest.mark.parametrize("release", sorted(REAL_RELEASES))
def test_txt_and_xlsx_agree_on_every_list(real_parsed, workbooks, release):
    """Every group of every code, list for list (lengths included); the one exception is CMS's
    own: the 2019 TXT dropped the 4th type of service of E0210 and E0776 (``test_xlsx_real``)."""
    txt = real_parsed[release].codes.select("code", *NAMES)
    xlsx = workbooks[release].codes.select("code", *NAMES)
    both = txt.join(xlsx, on="code", suffix="_xlsx")
    assert both.height == txt.height == xlsx.height
    differ = [
        (code, g, t, x)
        for g in NAMES
        for code, t, x in both.filter(pl.col(g).ne_missing(pl.col(f"{g}_xlsx")))
        .select("code", g, f"{g}_xlsx")
        .rows()
    ]
    assert differ == (
        [
            ("E0210", "types_of_service", ["A", "L", "P"], ["A", "L", "P", "R"]),
            ("E0776", "types_of_service", ["A", "E", "P"], ["A", "E", "P", "R"]),
        ]
        if release == "2019-Q1"
        else []
    )


# --- Gaps built from real records: no real release has one ----------------------------------


def _blank_txt(data: bytes, line: int, f: Field, occurrences: list[int]) -> bytes:
    """The TXT with occurrences (1-based) of ``f`` blanked on physical line ``line``."""
    lines = data.split(b"\n")
    record = bytearray(lines[line - 1])
    for n in occurrences:
        start = f.offsets()[n - 1]
        record[start : start + f.length] = b" " * f.length
    lines[line - 1] = bytes(record)
    return b"\n".join(lines)


@pytest.fixture(scope="module")
def sheet_2017(cms_dir: Path) -> list[list[str]]:
    """The cells of CMS's 2017 workbook as text, header first (its header is Excel row 1)."""
    reader = fastexcel.read_excel(_workbook_bytes(cms_dir, "2017-Q1"))
    cells = reader.load_sheet(0, header_row=None, dtypes="string").to_polars()
    return [[(c or "").strip() if i == 0 else c or "" for c in row]
            for i, row in enumerate(cells.rows())]


@pytest.mark.parametrize(
    ("code", "group", "blanked", "expected"),
    [
        ("E0210", "types_of_service", [2], ["A", None, "P", "R"]),
        ("E0210", "types_of_service", [2, 3], ["A", None, None, "R"]),
        ("E0210", "types_of_service", [4], ["A", "L", "P"]),
        ("E0210", "types_of_service", [1, 2, 3, 4], []),
        ("G0124", "pricing_indicators", [1], [None, "21"]),
        ("G0464", "lab_certifications", [2], ["220", None, "900"]),
    ],
)
def test_a_gap_built_in_a_real_record_is_kept_by_both_parsers(
    cms_dir, real_parsed, sheet_2017, code, group, blanked, expected
):
    """A real 2017 record with occurrences blanked, in the TXT and in the workbook: both parsers
    give the same list, the gap a null at its position, and the reconciliation of the edited TXT
    with the real one names exactly the blanked occurrences."""
    f = FIELDS[group]
    real = real_parsed["2017-Q1"].codes
    line = real.filter(pl.col("code") == code)["source_line"][0]
    txt = parse_anweb(_blank_txt(real_txt(cms_dir, "2017-Q1"), line, f, blanked)).codes
    cells = {XLSX_COLUMNS[group][n - 1]: "" for n in blanked}
    xlsx = parse_anweb_xlsx(_xlsx([sheet_2017[0], _row(sheet_2017, code, cells)])).codes
    assert txt.filter(pl.col("code") == code)[group].to_list() == [expected]
    assert xlsx[group].to_list() == [expected]
    assert xlsx.select(NAMES).equals(txt.filter(pl.col("code") == code).select(NAMES))
    assert reconcile(txt, real).select("code", "field", "difference").rows() == [
        (code, f"{group}[{n}]", "blank_in_txt") for n in blanked
    ]


# --- Any values: no list ends in a null ------------------------------------------------------


def _occurrence(f: Field) -> st.SearchStrategy[str | None]:
    return st.none() | st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-", min_size=1,
                               max_size=f.length)


_GROUP_VALUES = st.fixed_dictionaries(
    {f.name: st.lists(_occurrence(f), min_size=f.occurs, max_size=f.occurs) for f in GROUPS}
)


def _as_cms_wrote(values: list[str | None]) -> list[str | None]:
    """The reference: the list cut after its last value."""
    kept = [i for i, v in enumerate(values) if v is not None]
    return values[: kept[-1] + 1] if kept else []


@settings(max_examples=40, deadline=None)
@given(_GROUP_VALUES)
def test_any_occurrences_read_the_same_by_both_parsers_and_never_end_in_null(
    real_parsed, sheet_2017, groups
):
    """S2107's real record with any values (or blanks) in every occurrence of every group,
    written as a TXT record and as a workbook row: both parsers give each list cut after its last
    value, nulls where blanks sit between values."""
    s2107 = real_parsed["2017-Q1"].codes.filter(pl.col("code") == "S2107").row(0, named=True)
    txt = parse_anweb(("\r\n".join(format_code(s2107 | groups)) + "\r\n").encode()).codes
    cells = {
        column: value or ""
        for f in GROUPS
        for column, value in zip(XLSX_COLUMNS[f.name], groups[f.name], strict=True)
    }
    xlsx = parse_anweb_xlsx(_xlsx([sheet_2017[0], _row(sheet_2017, "S2107", cells)])).codes
    for codes in (txt, xlsx):
        got = codes.row(0, named=True)
        for name, values in groups.items():
            assert got[name] == _as_cms_wrote(values), name
            assert not got[name] or got[name][-1] is not None, name


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.none() | st.sampled_from(["1", "22"]), max_size=8), max_size=20))
def test_the_shared_expression_cuts_after_the_last_value(lists):
    got = pl.select(as_written(pl.lit(pl.Series(lists, dtype=pl.List(pl.String))), 8)).to_series()
    assert got.to_list() == [_as_cms_wrote(values) for values in lists]
