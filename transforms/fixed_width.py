"""CMS Alpha-Numeric HCPCS fixed-width text (ANWEB) -> one row per code, plus rejects.

Records are found by their shape, never by line number: a record line starts with a code (five
characters, or a modifier right-justified in columns 4-5), a sequence number and a record id of 3, 4,
7 or 8. Lines of another shape before the first record are the disclaimer block (kept as
``preamble``); after it they are rejects. A code's lines (a first line, id 3 or 7, then its
continuations, 4 or 8) are checked as a group; any structural break rejects the whole group, so a
code is published complete or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from transforms.layout import (
    CHUNK_LENGTH,
    CODES_SCHEMA,
    DATA_FIELDS,
    FIELDS,
    LAYOUT,
    RECORD_LENGTH,
    REJECTS_SCHEMA,
    Field,
)

_RECORD_SHAPE = r"^(?:[A-Z0-9]{5}|   [A-Z0-9]{2}).{5}[3478]"
_FIRST_IDS = ["3", "7"]
_CONTINUES = {"4": "3", "8": "7"}  # continuation record id -> the first-line id it continues


@dataclass(frozen=True)
class ParseResult:
    """What ``parse_anweb`` read: codes, rejected lines, and the disclaimer text before the data."""

    codes: pl.DataFrame
    rejects: pl.DataFrame
    preamble: pl.DataFrame  # line, text: non-blank lines before the first record
    line_count: int


def decode(data: bytes) -> str:
    """cp1252, as CMS writes it; undefined bytes become U+FFFD instead of failing the parse."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("cp1252", errors="replace")


def _lines(text: str) -> pl.DataFrame:
    return (
        pl.DataFrame({"text": text.split("\n")})
        .with_row_index("line", offset=1)
        .with_columns(
            pl.col("line").cast(pl.Int64),
            pl.col("text").str.strip_chars_end("\r"),
        )
    )


def _structure_errors() -> pl.Expr:
    """The first structural problem of each record line, or null (lines in file order)."""
    seq = pl.col("sequence_number")
    seq_n = seq.cast(pl.Int64, strict=False)
    prev_n = seq_n.shift(1).over("group")
    is_first = pl.col("record_id").is_in(_FIRST_IDS)
    cont = ~is_first
    tail_blank = pl.col("record").str.slice(91).str.strip_chars() == ""
    expected_first = pl.col("record_id").replace_strict(_CONTINUES, default=None)
    return (
        pl.when(pl.col("length") > RECORD_LENGTH)
        .then(pl.format("line is {} characters long; a record has 320", pl.col("length")))
        .when(~seq.str.contains(r"^\d{5}$"))
        .then(pl.format("sequence number '{}' is not numeric", seq))
        .when(pl.col("group") == 0)
        .then(pl.lit("orphan continuation line: no first record (record id 3 or 7) before it"))
        .when(is_first & (seq != "00100"))
        .then(pl.format("first line of {} has sequence number {}, expected 00100", "code", seq))
        .when(cont & (pl.col("code") != pl.col("group_code")))
        .then(
            pl.format(
                "continuation line of {} inside the record of {} that starts at line {} "
                "(orphan continuation or code mismatch)",
                "code",
                "group_code",
                "group_line",
            )
        )
        .when(cont & (expected_first != pl.col("group_record_id")))
        .then(
            pl.format(
                "record id {} cannot continue a record with id {}", "record_id", "group_record_id"
            )
        )
        .when(cont & (seq_n != prev_n + 100))
        .then(pl.format("sequence number {} does not follow {} (gap)", seq, pl.col("previous_seq")))
        .when(cont & ~tail_blank)
        .then(pl.lit("continuation line carries data in columns 92-320"))
        .otherwise(None)
    )


def _records(lines: pl.DataFrame) -> pl.DataFrame:
    """Record-shaped lines with their group, the group's first line and structural errors."""
    rec = lines.filter(pl.col("text").str.contains(_RECORD_SHAPE)).with_columns(
        length=pl.col("text").str.len_chars(),
        record=pl.col("text").str.pad_end(RECORD_LENGTH),
    )
    rec = rec.with_columns(
        code=pl.col("record").str.slice(0, 5).str.strip_chars(),
        sequence_number=pl.col("record").str.slice(5, 5),
        record_id=pl.col("record").str.slice(10, 1),
    ).with_columns(group=pl.col("record_id").is_in(_FIRST_IDS).cum_sum())
    rec = rec.with_columns(
        group_code=pl.col("code").first().over("group"),
        group_line=pl.col("line").first().over("group"),
        group_record_id=pl.col("record_id").first().over("group"),
        previous_seq=pl.col("sequence_number").shift(1).over("group"),
    )
    rec = rec.with_columns(error=_structure_errors())
    first_error = (
        pl.format("line {}: {}", "line", "error").drop_nulls().first().over("group")
    )
    return rec.with_columns(
        group_error=pl.when(pl.col("group") == 0).then(None).otherwise(first_error)
    )


def _value(f: Field, offset: int) -> pl.Expr:
    """The raw text of one occurrence: right-trimmed (codes fully trimmed), null when blank."""
    raw = pl.col("record").str.slice(offset, f.length)
    raw = raw.str.strip_chars() if f.type == "code" else raw.str.strip_chars_end()
    return pl.when(raw == "").then(None).otherwise(raw)


def _typed(f: Field, raw: pl.Expr) -> pl.Expr:
    if f.type == "date":
        ok = raw.str.contains(r"^\d{8}$")
        return pl.when(ok).then(raw.str.strptime(pl.Date, "%Y%m%d", strict=False))
    if f.type == "int":
        return raw.str.strip_chars().cast(pl.Int16, strict=False)
    return raw


def _field_columns() -> tuple[list[pl.Expr], list[pl.Expr]]:
    """Column expressions for every data field, and the 'unparsed value' entries they may emit."""
    columns: list[pl.Expr] = []
    unparsed: list[pl.Expr] = []
    for f in DATA_FIELDS:
        if f.type == "chunk":
            continue
        values = []
        for i, offset in enumerate(f.offsets()):
            raw = _value(f, offset)
            typed = _typed(f, raw)
            values.append(typed)
            if f.type in ("date", "int"):
                label = f.name if f.occurs == 1 else f"{f.name}[{i + 1}]"
                bad = raw.is_not_null() & typed.is_null()
                unparsed.append(
                    pl.when(bad).then(pl.struct(field=pl.lit(label), value=raw))
                )
        expr = pl.concat_list(values) if f.occurs > 1 else values[0]
        columns.append(expr.alias(f.name))
    for f in LAYOUT:
        if f.type == "filler":
            raw = _value(f, f.start - 1)
            unparsed.append(pl.when(raw.is_not_null()).then(pl.struct(field=pl.lit(f.name), value=raw)))
    return columns, unparsed


_COLUMNS, _UNPARSED = _field_columns()


def _codes(good: pl.DataFrame) -> pl.DataFrame:
    chunk = FIELDS["long_description"]
    descriptions = good.group_by("group", maintain_order=True).agg(
        long_description=pl.col("record")
        .str.slice(chunk.start - 1, CHUNK_LENGTH)
        .str.strip_chars_end()
        .filter(pl.col("record").str.slice(chunk.start - 1, CHUNK_LENGTH).str.strip_chars() != "")
        .str.join(" "),
        line_count=pl.len().cast(pl.Int32),
    )
    firsts = good.filter(pl.col("record_id").is_in(_FIRST_IDS))
    codes = firsts.select(
        "group",
        *_COLUMNS,
        kind=pl.when(pl.col("record_id") == "3").then(pl.lit("procedure")).otherwise(pl.lit("modifier")),
        source_line=pl.col("line"),
        unparsed_values=pl.concat_list(_UNPARSED).list.drop_nulls(),
    )
    codes = codes.join(descriptions, on="group", how="left").with_columns(
        pl.col("long_description").replace("", None)
    )
    return codes.select([pl.col(name).cast(dtype) for name, dtype in CODES_SCHEMA.items()])


def parse_anweb(data: bytes) -> ParseResult:
    """Parse one ANWEB fixed-width file (the bytes of the .txt) into codes and rejects."""
    lines = _lines(decode(data))
    is_record = pl.col("text").str.contains(_RECORD_SHAPE)
    first_record = lines.filter(is_record).select(pl.col("line").min()).item()
    first_record = first_record if first_record is not None else len(lines) + 1
    nonblank = pl.col("text").str.strip_chars() != ""
    preamble = lines.filter(nonblank & (pl.col("line") < first_record)).select("line", "text")
    stray = lines.filter(nonblank & ~is_record & (pl.col("line") > first_record)).select(
        "line",
        code=pl.lit(None, dtype=pl.String),
        reason=pl.lit("line does not have the shape of a record"),
        text="text",
    )

    rec = _records(lines)
    rejected = rec.filter(pl.col("error").is_not_null() | pl.col("group_error").is_not_null())
    rejects = pl.concat(
        [
            stray,
            rejected.select(
                "line",
                "code",
                reason=pl.coalesce(
                    "error",
                    pl.format("record of {} rejected because of {}", "group_code", "group_error"),
                ),
                text="text",
            ),
        ]
    ).sort("line")
    good = rec.filter(pl.col("error").is_null() & pl.col("group_error").is_null())
    return ParseResult(
        codes=_codes(good),
        rejects=rejects.select([pl.col(n).cast(t) for n, t in REJECTS_SCHEMA.items()]),
        preamble=preamble,
        line_count=len(lines),
    )
