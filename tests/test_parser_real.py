"""The parser on real CMS releases: exact counts and exact values. Its field-by-field agreement
with CMS's own xlsx copy of each release is in ``test_xlsx_real.py``."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

EXPECTED = {  # release: (codes, procedures, modifiers, physical lines, disclaimer lines kept)
    "2016-Q1": (6293, 5956, 337, 10317, 0),
    "2017-Q1": (6498, 6155, 343, 10828, 0),
    "2019-Q1": (6800, 6440, 360, 11630, 4),
}


@pytest.mark.parametrize("release", sorted(EXPECTED))
def test_counts_and_no_rejects(real_parsed, release):
    result = real_parsed[release]
    codes, procedures, modifiers, lines, preamble = EXPECTED[release]
    kinds = dict(result.codes.group_by("kind").len().iter_rows())
    assert (result.codes.height, kinds["procedure"], kinds["modifier"]) == (
        codes,
        procedures,
        modifiers,
    )
    assert result.rejects.height == 0
    assert result.line_count == lines
    assert result.preamble.height == preamble
    assert result.codes["code"].n_unique() == codes
    assert result.codes.filter(pl.col("unparsed_values").list.len() > 0).height == 0
    # every physical record line belongs to exactly one code
    assert result.codes["line_count"].sum() == {"2016-Q1": 10316, "2017-Q1": 10828}.get(
        release, 11622
    )


def test_2019_disclaimer_block_is_kept_not_parsed(real_parsed):
    preamble = real_parsed["2019-Q1"].preamble
    assert preamble["line"].to_list() == [1, 3, 5, 6]
    assert preamble["text"][0].startswith("***Disclaimers")
    assert "\u00a0" in preamble["text"][3]  # the 0xA0 byte decoded as cp1252 NBSP


def _row(result, code: str) -> dict:
    return result.codes.filter(pl.col("code") == code).row(0, named=True)


def test_s2107_matches_the_seed_code_page(real_parsed):
    """The document this project started from (../shared/seed): S2107 in 2019."""
    row = _row(real_parsed["2019-Q1"], "S2107")
    assert row["long_description"] == (
        "Adoptive immunotherapy i.e. development of specific anti-tumor reactivity "
        "(e.g., tumor-infiltrating lymphocyte therapy) per course of treatment"
    )
    assert row["short_description"] == "Adoptive immunotherapy"
    assert row["pricing_indicators"] == ["00"]
    assert row["multiple_pricing_indicator"] == "9"
    assert row["coverage_code"] == "I"
    assert row["betos"] == "Z2"
    assert row["types_of_service"] == ["9"]
    assert row["anesthesia_base_units"] == 0
    assert row["added_date"] == dt.date(2002, 4, 1)
    assert row["action_effective_date"] == dt.date(2002, 4, 1)
    assert row["termination_date"] is None
    assert row["action_code"] == "N"
    assert (row["kind"], row["line_count"], row["source_line"]) == ("procedure", 2, 10578)


def test_modifier_keeps_its_two_characters_and_references(real_parsed):
    row = _row(real_parsed["2019-Q1"], "AM")
    assert row["kind"] == "modifier"
    assert row["cross_references"] == ["QM"]
    assert row["processing_note"] == "0069"  # leading zeros kept
    assert row["mcm_references"] == ["4105.7"]
    assert row["pricing_indicators"] == []
    assert row["anesthesia_base_units"] is None
    assert row["coverage_code"] == "D"


def test_code_with_four_types_of_service(real_parsed):
    assert _row(real_parsed["2017-Q1"], "E0210")["types_of_service"] == ["A", "L", "P", "R"]


def test_code_with_multiple_pricing_and_lab_certification(real_parsed):
    codes = real_parsed["2019-Q1"].codes
    multi = codes.filter(pl.col("pricing_indicators").list.len() > 1)
    assert multi.select("code", "pricing_indicators", "multiple_pricing_indicator").rows() == [
        ("G0124", ["11", "21"], "C"),
        ("G0431", ["13", "21"], "A"),
        ("G0472", ["13", "21"], "A"),
        ("G9143", ["13", "21"], "A"),
        ("P3001", ["11", "21"], "C"),
        ("P9612", ["57", "21"], "A"),
        ("P9615", ["57", "21"], "A"),
    ]
    with_lab = codes.filter(pl.col("lab_certifications").list.len() > 0)
    assert with_lab.height == 71
    assert _row(real_parsed["2019-Q1"], "G0464")["lab_certifications"] == ["220", "310", "900"]


def test_longest_description_spans_seventeen_lines(real_parsed):
    codes = real_parsed["2019-Q1"].codes
    longest = codes.sort("line_count", descending=True).row(0, named=True)
    assert longest["line_count"] == 17
    assert len(longest["long_description"]) > 1194  # longer than the xlsx cell CMS truncated


@pytest.mark.parametrize("release", sorted(EXPECTED))
def test_the_writer_writes_cms_own_lines(real_parsed, cms_dir, release):
    """``format_code`` (the demo releases' and the round-trip tests' writer) writes each parsed
    code back as CMS wrote it: every one-line code's line exactly (right-justified numbers,
    dates, lists in place, modifiers right-justified), and every longer code's first line outside
    the description, whose word wrap is CMS's own."""
    from tests.conftest import real_txt
    from transforms.fixed_width import format_code

    lines = real_txt(cms_dir, release).decode("latin-1").splitlines()
    description = slice(11, 91)  # columns 12-91: the long description's chunk
    one_line = several = 0
    for row in real_parsed[release].codes.iter_rows(named=True):
        written, cms = format_code(row)[0].rstrip(), lines[row["source_line"] - 1].rstrip()
        if row["line_count"] == 1:
            one_line += written == cms
        else:
            cut = [line[: description.start] + line[description.stop :] for line in (written, cms)]
            several += cut[0] == cut[1]
    assert (one_line, several) == {"2016-Q1": (3678, 2615), "2017-Q1": (3789, 2709),
                                   "2019-Q1": (3936, 2864)}[release]
