"""CMS's ANWEB workbook (.xlsx, or legacy .xls) -> exactly the codes frame the TXT parser makes.

CMS ships each release's data twice: the fixed-width TXT (the source of record) and a workbook
with one row per code (48 columns, every value stored as text). Some releases survive only as the
workbook (every 2020 quarter here), so it is read into the same codes frame (``CODES_SCHEMA``) by
the TXT parser's own rules: each field's column comes from the layout table (``Field.xlsx`` names
the first occurrence, PRICE1 -> PRICE2...), text is right-trimmed and null when blank, codes are
stripped (modifiers are right-justified, ``"   A1"``), dates and ints are typed by ``typed_text``
and a value that cannot be typed stays in ``unparsed_values``, named as the TXT parser names it.

The sheet: the first one with a cell ``HCPC``; that row is the header (Excel row 1, 8 or 11 in
real files), its non-blank rows before are the preamble. A row with record id 3 or 7 and a code is
a code. The stray record id 4 row of 2019-2023 (G0503, SEQNUM 0020) is what its record id says, a
continuation: the end of a description CMS cut at 1,194 characters. It is checked and grouped by
the TXT parser's structural rules (the xlsx SEQNUM 0010 is the TXT's 00100 less its last digit)
and its text appended with one space, as the TXT joins its lines. Other non-blank rows are rejects.
Row numbers are Excel's: calamine (through fastexcel) reads the sheet from row 1, cells as text.
"""

from __future__ import annotations

import fastexcel
import polars as pl

from contracts.errors import TerminalError
from contracts.layout import CODES_SCHEMA, DATA_FIELDS, FIELDS, REJECTS_SCHEMA
from transforms.fixed_width import (
    KIND_OF,
    RECORD_IDS,
    ParseResult,
    as_written,
    group_records,
    occurrence_labels,
    rejected_records,
    repeated_codes,
    typed_text,
    unparsed_list,
)

_HEADER = FIELDS["code"].xlsx  # the cell that marks the header row: HCPC
_SEQUENCE, _RECORD_ID = FIELDS["sequence_number"].xlsx, FIELDS["record_id"].xlsx
_LONG = FIELDS["long_description"]
#: Codes-frame field -> the xlsx column of each occurrence (PRICE1, PRICE2, PRICE3, PRICE4).
XLSX_COLUMNS: dict[str, list[str]] = {
    f.name: [f.xlsx]
    if f.occurs == 1
    else [f"{f.xlsx.removesuffix('1')}{i + 1}" for i in range(f.occurs)]
    for f in DATA_FIELDS
}
_NEEDED = [_SEQUENCE, _RECORD_ID, *(c for cols in XLSX_COLUMNS.values() for c in cols)]
_FIELDS = [f for f in DATA_FIELDS if f.name != "code"]  # the code is the key, read on its own
# Each value's label (``occurrence_labels``: ``pricing_indicators[2]``) -> its xlsx column.
_CELLS = {
    label: column
    for f in _FIELDS
    for label, column in zip(occurrence_labels(f), XLSX_COLUMNS[f.name], strict=True)
}
_STRUCTURE = (_HEADER, _SEQUENCE, _RECORD_ID, _LONG.xlsx)  # what a continuation row may fill
_IDS = sorted(RECORD_IDS)
_XLSX_DIGITS = 4  # the xlsx SEQNUM: 0010, 0020 for the TXT's 00100, 00200


class WorkbookError(TerminalError, ValueError):
    """Not a readable workbook, or no sheet of it is an ANWEB sheet; names the file and sheet."""


def _blank_to_null(text: pl.Expr) -> pl.Expr:
    return pl.when(text != "").then(text)


def _value(column: str) -> pl.Expr:
    """A cell as the TXT parser keeps a field: right-trimmed, null when blank."""
    return _blank_to_null(pl.col(column).str.strip_chars_end())


def _joined(columns: list[str]) -> pl.Expr:
    """The row's non-blank cells joined by a tab ("" when there are none): a row as text."""
    solid = [pl.when(pl.col(c).str.strip_chars() != "").then(pl.col(c)) for c in columns]
    return pl.concat_str(solid, separator="\t", ignore_nulls=True)


def _sheet(data: bytes, name: str) -> tuple[str, pl.DataFrame, int]:
    """The first sheet with an ``HCPC`` cell, every cell as text from Excel row 1 (row index + 1
    is the Excel row), and the index of that header row."""
    try:
        reader = fastexcel.read_excel(data)
        for sheet in reader.sheet_names:
            cells = reader.load_sheet(sheet, header_row=None, skip_rows=0, dtypes="string")
            frame = cells.to_polars()
            if frame.width == 0:  # an empty sheet
                continue
            is_header = frame.select(pl.any_horizontal(pl.all().str.strip_chars() == _HEADER))
            hits = is_header.to_series().arg_true()
            if hits.len():
                return sheet, frame, int(hits[0])
    except fastexcel.FastExcelError as err:
        raise WorkbookError(
            f"{name}: not a readable .xlsx or .xls workbook ({str(err).splitlines()[0]})"
        ) from err
    raise WorkbookError(
        f"{name}: no sheet has a header row (a cell {_HEADER!r}); sheets: "
        f"{', '.join(repr(s) for s in reader.sheet_names) or '(none)'}"
    )


def _header(frame: pl.DataFrame, at: int, where: str) -> list[str]:
    """The sheet's column names from its header row; unnamed columns are numbered, ``column N``
    from the first column read. Every layout column must be there, once."""
    names = [(cell or "").strip() or f"column {i + 1}" for i, cell in enumerate(frame.row(at))]
    if missing := [c for c in _NEEDED if c not in names]:
        raise WorkbookError(f"{where}: the header row lacks the columns {', '.join(missing)}")
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise WorkbookError(f"{where}: the header row names {', '.join(twice)} more than once")
    return names


def parse_anweb_xlsx(data: bytes, name: str = "workbook") -> ParseResult:
    """Parse CMS's ANWEB workbook (the bytes of the .xlsx or .xls) into codes and rejects, exactly
    as ``parse_anweb`` parses the TXT; ``name`` is for error messages."""
    sheet, cells, at = _sheet(data, name)
    names = _header(cells, at, f"{name}, sheet {sheet!r}, row {at + 1}")
    first_row = at + 2  # the Excel row of the first row after the header
    preamble = (
        cells.slice(0, at)
        .select(line=pl.int_range(1, at + 1, dtype=pl.Int64), text=_joined(cells.columns))
        .filter(pl.col("text") != "")
    )
    body = cells.slice(at + 1).rename(dict(zip(cells.columns, names, strict=True)))
    extra = [c for c in names if c not in _NEEDED]
    record_id = pl.col(_RECORD_ID).str.strip_chars()
    sequence = pl.col(_SEQUENCE).str.strip_chars()
    rows = body.select(
        line=pl.int_range(first_row, first_row + body.height, dtype=pl.Int64),
        text=_joined(names),
        code=_blank_to_null(pl.col(_HEADER).str.strip_chars()),
        record_id=record_id,
        sequence_number=pl.when(sequence.str.contains(f"^[0-9]{{{_XLSX_DIGITS}}}$"))
        .then(sequence + "0")
        .otherwise(sequence),
        length=pl.lit(None, pl.Int64),  # a row has no fixed width to break
        # a continuation's other cells, as the TXT's columns 92-320 of a continuation line
        beyond_chunk=pl.when(~record_id.is_in(list(KIND_OF))).then(
            _blank_to_null(_joined([c for c in names if c not in _STRUCTURE]))
        ),
        **{label: _value(column) for label, column in _CELLS.items()},
        **{f"extra {c}": _value(c) for c in extra},
    ).filter(pl.col("text") != "")
    is_record = pl.col("record_id").is_in(RECORD_IDS) & pl.col("code").is_not_null()
    not_records = rows.filter(~is_record).select(
        "line",
        "code",
        reason=pl.when(pl.col("code").is_null())
        .then(pl.lit("row is not a record: its HCPC cell is blank"))
        .otherwise(
            pl.concat_str(
                pl.lit("row is not a record: record id "),
                pl.col("record_id").fill_null("(blank)"),
                pl.lit(f" is not {', '.join(_IDS[:-1])} or {_IDS[-1]}"),
            )
        ),
        text="text",
    )
    records = group_records(rows.filter(is_record))
    rejects = [not_records]
    if records["bad"].any():
        broken = rejected_records(records)
        records = records.filter(~pl.col("line").is_in(broken["line"].implode()))
        rejects.append(broken.select(not_records.columns))
    codes = _codes(records, extra)
    again = repeated_codes(codes)  # both stay codes (the gate refuses the file), reported here
    rejects.append(again.join(rows.select("line", "text"), on="line").select(not_records.columns))
    return ParseResult(
        codes=codes,
        rejects=pl.concat(rejects)
        .sort("line")
        .select([pl.col(n).cast(t) for n, t in REJECTS_SCHEMA.items()]),
        preamble=preamble,
        line_count=cells.height,
    )


def _codes(records: pl.DataFrame, extra: list[str]) -> pl.DataFrame:
    """One row per code from its grouped rows: the fields from its first row, the long
    description from all of them (right-trimmed, the non-blank ones joined with one space)."""
    one_row = [label for label in _CELLS if label != _LONG.name]
    first = records.group_by("group", maintain_order=True).agg(
        pl.col("code", "record_id", *one_row, *(f"extra {c}" for c in extra)).first(),
        _blank_to_null(pl.col(_LONG.name).drop_nulls().str.join(" ")),
        source_line=pl.col("line").first(),
        line_count=pl.len().cast(pl.Int32),
    )
    typed: dict[str, pl.Expr] = {}
    unparsed: list[tuple[str, pl.Expr, pl.Expr]] = []
    for f in _FIELDS:
        values = [typed_text(f, pl.col(label)) for label in occurrence_labels(f)]
        typed[f.name] = (
            as_written(pl.concat_arr(values).arr.to_list(), f.occurs) if f.occurs > 1 else values[0]
        )
        if f.type in ("date", "int"):  # kept as text where they cannot be typed
            unparsed += [
                (label, pl.col(label), pl.col(label).is_not_null() & value.is_null())
                for label, value in zip(occurrence_labels(f), values, strict=True)
            ]
    columns = {
        "code": pl.col("code"),
        "kind": pl.col("record_id").replace_strict(KIND_OF, return_dtype=pl.String),
        **typed,
        "source_line": pl.col("source_line"),
        "line_count": pl.col("line_count"),
        # cells of columns outside the layout, like the TXT's fillers: kept, after the rest
        "unparsed_values": unparsed_list(
            [
                *unparsed,
                *((c, pl.col(f"extra {c}"), pl.col(f"extra {c}").is_not_null()) for c in extra),
            ]
        ),
    }
    return first.select([columns[n].cast(t).alias(n) for n, t in CODES_SCHEMA.items()])
