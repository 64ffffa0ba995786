"""Structural rules of the fixed-width parser: rejects with line and reason, never a crash."""

from __future__ import annotations

import datetime as dt
import re

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.layout import CODES_SCHEMA, FIELDS, REJECTS_SCHEMA
from transforms import parse_anweb
from transforms.fixed_width import (
    format_code,
    group_records,
    rejected_records,
    typed_text,
    unparsed_list,
)

A = {
    "code": "A0021",
    "kind": "procedure",
    "long_description": "Ambulance service, outside state per mile, transport (medicaid only) "
    "with a description long enough to need a second line of text",
    "short_description": "Outside state ambulance serv",
    "pricing_indicators": ["00"],
    "multiple_pricing_indicator": "9",
    "coverage_code": "I",
    "betos": "O1A",
    "types_of_service": ["D"],
    "anesthesia_base_units": 0,
    "added_date": dt.date(2000, 1, 1),
    "action_effective_date": dt.date(2000, 1, 1),
    "action_code": "N",
}
B = {**A, "code": "A0080", "long_description": "Non-emergency transport: per mile"}
MOD = {"code": "AM", "kind": "modifier", "long_description": "Physician, team member service",
       "short_description": "Physician, team member svc", "coverage_code": "D",
       "cross_references": ["QM"], "added_date": dt.date(1991, 1, 1),
       "action_code": "N"}  # fmt: skip


def lines_of(*rows: dict) -> list[str]:
    return [line for row in rows for line in format_code(row)]


def parse(lines: list[str], eol: str = "\r\n"):
    return parse_anweb((eol.join(lines) + eol).encode("cp1252"))


def test_three_codes_round_trip():
    lines = lines_of(MOD, A, B)
    assert len(lines) == 4  # A0021 needs a continuation line
    result = parse(lines)
    assert result.rejects.height == 0
    assert result.codes["code"].to_list() == ["AM", "A0021", "A0080"]
    assert result.codes["source_line"].to_list() == [1, 2, 4]
    assert result.codes["line_count"].to_list() == [1, 2, 1]
    assert result.codes.schema == pl.Schema(CODES_SCHEMA)
    a = result.codes.row(1, named=True)
    assert {k: a[k] for k in A} == A


def test_real_release_round_trips_through_the_writer(real_parsed):
    codes = real_parsed["2019-Q1"].codes
    again = parse([line for row in codes.iter_rows(named=True) for line in format_code(row)]).codes
    for column in codes.columns:
        same = codes[column].eq_missing(again[column])
        if column in ("source_line", "line_count"):
            continue  # the writer wraps words its own way
        if column == "long_description":
            differ = codes.filter(~same)
            assert differ.height == 5  # a double space at a wrap point is lost (format notes §5.10)
            collapse = pl.col("long_description").str.replace_all(r"\s+", " ")
            assert differ.select(collapse).equals(again.filter(~same).select(collapse))
        else:
            assert same.all(), column


def test_lf_crlf_trimmed_and_padded_lines_parse_the_same():
    lines = lines_of(MOD, A, B)
    padded = parse(lines)
    assert parse(lines, eol="\n").codes.equals(padded.codes)
    assert parse([line.rstrip() for line in lines]).codes.equals(padded.codes)


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("trim", [False, True], ids=["padded", "trimmed"])
@pytest.mark.parametrize("rows", [(MOD, A, B), (MOD, B, A)], ids=["one-line", "continuation"])
def test_last_record_without_a_line_ending_is_read(rows, trim, eol):
    """A file whose last line has no line ending (a last record of one line, or a continuation
    line, right-trimmed as CMS trims them or padded to 320) still yields its last code, whole."""
    lines = [line.rstrip() if trim else line for line in lines_of(*rows)]
    result = parse_anweb(eol.join(lines).encode("cp1252"))
    assert result.codes["code"].to_list() == [row["code"] for row in rows]
    last = result.codes.row(-1, named=True)
    assert {k: last[k] for k in rows[-1]} == rows[-1]
    assert last["line_count"] == len(lines_of(rows[-1]))
    assert (result.line_count, result.rejects.height) == (4, 0)


@pytest.mark.parametrize("n", [0, 1, 8, 11, 40])
def test_disclaimer_block_of_any_length_is_preamble(n):
    disclaimer = ["***Disclaimers\t\t\t", "*Inclusion or exclusion\xa0does not imply coverage", ""]
    block = (disclaimer * 20)[:n]
    result = parse(block + lines_of(MOD, A))
    assert result.rejects.height == 0
    assert result.codes.height == 2
    assert result.preamble.height == sum(1 for line in block if line.strip())
    assert result.codes["source_line"].to_list() == [n + 1, n + 2]


def reject_rows(lines: list[str]) -> list[tuple[int, str | None, str]]:
    return parse(lines).rejects.select("line", "code", "reason").rows()


def test_orphan_continuation_before_any_first_line():
    lines = lines_of(A, B)
    assert reject_rows([lines[1], *lines[2:]]) == [
        (1, "A0021", "orphan continuation line: no first record (record id 3 or 7) before it")
    ]


def test_sequence_gap_rejects_the_whole_code():
    lines = lines_of(A, B)
    lines[1] = lines[1][:5] + "00300" + lines[1][10:]
    result = parse(lines)
    assert result.rejects.select("line", "code", "reason").rows() == [
        (1, "A0021", "record of A0021 rejected because of line 2: sequence number 00300 does "
         "not follow 00100 (gap)"),
        (2, "A0021", "sequence number 00300 does not follow 00100 (gap)"),
    ]  # fmt: skip
    assert result.codes["code"].to_list() == ["A0080"]
    assert result.rejects["text"][1] == lines[1]  # the raw line, as it was


def test_code_mismatch_inside_a_group():
    lines = lines_of(A, B)
    lines[1] = "A0022" + lines[1][5:]
    rows = reject_rows(lines)
    assert rows[1] == (
        2,
        "A0022",
        "continuation line of A0022 inside the record of A0021 that starts at line 1 "
        "(orphan continuation or code mismatch)",
    )
    assert [r[0] for r in rows] == [1, 2]


def test_non_numeric_sequence_and_wrong_first_sequence():
    lines = lines_of(MOD, A, B)
    lines[0] = lines[0][:5] + "0O100" + lines[0][10:]
    lines[3] = lines[3][:5] + "00200" + lines[3][10:]
    assert reject_rows(lines) == [
        (1, "AM", "sequence number '0O100' is not numeric"),
        (4, "A0080", "first line of A0080 has sequence number 00200, expected 00100"),
    ]


def test_modifier_continuation_cannot_continue_a_procedure():
    lines = lines_of(A, B)
    lines[1] = lines[1][:10] + "8" + lines[1][11:]
    assert reject_rows(lines)[1][2] == "record id 8 cannot continue a record with id 3"


def test_continuation_carrying_data_and_overlong_line():
    lines = lines_of(A, B)
    lines[1] = lines[1][:200] + "X" + lines[1][201:]
    lines[2] = lines[2] + "EXTRA"
    assert reject_rows(lines) == [
        (1, "A0021", "record of A0021 rejected because of line 2: continuation line carries "
         "data in columns 92-320"),
        (2, "A0021", "continuation line carries data in columns 92-320"),
        (3, "A0080", "line is 325 characters long; a record has 320"),
    ]  # fmt: skip


def test_stray_text_after_the_first_record_is_rejected_not_dropped():
    lines = lines_of(MOD, A)
    rows = reject_rows([*lines[:1], "page 2 of the report", *lines[1:], "", "   "])
    assert rows == [(2, None, "line does not have the shape of a record")]


def test_untypable_values_are_kept_not_lost():
    line = lines_of(B)[0]
    line = line[:268] + "20190230" + line[276:]  # added date: February 30th
    line = line[:259] + "Z" + line[260:]  # the filler at column 260
    line = line[:265] + " x0" + line[268:]  # anesthesia base units
    row = parse([line]).codes.row(0, named=True)
    assert row["added_date"] is None and row["anesthesia_base_units"] is None
    assert row["unparsed_values"] == [
        {"field": "anesthesia_base_units", "value": " x0"},
        {"field": "added_date", "value": "20190230"},
        {"field": "filler_260", "value": "Z"},
    ]


def test_a_repeated_code_keeps_both_records_and_rejects_each_later_one():
    """The gate's ``code_unique`` refuses the file (both records stay codes); the parse result
    says so too, naming the line of the code's first record."""
    result = parse(lines_of(A, B, MOD, A, A))
    assert result.codes["code"].to_list() == ["A0021", "A0080", "AM", "A0021", "A0021"]
    assert result.codes["source_line"].to_list() == [1, 3, 4, 5, 7]
    assert result.rejects.select("line", "code", "reason").rows() == [
        (5, "A0021", "code A0021 appears again: its first record starts at line 1"),
        (7, "A0021", "code A0021 appears again: its first record starts at line 1"),
    ]
    assert result.rejects["text"].to_list() == [lines_of(A)[0]] * 2  # the raw first line
    assert result.rejects.schema == pl.Schema(REJECTS_SCHEMA)


def test_a_repeated_code_among_broken_records_is_reported_in_line_order():
    lines = lines_of(A, B, B)
    lines[1] = lines[1][:5] + "00300" + lines[1][10:]  # A0021 rejected for a gap
    assert reject_rows(lines) == [
        (1, "A0021", "record of A0021 rejected because of line 2: sequence number 00300 does "
         "not follow 00100 (gap)"),
        (2, "A0021", "sequence number 00300 does not follow 00100 (gap)"),
        (4, "A0080", "code A0080 appears again: its first record starts at line 3"),
    ]  # fmt: skip


def test_empty_and_non_record_input():
    for data in (b"", b"\r\n\r\n", b"just some text\nand more"):
        result = parse_anweb(data)
        assert result.codes.height == 0 and result.rejects.height == 0
        assert result.codes.schema == pl.Schema(CODES_SCHEMA)
        assert result.rejects.schema == pl.Schema(REJECTS_SCHEMA)


# Unicode White_Space, as the parser's (Rust) regex engine defines it.
_NOT_SPACE = re.compile(r"[^\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")


def _accounted(result, data: bytes) -> None:
    """Every non-blank line is a code line, a reject or preamble: nothing silently dropped."""
    text = data.removeprefix(b"\xef\xbb\xbf").decode("cp1252", errors="replace")
    lines = [] if text == "" else text.removesuffix("\n").split("\n")
    nonblank = sum(1 for line in lines if _NOT_SPACE.search(line.rstrip("\r")))
    # a repeated code's later record is both a code and a reject: count its line once
    rejected = result.rejects.filter(~pl.col("line").is_in(result.codes["source_line"].implode()))
    used = result.codes["line_count"].sum() + rejected.height + result.preamble.height
    assert used == nonblank
    assert result.line_count == len(lines)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(data):
    _accounted(parse_anweb(data), data)


_record_like = st.lists(
    st.tuples(
        st.sampled_from(["A0021", "A0080", "   AM", "J9035", "a0021", "     "]),
        st.sampled_from(["00100", "00200", "00300", "0O100", "     "]),
        st.sampled_from("34789 "),
        st.text(alphabet=st.characters(codec="cp1252", exclude_characters="\r\n"), max_size=330),
    ).map(lambda t: "".join(t[:3]) + t[3]),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(_record_like, st.sampled_from(["\r\n", "\n"]))
def test_record_shaped_noise_never_crashes(lines, eol):
    data = eol.join(lines).encode("cp1252")
    result = parse_anweb(data)
    _accounted(result, data)
    assert result.codes["code"].is_not_null().all()


def test_the_writer_defaults_refuses_and_places_each_value() -> None:
    """What a row leaves out is blank (a row without ``kind`` is a procedure, one without a long
    description is one line); a value too long for its field is refused by name."""
    (line,) = format_code({"code": "A0001", "anesthesia_base_units": 7})
    assert (line[:11], line[11:91].strip(), line[265:268]) == ("A000100100" + "3", "", "  7")
    assert format_code({"code": "A0001", "long_description": ""}) == [line[:265] + "   " +
                                                                      line[268:]]
    assert format_code({"code": "AM", "kind": "modifier"})[0][:11] == "   AM001007"
    with pytest.raises(ValueError, match=r"^A0001: statute '12345678901' is longer than 10$"):
        format_code({"code": "A0001", "statute": "12345678901"})


def test_typed_text_types_exactly_what_the_record_parser_accepts() -> None:
    """The xlsx copy's values come as text: dates only as eight digits that make a date, numbers
    only as digits; anything else is null (kept raw by the caller), never an error."""
    dates = pl.Series(["20200131", "20201301", "2020013", "200131", None])
    assert pl.select(typed_text(FIELDS["added_date"], pl.lit(dates))).to_series().to_list() == [
        dt.date(2020, 1, 31), None, None, None, None]
    units = pl.Series([" 12", "x", "", None])
    got = pl.select(typed_text(FIELDS["anesthesia_base_units"], pl.lit(units))).to_series()
    assert (got.dtype, got.to_list()) == (pl.Int16, [12, None, None, None])
    assert typed_text(FIELDS["statute"], pl.col("s")).meta.eq(pl.col("s"))


def test_unparsed_values_hold_each_bad_value_under_its_label_in_entry_order() -> None:
    frame = pl.DataFrame({"a": ["1", "2"], "b": ["x", "y"], "bad_a": [True, False],
                          "bad_b": [True, True]})
    out = frame.select(unparsed_list([("a", pl.col("a"), pl.col("bad_a")),
                                      ("b[2]", pl.col("b"), pl.col("bad_b"))])).to_series()
    assert out.name == "unparsed_values"
    assert out.to_list() == [[{"field": "a", "value": "1"}, {"field": "b[2]", "value": "x"}],
                             [{"field": "b[2]", "value": "y"}]]


def test_rows_of_unknown_length_are_rejected_for_what_is_wrong_with_them() -> None:
    """The xlsx copy's rows have no line length (null: not checked); a bad row among them is
    rejected for its own fault, and the rest of its record with it."""
    rows = pl.DataFrame({
        "line": [2, 3, 4], "code": ["A0001", "A0001", "A0002"],
        "sequence_number": ["00100", "002X0", "00100"], "record_id": ["3", "4", "3"],
        "length": [None, None, None], "beyond_chunk": [None, None, None],
        "text": ["first", "second", "other"],
    }, schema_overrides={"length": pl.Int64, "beyond_chunk": pl.String})
    rejected = rejected_records(group_records(rows))
    assert rejected.sort("line").select("line", "code", "reason").rows() == [
        (2, "A0001", "record of A0001 rejected because of line 3: sequence number '002X0' is "
                     "not numeric"),
        (3, "A0001", "sequence number '002X0' is not numeric"),
    ]


def test_a_continuation_of_a_code_differing_in_its_first_character_is_rejected() -> None:
    """The fast structure check compares the codes of a record's lines as numbers: every one of
    the five characters counts, the first too."""
    lines = lines_of(A, B)
    lines[1] = "B" + lines[1][1:]
    assert reject_rows(lines)[1] == (
        2, "B0021", "continuation line of B0021 inside the record of A0021 that starts at line 1 "
        "(orphan continuation or code mismatch)")


def _with_text(line: str, field: str, text: str) -> str:
    f = FIELDS[field]
    return line[: f.start - 1] + text.rjust(f.length) + line[f.end :]


@pytest.mark.parametrize(
    ("field", "text", "value"),
    [
        ("added_date", "20000229", dt.date(2000, 2, 29)),  # 2000 is a leap year (divisible by 400)
        ("added_date", "20240229", dt.date(2024, 2, 29)),
        ("added_date", "19000229", None),  # 1900 is not (divisible by 100)
        ("added_date", "20230229", None),
        ("added_date", "20231231", dt.date(2023, 12, 31)),
        ("anesthesia_base_units", "  7", 7),
        ("anesthesia_base_units", " 12", 12),
        ("anesthesia_base_units", "100", 100),
        ("anesthesia_base_units", "7  ", 7),  # left-justified: still the number
        ("anesthesia_base_units", "1 2", None),
    ],
)
def test_dates_and_numbers_are_read_to_the_digit(field: str, text: str, value) -> None:
    (line,) = lines_of({**B, "long_description": "One line"})
    codes = parse([_with_text(line, field, text)]).codes
    assert codes[field].to_list() == [value]
    assert codes["unparsed_values"].to_list() == [
        [] if value is not None else [{"field": field, "value": text.strip()}]]
