"""CMS Alpha-Numeric HCPCS fixed-width text (ANWEB) -> one row per code, plus rejects.

Records are found by their shape, never by line number: a record line starts with a code (five
characters, or a modifier right-justified in columns 4-5), a sequence number and a record id of 3,
4, 7 or 8. Lines of another shape before the first record are the disclaimer block (kept as
``preamble``); after it they are rejects. A code's lines (a first line, id 3 or 7, then its
continuations, 4 or 8) are checked as a group; any structural break rejects the whole group, so a
code is published complete or not at all.

Speed (figures in the README): everything is column-wise Polars, no row loops; lines are views
into the decoded bytes; fields are byte slices (records are ASCII); columns 120-320, which repeat
across codes, are typed once per distinct block.
"""

from __future__ import annotations

import codecs
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa

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
_CHUNK = FIELDS["long_description"]


@dataclass(frozen=True)
class ParseResult:
    """What ``parse_anweb`` read: codes, rejected lines, and the disclaimer text before the data."""

    codes: pl.DataFrame
    rejects: pl.DataFrame
    preamble: pl.DataFrame  # line, text: non-blank lines before the first record
    line_count: int


def to_utf8(data: bytes, max_spans: int = 16) -> bytes:
    """cp1252 (as CMS writes it) re-encoded as UTF-8; undefined bytes become U+FFFD.

    Real files are ASCII except a few disclaimer lines, so only the lines that hold a byte >= 0x80
    are decoded (found by the C-speed ASCII decoder's error position); a file with many such lines
    is decoded whole.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    view, pos, out = memoryview(data), 0, []
    for _ in range(max_spans):
        try:
            codecs.ascii_decode(view[pos:])
        except UnicodeDecodeError as exc:
            bad = pos + exc.start
            eol = data.find(b"\n", bad)
            eol = len(data) if eol < 0 else eol
            out += [view[pos:bad], data[bad:eol].decode("cp1252", errors="replace").encode()]
            pos = eol
        else:
            return b"".join([*out, view[pos:]]) if out else data
    return data.decode("cp1252", errors="replace").encode()


def _lines(data: bytes) -> pl.DataFrame:
    """One row per physical line (CRLF or LF), 1-based line numbers, line ending removed.

    The lines are views into ``data`` itself, cut at each ``\\n`` (found by numpy): no copy.
    """
    cuts = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n")) + 1  # after each ending
    if data and not data.endswith(b"\n"):
        cuts = np.append(cuts, len(data))  # the last line has no line ending
    offsets = np.concatenate([np.zeros(1, np.int64), cuts])
    text = pa.LargeStringArray.from_buffers(len(cuts), pa.py_buffer(offsets), pa.py_buffer(data))
    return pl.DataFrame(
        {"line": pl.int_range(1, len(text) + 1, dtype=pl.Int64, eager=True), "text": text}
    ).with_columns(pl.col("text").str.strip_chars_end("\r\n"))


def _position(char: int, ascii_only: bool) -> int | pl.Expr:
    """Byte position of character ``char`` in each line: the same number when lines are ASCII."""
    return char if ascii_only else pl.col("text").str.head(char).str.len_bytes()


def _cut(offset: int, length: int | None, ascii_only: bool) -> pl.Expr:
    """Characters ``offset``..``offset + length`` of each line (to its end when length is None).

    Slicing the line's bytes is ~1.5x faster than slicing its characters (no counting), and every
    record line of every real release is ASCII; other lines get their byte positions counted.
    """
    start = _position(offset, ascii_only)
    end = None if length is None else _position(offset + length, ascii_only)
    return pl.col("bytes").bin.slice(start, None if end is None else end - start).cast(pl.String)


def _msg(template: str, *values: str | pl.Expr) -> pl.Expr:
    """Like ``pl.format`` (which panics on some filtered string views in Polars 2.1)."""
    pieces = template.split("{}")
    parts: list[pl.Expr] = [pl.lit(pieces[0])]
    for value, piece in zip(values, pieces[1:], strict=True):
        parts += [pl.col(value) if isinstance(value, str) else value, pl.lit(piece)]
    return pl.concat_str([p.cast(pl.String) for p in parts])


# Structural checks of one record line, in the order a reader would report them. Columns used:
# code, sequence_number, record_id, length, the group's first line (group_*), previous_seq in the
# group, and beyond_chunk (the line's text after the long-description chunk).
_SEQ = pl.col("sequence_number")
_SEQ_N = _SEQ.cast(pl.Int32, strict=False)
_IS_FIRST = pl.col("record_id").is_in(_FIRST_IDS)
_CONT = ~_IS_FIRST
_CHECKS: list[tuple[pl.Expr, pl.Expr]] = [
    (
        pl.col("length") > RECORD_LENGTH,
        _msg("line is {} characters long; a record has 320", "length"),
    ),
    (~_SEQ.str.contains(r"^\d{5}$"), _msg("sequence number '{}' is not numeric", _SEQ)),
    (
        pl.col("group") == 0,
        pl.lit("orphan continuation line: no first record (record id 3 or 7) before it"),
    ),
    (
        _IS_FIRST & (_SEQ != "00100"),
        _msg("first line of {} has sequence number {}, expected 00100", "code", _SEQ),
    ),
    (
        _CONT & (pl.col("code") != pl.col("group_code")),
        _msg(
            "continuation line of {} inside the record of {} that starts at line {} "
            "(orphan continuation or code mismatch)",
            "code",
            "group_code",
            "group_line",
        ),
    ),
    (
        _CONT
        & ~pl.any_horizontal(
            (pl.col("record_id") == cont) & (pl.col("group_record_id") == first)
            for cont, first in _CONTINUES.items()
        ),
        _msg("record id {} cannot continue a record with id {}", "record_id", "group_record_id"),
    ),
    (
        _CONT & (pl.col("previous_seq").cast(pl.Int32, strict=False) + 100 != _SEQ_N),
        _msg("sequence number {} does not follow {} (gap)", _SEQ, "previous_seq"),
    ),
    (
        _CONT & (pl.col("beyond_chunk").str.strip_chars_end() != ""),
        pl.lit("continuation line carries data in columns 92-320"),
    ),
]


def _records(lines: pl.DataFrame, ascii_only: bool) -> pl.DataFrame:
    """Record-shaped lines with their group (first line + continuations) and a ``bad`` flag."""
    structure = {
        name: _cut(FIELDS[name].start - 1, FIELDS[name].length, ascii_only)
        for name in ("code", "sequence_number", "record_id")
    }
    beyond_chunk = _cut(_CHUNK.end, None, ascii_only)
    rec = lines.with_columns(
        code=structure["code"].str.strip_chars(),
        sequence_number=structure["sequence_number"],
        record_id=structure["record_id"],
    ).with_columns(
        group=_IS_FIRST.cum_sum().set_sorted(),
        # checked on continuation lines only; the usual 229 spaces are null: no need to strip them
        beyond_chunk=pl.when(_CONT & (beyond_chunk != " " * (RECORD_LENGTH - _CHUNK.end))).then(
            beyond_chunk
        ),
    )
    at_first = {
        c: pl.when(_IS_FIRST).then(pl.col(c)).forward_fill() for c in ("code", "line", "record_id")
    }
    rec = rec.with_columns(
        group_code=at_first["code"],
        group_line=at_first["line"],
        group_record_id=at_first["record_id"],
        previous_seq=_SEQ.shift(1),  # same group whenever the line is a continuation
    )
    # A check that compares with an unreadable neighbour is unknown (null): that neighbour is
    # flagged itself and takes the whole group with it, so unknown counts as "not this line".
    flags = [flag.fill_null(False) for flag, _ in _CHECKS]
    return rec.with_columns(bad=pl.any_horizontal(flags))


def _rejected_records(rec: pl.DataFrame) -> pl.DataFrame:
    """Every line of every group that has a structural break, with a reason naming it."""
    reason = pl.when(_CHECKS[0][0].fill_null(False)).then(_CHECKS[0][1])
    for flag, message in _CHECKS[1:]:
        reason = reason.when(flag.fill_null(False)).then(message)
    bad = rec.filter("bad").with_columns(error=reason)
    first_error = bad.group_by("group").agg(
        group_error=_msg("line {}: {}", "line", "error").first()
    )
    in_bad_group = rec.filter(pl.col("group").is_in(bad["group"].implode()) & (pl.col("group") > 0))
    return (
        pl.concat([bad, in_bad_group.filter(~pl.col("bad"))], how="diagonal")
        .join(first_error, on="group", how="left")
        .select(
            "line",
            "code",
            reason=pl.coalesce(
                "error",
                _msg("record of {} rejected because of {}", "group_code", "group_error"),
            ),
            text="text",
        )
    )


def _slices(fields: tuple[Field, ...], start: int, ascii_only: bool) -> list[pl.Expr]:
    """Raw right-trimmed text of each occurrence of ``fields`` (codes fully trimmed), '' when blank,
    from text that begins at 0-based record column ``start``."""
    out = []
    for f in fields:
        for i, offset in enumerate(f.offsets()):
            raw = _cut(offset - start, f.length, ascii_only)
            if f.type == "code":
                raw = raw.str.strip_chars()
            elif f.length > 1:
                raw = raw.str.strip_chars_end()
            else:  # a single character: blank is " " (or "" past the end of a trimmed line)
                raw = pl.when(raw != " ").then(raw).otherwise(pl.lit(""))
            out.append(raw.alias(f"{f.name}#{i}"))
    return out


def _as_list(values: list[pl.Expr]) -> pl.Expr:
    """Positional list of expressions (``concat_arr`` is ~15x faster than ``concat_list`` here)."""
    return pl.concat_arr(values).arr.to_list()


def _typed_columns(fields: tuple[Field, ...]) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """Typed output columns from the raw slices, and the 'unparsed value' entries they may emit."""
    columns: list[pl.Expr] = []
    unparsed: list[pl.Expr] = []
    for f in fields:
        if f.type == "filler":
            continue
        values = []
        for i in range(f.occurs):
            raw = pl.col(f"{f.name}#{i}")
            if f.type == "date":
                typed = pl.when(raw.str.contains(r"^\d{8}$")).then(
                    raw.str.to_date("%Y%m%d", strict=False)
                )
            elif f.type == "int":
                typed = raw.str.strip_chars_start().cast(pl.Int16, strict=False)
            else:
                typed = pl.when(raw != "").then(raw)
            values.append(typed)
            if f.type in ("date", "int"):
                label = f.name if f.occurs == 1 else f"{f.name}[{i + 1}]"
                bad = (raw != "") & typed.is_null()
                unparsed.append(pl.when(bad).then(pl.struct(field=pl.lit(label), value=raw)))
        columns.append((_as_list(values) if f.occurs > 1 else values[0]).alias(f.name))
    for f in fields:
        if f.type == "filler":
            raw = pl.col(f"{f.name}#0")
            unparsed.append(pl.when(raw != "").then(pl.struct(field=pl.lit(f.name), value=raw)))
    return columns, unparsed


# Columns 120-320 (pricing, references, coverage, dates, action...) repeat across codes: the 6,800
# codes of 2019 carry 2,092 distinct blocks of them. Each distinct block is sliced and typed once
# and joined back, which is ~3x less work than typing every code's copy.
_BLOCK_START = FIELDS["short_description"].end  # 0-based start of the block
_OWN_FIELDS = tuple(f for f in DATA_FIELDS if f.type != "chunk" and f.end <= _BLOCK_START)
_BLOCK_FIELDS = tuple(f for f in LAYOUT if f.start > _BLOCK_START)
_OWN_SLICES = {ascii: _slices(_OWN_FIELDS, 0, ascii) for ascii in (True, False)}
_BLOCK_SLICES = {ascii: _slices(_BLOCK_FIELDS, _BLOCK_START, ascii) for ascii in (True, False)}
_OWN_COLUMNS, _own_unparsed = _typed_columns(_OWN_FIELDS)
_BLOCK_COLUMNS, _BLOCK_UNPARSED = _typed_columns(_BLOCK_FIELDS)
assert not _own_unparsed, "a code's own columns are text: nothing there can fail to type"


def _codes(good: pl.DataFrame, ascii_only: bool) -> pl.DataFrame:
    """One row per code: fields from its first line, long description from all its lines."""
    chunk = _cut(_CHUNK.start - 1, CHUNK_LENGTH, ascii_only).str.strip_chars_end()
    # Groups are contiguous and in file order, as are their first lines: stack, don't join.
    per_code = (
        good.select("group", chunk=chunk)
        .with_columns(pl.when(pl.col("chunk") != "").then(pl.col("chunk")).alias("chunk"))
        .group_by("group", maintain_order=True)
        .agg(long_description=pl.col("chunk"), line_count=pl.len().cast(pl.Int32))
    )
    firsts = good.filter(_IS_FIRST).select(
        "line", "record_id", *_OWN_SLICES[ascii_only], block=_cut(_BLOCK_START, None, ascii_only)
    )
    blocks = (
        firsts.select(text=pl.col("block").unique())
        .with_columns(bytes=pl.col("text").cast(pl.Binary))
        .select(pl.col("text").alias("block"), *_BLOCK_SLICES[ascii_only])
        .select(
            "block", *_BLOCK_COLUMNS, unparsed_values=_as_list(_BLOCK_UNPARSED).list.drop_nulls()
        )
    )
    codes = (
        firsts.select(
            "block",
            *_OWN_COLUMNS,
            kind=pl.when(pl.col("record_id") == "3")
            .then(pl.lit("procedure"))
            .otherwise(pl.lit("modifier")),
            source_line=pl.col("line"),
        )
        .join(blocks, on="block", how="left", maintain_order="left")
        .hstack(
            per_code.select(
                pl.col("long_description").list.join(" ").replace("", None), "line_count"
            )
        )
    )
    return codes.select(list(CODES_SCHEMA)).cast(CODES_SCHEMA)


def parse_anweb(data: bytes) -> ParseResult:
    """Parse one ANWEB fixed-width file (the bytes of the .txt) into codes and rejects."""
    lines = _lines(to_utf8(data)).with_columns(is_record=pl.col("text").str.contains(_RECORD_SHAPE))
    first_record = lines.filter("is_record").select(pl.col("line").min()).item()
    first_record = first_record if first_record is not None else len(lines) + 1
    before = pl.col("line") < first_record
    other = lines.filter(~pl.col("is_record")).filter(pl.col("text").str.contains(r"\S"))
    preamble = other.filter(before).select("line", "text")
    stray = other.filter(~before).select(
        "line",
        code=pl.lit(None, dtype=pl.String),
        reason=pl.lit("line does not have the shape of a record"),
        text="text",
    )
    rec = lines.filter("is_record").select(
        "line", "text", bytes=pl.col("text").cast(pl.Binary), length=pl.col("text").str.len_chars()
    )
    # a line never has fewer bytes than characters: equal sums mean every record line is ASCII
    ascii_only = rec["length"].sum() == rec["bytes"].bin.size().sum()
    rec = _records(rec, ascii_only)
    if rec["bad"].any():
        rejected = _rejected_records(rec)
        good = rec.filter(~pl.col("line").is_in(rejected["line"].implode()))
    else:
        rejected, good = stray.clear(), rec
    rejects = pl.concat([stray, rejected.select(stray.columns)]).sort("line")
    return ParseResult(
        codes=_codes(good, ascii_only),
        rejects=rejects.select([pl.col(n).cast(t) for n, t in REJECTS_SCHEMA.items()]),
        preamble=preamble,
        line_count=len(lines),
    )


def _field_text(f: Field, value: object) -> str:
    if value is None:
        return ""
    if f.type == "date":
        return value.strftime("%Y%m%d")  # type: ignore[attr-defined]
    if f.type == "int":
        return str(value).rjust(f.length)
    return str(value)


def format_code(row: Mapping[str, object]) -> list[str]:
    """The physical lines CMS writes for one code (the exact inverse of ``parse_anweb``).

    ``row`` has the codes-frame columns (missing ones are blank). Used by the demo releases and by
    round-trip tests, so the writer and the reader share one layout.
    """
    procedure = row.get("kind", "procedure") == "procedure"
    first_id, cont_id = ("3", "4") if procedure else ("7", "8")
    chunks = textwrap.wrap(
        str(row.get("long_description") or ""), CHUNK_LENGTH, break_on_hyphens=False
    ) or [""]
    record = [" "] * RECORD_LENGTH

    def put(offset: int, length: int, text: str, name: str) -> None:
        if len(text) > length:
            raise ValueError(f"{row.get('code')}: {name} {text!r} is longer than {length}")
        record[offset : offset + len(text)] = text

    code = str(row["code"]).rjust(5)
    for f in LAYOUT:
        if f.type in ("sequence", "record_id", "chunk", "filler"):
            continue
        values = row.get(f.name) if f.type != "code" else code
        values = values if f.occurs > 1 and values is not None else [values] * f.occurs
        for offset, value in zip(f.offsets(), values, strict=False):
            text = _field_text(f, value)
            put(offset, f.length, text.ljust(f.length) if f.type == "code" else text, f.name)
    lines = []
    for i, chunk in enumerate(chunks):
        line = record[:] if i == 0 else list(code.ljust(RECORD_LENGTH))
        line[5:11] = f"{(i + 1) * 100:05d}{first_id if i == 0 else cont_id}"
        line[_CHUNK.start - 1 : _CHUNK.start - 1 + len(chunk)] = chunk
        lines.append("".join(line))
    return lines
