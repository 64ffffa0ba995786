"""CMS Alpha-Numeric HCPCS fixed-width text (ANWEB) -> one row per code, plus rejects.

Records are found by their shape, never by line number: a record line starts with a code (five
characters, or a modifier right-justified in columns 4-5), a sequence number and a record id of 3,
4, 7 or 8. Lines of another shape before the first record are the disclaimer block (kept as
``preamble``); after it they are rejects. A code's lines (a first line, id 3 or 7, then its
continuations, 4 or 8) are checked as a group; any structural break rejects the whole group, so a
code is published complete or not at all. A code whose record appears again keeps both records
(the gate's ``code_unique`` refuses the file) and each later one is also reported as a reject.

Speed (figures in the README): no row loops, and few calls. The file is read as cp1252 bytes (one
byte per character, so a record column is a byte offset on any line) with numpy: lines are cut at
each ``\n``, and the record lines' columns are copied into (lines x columns) byte arrays, from
which every field, cut and right-trimmed in one pyarrow call per group of fields, becomes an Arrow
string array; only text that is kept is re-encoded as UTF-8. Columns 120-320, which repeat across
codes, are typed once per distinct block. The structural checks run as numpy on the bytes; only a
file that breaks a rule pays for the Polars checks that name the break.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from contracts.layout import (
    CHUNK_LENGTH,
    CODES_SCHEMA,
    DATA_FIELDS,
    DERIVED_COLUMNS,
    FIELDS,
    LAYOUT,
    RECORD_LENGTH,
    REJECTS_SCHEMA,
    Field,
)

_RECORD_SHAPE = r"^(?:[A-Z0-9]{5}|   [A-Z0-9]{2}).{5}[3478]"
#: First-line record id -> the kind of code it starts.
KIND_OF = {"3": "procedure", "7": "modifier"}
_FIRST_IDS = list(KIND_OF)
_CONTINUES = {"4": "3", "8": "7"}  # continuation record id -> the first-line id it continues
#: Every record id: first lines, then continuations.
RECORD_IDS = (*_FIRST_IDS, *_CONTINUES)
_CHUNK = FIELDS["long_description"]
_NOT_A_RECORD = "line does not have the shape of a record"
_STRUCTURE_END = FIELDS["record_id"].end  # code, sequence number and record id: columns 1-11
_IS_FIRST_ID = np.isin(np.arange(256), [ord(i) for i in _FIRST_IDS])  # by byte value
_CONTINUED_BY = np.zeros(256, np.uint8)  # record id byte -> the first-line id byte it continues
_CONTINUED_BY[[ord(c) for c in _CONTINUES]] = [ord(f) for f in _CONTINUES.values()]
# Columns 120-320 (pricing, references, coverage, dates, action...) repeat across codes: the 6,800
# codes of 2019 carry 2,092 distinct blocks of them.
_BLOCK_START = FIELDS["short_description"].end  # 0-based start of the block
_OWN_FIELDS = tuple(f for f in DATA_FIELDS if f.type != "chunk" and f.end <= _BLOCK_START)
_BLOCK_FIELDS = tuple(f for f in LAYOUT if f.start > _BLOCK_START)


@dataclass(frozen=True)
class ParseResult:
    """What ``parse_anweb`` read: codes, rejected lines, and the disclaimer text before the data."""

    codes: pl.DataFrame
    rejects: pl.DataFrame
    preamble: pl.DataFrame  # line, text: non-blank lines before the first record
    line_count: int


# The file is read as cp1252 bytes, where one character is one byte: a record column is a byte
# offset on every line, ASCII or not, and only the text that is kept is re-encoded as UTF-8.
_BOM = b"\xef\xbb\xbf"
_SPACE = ord(" ")
_CP1252 = [bytes([b]).decode("cp1252", errors="replace") for b in range(256)]
_UTF8_LENGTH = np.array([len(c.encode()) for c in _CP1252])  # undefined bytes -> U+FFFD
_ALNUM = np.isin(np.arange(256), list(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
# the cp1252 characters Polars' ``strip_chars`` and regex ``\\s`` treat as white space
_WHITE_SPACE = "\t\n\v\f\r \xa0"
_IS_RECORD_ID = np.isin(np.arange(256), [ord(i) for i in RECORD_IDS])


def _offsets(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros(1, np.int64), np.cumsum(lengths, dtype=np.int64)])


# numpy goes to Arrow through its buffers: pyarrow converts a numpy argument with ``pa.array``,
# which imports pandas (2 s on these machines, once in every process that parses).
def _bitmap(flags: np.ndarray) -> pa.Buffer:
    """Booleans in Arrow's bit-packed form (a validity bitmap, or a boolean array's values)."""
    return pa.py_buffer(np.packbits(flags, bitorder="little"))


def _typed(kind: pa.DataType, values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """An Arrow array of ``values``, null where not ``valid``."""
    validity = None if valid is None else _bitmap(valid)
    return pa.Array.from_buffers(kind, len(values), [validity, pa.py_buffer(values)])


def _int64s(values: np.ndarray) -> pa.Int64Array:
    return _typed(pa.int64(), np.ascontiguousarray(values, np.int64))


def _mask(flags: np.ndarray) -> pa.BooleanArray:
    return pa.Array.from_buffers(pa.bool_(), len(flags), [None, _bitmap(flags)])


def _solid(block: np.ndarray) -> np.ndarray:
    """Bytes that are not white space. White space is tab..CR (9-13), space and 0xA0 (no-break
    space): the cp1252 characters Polars' ``strip_chars`` and regex ``\\s`` treat as white space."""
    return (block != _SPACE) & (block - np.uint8(9) > 4) & (block != 0xA0)


def _strings(
    data: np.ndarray, offsets: np.ndarray, valid: np.ndarray | None = None
) -> pa.LargeStringArray:
    """Arrow strings from cp1252 bytes cut at ``offsets`` (null where not ``valid``).

    ASCII bytes are used as they are; otherwise the bytes are decoded and re-encoded as UTF-8 in
    one go, and each offset moves by the UTF-8 lengths of the characters before it.
    """
    if data.size and data.max() >= 0x80:
        offsets = _offsets(_UTF8_LENGTH[data])[offsets]
        data = np.frombuffer(data.tobytes().decode("cp1252", errors="replace").encode(), np.uint8)
    validity = None if valid is None else _bitmap(valid)
    return pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data), validity
    )


_ONE_SPACE = _strings(np.frombuffer(b" ", np.uint8), np.arange(2, dtype=np.int64))[0]


def _rtrim(data: np.ndarray, offsets: np.ndarray) -> pa.LargeStringArray:
    """Strings from cp1252 bytes cut at ``offsets``, without trailing white space."""
    if data.size and data.max() >= 0x80:
        return pc.utf8_rtrim(_strings(data, offsets), characters=_WHITE_SPACE)
    # ASCII: the same white space minus no-break space, trimmed twice as fast
    return pc.ascii_rtrim(_strings(data, offsets), characters=_WHITE_SPACE.replace("\xa0", ""))


def _lengths(strings: pa.LargeStringArray) -> np.ndarray:
    """Each string's length in bytes, from its offsets."""
    offsets = np.frombuffer(strings.buffers()[1], np.int64)
    return np.diff(offsets[strings.offset : strings.offset + len(strings) + 1])


def _null_where(strings: pa.LargeStringArray, null: np.ndarray) -> pa.LargeStringArray:
    """``strings`` with the rows where ``null`` is true set to null (no copy of the text)."""
    _, offsets, data = strings.buffers()
    return pa.LargeStringArray.from_buffers(
        len(strings), offsets, data, _bitmap(~null), -1, strings.offset
    )


def _windows(data: np.ndarray, width: int, at: np.ndarray) -> np.ndarray:
    """The ``width`` bytes of ``data`` from each offset in ``at``, as a (len(at), width) array.

    ``data`` is seen as overlapping ``width``-byte elements, one starting at every byte, so that
    each window is copied whole (twice as fast as rows of a ``sliding_window_view``).
    """
    element = np.dtype((np.void, width))
    windows = np.ndarray((len(data) - width + 1,), element, buffer=data, strides=(1,))
    return windows[at].view(np.uint8).reshape(len(at), width)


@dataclass(frozen=True)
class _Text:
    """The file's bytes and where each physical line lies in them (line ending excluded)."""

    data: np.ndarray  # the bytes themselves (a view, no copy)
    starts: np.ndarray
    lengths: np.ndarray
    tail: np.ndarray  # the last RECORD_LENGTH bytes then RECORD_LENGTH spaces: lines near the end
    tail_start: int  # read on past the data into spaces

    @classmethod
    def split(cls, data: bytes) -> _Text:
        """Lines cut at each ``\\n`` (found by numpy); the ``\\r``s before it are the ending."""
        data = data.removeprefix(_BOM)
        raw = np.frombuffer(data, np.uint8)
        ends = np.flatnonzero(raw == ord("\n"))
        if data and not data.endswith(b"\n"):
            ends = np.append(ends, len(data))  # the last line has no line ending
        starts = np.concatenate([np.zeros(1, np.int64), ends + 1])[: len(ends)]
        lengths = ends - starts
        # a line can end in any number of '\r': peel them in rounds, one per round, vectorised
        peel = np.flatnonzero(lengths > 0)
        while peel.size:
            peel = peel[raw[starts[peel] + lengths[peel] - 1] == ord("\r")]
            lengths[peel] -= 1
            peel = peel[lengths[peel] > 0]
        tail_start = max(len(raw) - RECORD_LENGTH, 0)
        tail = np.concatenate([raw[tail_start:], np.full(RECORD_LENGTH, _SPACE, np.uint8)])
        return cls(raw, starts, lengths, tail, tail_start)

    def columns(self, rows: np.ndarray, start: int, end: int) -> np.ndarray:
        """Record columns ``start``..``end`` (0-based, end excluded) of lines ``rows`` as a
        (rows, end - start) byte array: one copy, blank past each line's end."""
        width, lengths = end - start, self.lengths[rows]
        at = self.starts[rows] + start
        last = len(self.data) - width  # the last window that lies inside the data
        if last >= 0:
            block = _windows(self.data, width, np.minimum(at, last))
            near_end = np.flatnonzero(at > last)
        else:
            block, near_end = np.empty((len(rows), width), np.uint8), np.arange(len(rows))
        if near_end.size:  # read these from the tail, which goes on into spaces
            block[near_end] = _windows(self.tail, width, at[near_end] - self.tail_start)
        short = np.flatnonzero(lengths < end)
        if short.size:
            past_end = np.arange(start, end) >= lengths[short, None]
            block[short] = np.where(past_end, _SPACE, block[short])
        return block

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The bytes of lines ``rows``, concatenated, and where each line starts in them."""
        lengths = self.lengths[rows]
        offsets = _offsets(lengths)
        at = np.repeat(self.starts[rows] - offsets[:-1], lengths) + np.arange(offsets[-1])
        return self.data[at], offsets


def _has_record_shape(head: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``_RECORD_SHAPE`` on each line's first bytes (``.`` is any byte: a line holds no '\\n').

    ``head`` has one row per column (columns 1-11), one column per line: whole-row operations.
    """
    code = head[FIELDS["code"].start - 1 : FIELDS["code"].end]
    alnum = _ALNUM[code]
    modifier = (code[:3] == _SPACE).all(axis=0) & alnum[3:].all(axis=0)
    record_id = head[FIELDS["record_id"].start - 1]
    return (lengths >= _STRUCTURE_END) & (alnum.all(axis=0) | modifier) & _IS_RECORD_ID[record_id]


def _structure_is_clean(text: _Text, records: np.ndarray, head: np.ndarray) -> bool:
    """Whether no record line breaks any of ``_CHECKS`` (the same rules on the raw bytes).

    Real files are clean, and this answers in numpy; only when it is False do the Polars checks
    run, to find and name every break. ``head``: columns 1-11 of ``records``, one row per column.
    """
    if not records.size:
        return True
    code, seq, id_ = (FIELDS[n] for n in ("code", "sequence_number", "record_id"))
    digits = head[seq.start - 1 : seq.end] - np.uint8(ord("0"))  # bytes below '0' wrap past 9
    if (text.lengths[records] > RECORD_LENGTH).any() or digits.max() > 9:
        return False
    record_id = head[id_.start - 1]
    first = _IS_FIRST_ID[record_id]
    if not first[0]:
        return False  # an orphan continuation before any first line
    seq_number = 10 ** np.arange(seq.length - 1, -1, -1) @ digits.astype(np.int64)
    code_bytes = head[code.start - 1 : code.end].astype(np.int64)
    code_key = 256 ** np.arange(code.length) @ code_bytes  # the five bytes as one number
    group_first = np.flatnonzero(first)[np.cumsum(first) - 1]  # each line's first line
    cont = np.flatnonzero(~first)
    longer = records[cont][text.lengths[records[cont]] > _CHUNK.end]  # the others end at 91
    beyond = text.columns(longer, _CHUNK.end, RECORD_LENGTH)
    return bool(
        (seq_number[first] == 100).all()
        and (code_key[cont] == code_key[group_first[cont]]).all()
        and (_CONTINUED_BY[record_id[cont]] == record_id[group_first[cont]]).all()
        and (seq_number[cont] == seq_number[cont - 1] + 100).all()
        and ((beyond == _SPACE).all() or not _solid(beyond).any())
    )


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
        # checked on continuation lines only; the usual 229 spaces are null: no need to strip them
        beyond_chunk=pl.when(_CONT & (beyond_chunk != " " * (RECORD_LENGTH - _CHUNK.end))).then(
            beyond_chunk
        ),
    )
    return group_records(rec)


def group_records(rec: pl.DataFrame) -> pl.DataFrame:
    """Record lines with their group (a first line and the continuations after it; 0 before any
    first line), the group's first code, line and id, the previous sequence number, and a ``bad``
    flag: any of ``_CHECKS``. Shared by every reader of records (the xlsx copy's rows too).

    ``rec`` columns: line, code, sequence_number (five digits), record_id, length (null: not
    checked), beyond_chunk (a continuation's data after the long-description chunk, else null),
    text (the raw line, for rejects).
    """
    rec = rec.with_columns(group=_IS_FIRST.cum_sum().set_sorted())
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


def rejected_records(rec: pl.DataFrame) -> pl.DataFrame:
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


def _dates(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YYYYMMDD rows of an (n, 8) byte array as days since 1970-01-01, and which are dates: eight
    digits naming a real day (20190230 is not), exactly what ``to_date('%Y%m%d')`` accepts."""
    digits = cells.T - np.uint8(ord("0"))  # one row per character; bytes below '0' wrap past 9
    valid = digits.max(axis=0, initial=0) <= 9
    d = digits.astype(np.int32)
    year, month, day = (
        d[0] * 1000 + d[1] * 100 + d[2] * 10 + d[3],
        d[4] * 10 + d[5],
        d[6] * 10 + d[7],
    )
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _MONTH_DAYS[np.clip(month - 1, 0, 11)] + (leap & (month == 2))
    valid &= (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    # days from the proleptic Gregorian civil date (H. Hinnant's days_from_civil)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doe = yoe * 365 + yoe // 4 - yoe // 100 + (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    return (era * 146097 + doe - 719468).astype(np.int32), valid


def _ints(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of an (n, length) byte array as Int16, and which are numbers: an optional sign then
    ASCII digits, with white space around, in range; what ``str.strip_chars()`` then
    ``cast(pl.Int16, strict=False)`` accepts (checked against it on every 1- and 2-byte value)."""
    c = cells.T  # one row per character: whole-row operations
    position = np.arange(len(c))[:, None]
    solid = _solid(c)
    first, last = solid.argmax(axis=0), len(c) - 1 - solid[::-1].argmax(axis=0)
    inside = (position >= first) & (position <= last)
    digits = c - np.uint8(ord("0"))  # bytes below '0' wrap past 9
    digit = inside & (digits <= 9)
    sign = (position == first) & ((c == ord("-")) | (c == ord("+")))
    valid = digit.any(axis=0) & (digit | sign | ~inside).all(axis=0)
    power = 10 ** np.clip(last - position, 0, None)
    value = (np.where(digit, digits, 0) * power).sum(axis=0)
    value = np.where(c[first, np.arange(c.shape[1])] == ord("-"), -value, value)
    valid &= (value >= np.iinfo(np.int16).min) & (value <= np.iinfo(np.int16).max)
    return value.astype(np.int16), valid


_DATE_LENGTH = 8  # YYYYMMDD
assert all(f.length == _DATE_LENGTH for f in LAYOUT if f.type == "date")
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_UNPARSED = DERIVED_COLUMNS["unparsed_values"][0]


def typed_text(f: Field, text: pl.Expr) -> pl.Expr:
    """Field ``f`` typed from its text (right-trimmed, null when blank), null where it cannot be
    typed: for readers whose values come as strings (the xlsx copy). It accepts exactly what
    ``_dates`` and ``_ints`` accept from the record's bytes (a test holds them equal)."""
    if f.type == "date":
        eight_digits = text.str.contains(f"^[0-9]{{{_DATE_LENGTH}}}$")
        return pl.when(eight_digits).then(text.str.to_date("%Y%m%d", strict=False))
    if f.type == "int":
        return text.str.strip_chars().cast(pl.Int16, strict=False)
    return text


def as_written(occurrences: pl.Expr, occurs: int) -> pl.Expr:
    """A repeating group's positional list (``occurs`` values) as CMS wrote it, for both parsers:
    cut after its last value, so no list ends in a null (warehouses such as BigQuery refuse null
    list elements), while a blank between two values stays null (element i is still occurrence
    i + 1); ``[]`` when there is none. One ``list.get`` per occurrence: 7x ``list.eval``'s speed."""
    present = [occurrences.list.get(i, null_on_oob=True).is_not_null() for i in range(occurs)]
    last = pl.max_horizontal([pl.when(p).then(i + 1).otherwise(0) for i, p in enumerate(present)])
    return occurrences.list.head(last)


def occurrence_labels(f: Field) -> list[str]:
    """How each occurrence of ``f`` is named in ``unparsed_values`` (and by the reconciliation):
    the field's name, or ``name[i]`` (1-based) for each occurrence of a repeating group."""
    return [f.name] if f.occurs == 1 else [f"{f.name}[{i + 1}]" for i in range(f.occurs)]


@dataclass(frozen=True)
class _Unparsed:
    """One value that may fail to type: its label, raw text, and where it failed."""

    label: str
    raw: pa.Array
    bad: np.ndarray


def _cells(grid: np.ndarray, fields: list[Field], origin: int) -> tuple[np.ndarray, list[slice]]:
    """Every occurrence of ``fields`` in a (rows, columns) byte grid whose column 0 is record
    column ``origin``, field after field (row by row within a field), as one byte string, and
    where each field's values are among all the values."""
    rows, parts, where, at = len(grid), [], [], 0
    for f in fields:
        start = f.start - 1 - origin
        parts.append(grid[:, start : start + f.length * f.occurs].reshape(-1))
        where.append(slice(at, at + rows * f.occurs))
        at += rows * f.occurs
    return np.concatenate(parts) if parts else np.zeros(0, np.uint8), where


def _list(values: pa.Array, occurs: int) -> pa.Array:
    """Consecutive runs of ``occurs`` values as positional lists."""
    return pa.LargeListArray.from_arrays(_int64s(np.arange(0, len(values) + 1, occurs)), values)


def _field_columns(
    grid: np.ndarray, fields: tuple[Field, ...], origin: int
) -> tuple[dict[str, pa.Array], list[_Unparsed]]:
    """Typed columns of ``fields`` from a (rows, columns) byte grid whose column 0 is the 0-based
    record column ``origin``, and the values that may fail to type (fillers last).

    Raw text is right-trimmed (codes fully trimmed); a one-character field is blank only when it
    is a space; blank text is null. All values of all fields are trimmed in one Arrow call
    (per-call overhead, not bytes, is what costs here), then each field takes its slice.
    """
    rows = len(grid)
    single = [f for f in fields if f.length == 1 and f.type != "code"]
    wide = [f for f in fields if f.length > 1 or f.type == "code"]
    where: dict[str, tuple[pa.Array, np.ndarray, slice]] = {}  # values (null: blank), blank
    # wide fields: right-trimmed; a value is blank when nothing is left
    data, slices = _cells(grid, wide, origin)
    widths = np.repeat([f.length for f in wide], [rows * f.occurs for f in wide])
    trimmed = _rtrim(data, _offsets(widths))
    blank = _lengths(trimmed) == 0
    trimmed = _null_where(trimmed, blank)
    where |= {f.name: (trimmed, blank, s) for f, s in zip(wide, slices, strict=True)}
    if single:  # one-character fields: as they are; a value is blank when it is a space
        data, slices = _cells(grid, single, origin)
        blank = data == _SPACE
        chars = _strings(data, np.arange(len(data) + 1), valid=~blank)
        where |= {f.name: (chars, blank, s) for f, s in zip(single, slices, strict=True)}
    dates: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if dated := [f for f in fields if f.type == "date"]:  # typed from their digits, in one go
        data, slices = _cells(grid, dated, origin)
        days, valid = _dates(data.reshape(-1, _DATE_LENGTH))
        dates = {f.name: (days[s], valid[s]) for f, s in zip(dated, slices, strict=True)}

    columns: dict[str, pa.Array] = {}
    unparsed: list[_Unparsed] = []
    fillers: list[_Unparsed] = []
    for f in fields:
        strings, blank, at = where[f.name]
        raw, blank = strings.slice(at.start, at.stop - at.start), blank[at]
        if f.type == "date":
            days, valid = dates[f.name]
            typed = _typed(pa.date32(), days, valid)
        elif f.type == "int":
            values, valid = _ints(_cells(grid, [f], origin)[0].reshape(-1, f.length))
            typed = _typed(pa.int16(), values, valid)
        elif f.type == "code":
            typed = pc.utf8_ltrim(raw, characters=_WHITE_SPACE)
        else:
            typed = raw
        if f.type in ("date", "int", "filler"):
            bad = ~blank if f.type == "filler" else ~blank & ~valid
            entries = fillers if f.type == "filler" else unparsed
            labels = occurrence_labels(f)
            if f.occurs == 1:
                entries.append(_Unparsed(labels[0], raw, bad))
            else:  # each occurrence on its own
                for i, label in enumerate(labels):
                    take = np.arange(i, len(bad), f.occurs)
                    entries.append(_Unparsed(label, raw.take(_int64s(take)), bad[take]))
        if f.type != "filler":
            columns[f.name] = _list(typed, f.occurs) if f.occurs > 1 else typed
    return columns, unparsed + fillers


def _unparsed_values(entries: list[_Unparsed], rows: int) -> pa.Array | pl.Series:
    """Per row, the (field, raw text) of every value that could not be typed, in entry order."""
    if not any(e.bad.any() for e in entries):  # the usual case: an empty list on every row
        none = pa.nulls(0, pa.struct({"field": pa.large_string(), "value": pa.large_string()}))
        return pa.LargeListArray.from_arrays(_int64s(np.zeros(rows + 1, np.int64)), none)
    frame = pl.DataFrame(
        {f"raw{i}": pl.Series(e.raw) for i, e in enumerate(entries)}
        | {f"bad{i}": e.bad for i, e in enumerate(entries)}
    )
    values = [(e.label, pl.col(f"raw{i}"), pl.col(f"bad{i}")) for i, e in enumerate(entries)]
    return frame.select(unparsed_list(values)).to_series()


def unparsed_list(entries: list[tuple[str, pl.Expr, pl.Expr]]) -> pl.Expr:
    """The ``unparsed_values`` column: per row, ``{field: label, value: raw}`` of every (label,
    raw, bad) entry whose ``bad`` is true, in entry order."""
    values = [
        pl.when(bad).then(pl.struct(field=pl.lit(label), value=raw)) for label, raw, bad in entries
    ]
    return pl.concat_list(values).list.drop_nulls().alias("unparsed_values")


def _long_descriptions(text: _Text, lines: np.ndarray, groups: np.ndarray) -> pa.Array:
    """Each code's 80-character chunks, right-trimmed, the non-blank ones joined with one space
    (null when all are blank). ``groups`` holds the index in ``lines`` of each code's first line."""
    chunks = text.columns(lines, _CHUNK.start - 1, _CHUNK.end)
    rows, width = chunks.shape
    trimmed = _rtrim(chunks.reshape(-1), np.arange(0, rows * width + 1, width))
    solid = _lengths(trimmed) > 0
    counts = np.add.reduceat(solid, groups) if rows else groups
    parts = pa.LargeListArray.from_arrays(_int64s(_offsets(counts)), trimmed.filter(_mask(solid)))
    joined = pc.binary_join(parts, _ONE_SPACE)
    return _null_where(joined, counts == 0)


def _codes(text: _Text, lines: np.ndarray, record_id: np.ndarray) -> pl.DataFrame:
    """One row per code from its group's record lines ``lines`` (in file order, groups whole): the
    fields from the first line, the long description from all of them."""
    groups = np.flatnonzero(_IS_FIRST_ID[record_id])
    firsts = lines[groups]
    own, no_unparsed = _field_columns(text.columns(firsts, 0, _BLOCK_START), _OWN_FIELDS, 0)
    assert not no_unparsed, "a code's own columns are text: nothing there can fail to type"
    # Columns 120-320 repeat across codes: each distinct block is typed once, then gathered.
    block = text.columns(firsts, _BLOCK_START, RECORD_LENGTH)
    width = RECORD_LENGTH - _BLOCK_START
    encoded = pc.dictionary_encode(
        pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width), len(block), [None, pa.py_buffer(block)]
        )
    )
    distinct = np.frombuffer(encoded.dictionary.buffers()[1], np.uint8).reshape(-1, width)
    typed, unparsed = _field_columns(distinct, _BLOCK_FIELDS, _BLOCK_START)
    typed["unparsed_values"] = _unparsed_values(unparsed, len(distinct))
    per_block = pl.DataFrame([pl.Series(name, values) for name, values in typed.items()])
    per_block = per_block.with_columns(
        as_written(pl.col(f.name), f.occurs) for f in _BLOCK_FIELDS if f.is_data and f.occurs > 1
    )
    kinds = pl.Series(["modifier", "procedure"])  # record id 3 is a procedure, 7 a modifier
    columns = {
        **own,
        "kind": kinds.gather(record_id[groups] == ord(_FIRST_IDS[0])),
        "long_description": _long_descriptions(text, lines, groups),
        "source_line": firsts + 1,
        "line_count": np.diff(np.append(groups, len(lines))).astype(np.int32),
        **per_block[pl.Series(encoded.indices)].to_dict(),
    }
    return pl.DataFrame([pl.Series(name, columns[name]) for name in CODES_SCHEMA])


def parse_anweb(data: bytes) -> ParseResult:
    """Parse one ANWEB fixed-width file (the bytes of the .txt) into codes and rejects."""
    text = _Text.split(data)
    head = np.ascontiguousarray(text.columns(np.arange(len(text.starts)), 0, _STRUCTURE_END).T)
    is_record = _has_record_shape(head, text.lengths)
    records, others = np.flatnonzero(is_record), np.flatnonzero(~is_record)
    # other lines: the blank ones are dropped, the rest is preamble before the first record, and
    # a reject after it
    other_bytes, at = text.gather(others)
    solid = _offsets(_solid(other_bytes))  # running count of non-blank bytes
    others = others[solid[at[1:]] > solid[at[:-1]]]
    other_text = _strings(*text.gather(others))
    before = others < (records[0] if records.size else len(text.starts))
    preamble = pl.DataFrame(
        [
            pl.Series("line", others[before] + 1, dtype=pl.Int64),
            pl.Series("text", other_text.filter(_mask(before))),
        ]
    )
    stray = pl.DataFrame(
        [
            pl.Series("line", others[~before] + 1, dtype=pl.Int64),
            pl.Series("code", [None] * int((~before).sum()), dtype=pl.String),
            pl.Series("reason", [_NOT_A_RECORD] * int((~before).sum()), dtype=pl.String),
            pl.Series("text", other_text.filter(_mask(~before))),
        ]
    )
    rejects, good = stray, records
    if not _structure_is_clean(text, records, head[:, records]):
        rec = pl.DataFrame(
            {
                "line": pl.Series(records + 1, dtype=pl.Int64),
                "text": _strings(*text.gather(records)),
            }
        ).select(
            "line",
            "text",
            bytes=pl.col("text").cast(pl.Binary),
            length=pl.col("text").str.len_chars(),
        )
        # a line never has fewer bytes than characters: equal sums mean every record line is ASCII
        ascii_only = rec["length"].sum() == rec["bytes"].bin.size().sum()
        rec = _records(rec, ascii_only)
        if rec["bad"].any():
            rejected = rejected_records(rec)
            good = records[~np.isin(records + 1, rejected["line"].to_numpy())]
            rejects = pl.concat([stray, rejected.select(stray.columns)]).sort("line")
    codes = _codes(text, good, head[FIELDS["record_id"].start - 1, good])
    if codes["code"].n_unique() < codes.height:  # a code repeats (the cheap test: real files never)
        # each later record stays a code (the gate refuses the file) and is reported
        again = repeated_codes(codes)
        lines = _strings(*text.gather(again["line"].to_numpy() - 1))
        again = again.with_columns(text=pl.Series(lines, dtype=pl.String))
        rejects = pl.concat([rejects, again]).sort("line")
    return ParseResult(
        codes=codes,
        rejects=rejects.select([pl.col(n).cast(t) for n, t in REJECTS_SCHEMA.items()]),
        preamble=preamble,
        line_count=len(text.starts),
    )


def repeated_codes(codes: pl.DataFrame) -> pl.DataFrame:
    """A reject (line, code, reason) for every record of a code that an earlier record already
    has, naming that record's line: both stay in ``codes`` so the gate's ``code_unique`` refuses
    the file, and the parse result says so too."""
    return (
        codes.select("code", line="source_line", first=pl.col("source_line").first().over("code"))
        .filter(pl.col("line") != pl.col("first"))
        .select(
            "line",
            "code",
            reason=_msg(
                "code {} appears again: its first record starts at line {}", "code", "first"
            ),
        )
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
            put(offset, f.length, _field_text(f, value), f.name)
    lines = []
    for i, chunk in enumerate(chunks):
        line = record[:] if i == 0 else list(code.ljust(RECORD_LENGTH))
        line[5:11] = f"{(i + 1) * 100:05d}{first_id if i == 0 else cont_id}"
        line[_CHUNK.start - 1 : _CHUNK.start - 1 + len(chunk)] = chunk
        lines.append("".join(line))
    return lines
