"""CMS transaction report (every code with CMS's announced change) -> one row per code.

Real layouts, dispatched on the file's suffix (``parse_transaction_report_file``):

- text (cp1252, CRLF): the 2016 tab-separated ``.txt`` (``code<TAB>Type of Change``), the 2017
  ``.prn`` (code right-justified in its column, then the change text) and the 2019 ``.prn`` whose
  change column is cut at the ``SHORT DESCRIPTION`` heading (``Long Description Chang``);
- workbook (``.xlsx`` / ``.xls``, 2016-2020): sheets "Changes by Action Code", "Changes by HCPC(S)
  Code" and "Action Code Key"; the header row (Excel row 1, or after CMS's coverage note in 2020)
  names the code column ``HCPCS/Modifier Code``, ``HCPCS/MOD``, ``HCPC/MOD`` or ``HCPC`` and the
  change column ``Type of Change`` or ``ACTION CD``; 2019 and 2020 add both descriptions.

The sheet listing by code is read: it holds every code once (July 2020's "by Action Code" sheet
lists CS twice, a stale "No Change" beside "Long/Short Description Change"). The change text is
worded differently every year, so it is mapped to the action letter through the wordings the
action-code domain lists (``contracts.domains.ACTION_CODE.phrases``), accepting a truncated
phrase. Modifiers are stripped (``"   A1"`` -> ``A1``); ``line`` is the text line or Excel row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath

import fastexcel
import polars as pl

from contracts.domains import ACTION_CODE
from contracts.errors import TerminalError
from contracts.release import REPORT_FORMATS, WORKBOOK_FORMATS

#: Wordings seen in real reports (lower case) -> the record's action code.
PHRASES: dict[str, str] = {p: a for a, ps in ACTION_CODE.phrases.items() for p in ps}
MIN_PREFIX = 8  # a cut phrase must keep at least this much to be recognised

SCHEMA: dict[str, pl.DataType] = {
    "code": pl.String(), "action": pl.String(), "change_text": pl.String(), "line": pl.Int64()
}
_CODE = re.compile(r"[A-Z0-9]{5}|[A-Z0-9]{2}")  # a procedure code or a modifier
_CODE_HEADING = "HCPC"  # the code column's heading starts so: HCPCS/Modifier Code, HCPC/MOD, HCPC
_CHANGE_HEADINGS = ("TYPE OF CHANGE", "ACTION CD")
_CUT_AT = "SHORT DESCRIPTION"  # a .prn's change column ends where this heading starts (2019)
_BY_CODE_SHEET = re.compile(r"(?i)by\s*hcpc")  # "Changes by HCPCS Code", "Changes by HCPC"


class TransactionReportError(TerminalError, ValueError):
    """A transaction report that cannot be read; names the file, the line or row and the value."""


@dataclass(frozen=True)
class TransactionReport:
    """The transaction report of one release as a run read it: ``name`` the file (None: the
    release has none), ``frame`` its rows (``SCHEMA``; empty when there is none or it could not be
    read), ``error`` why it could not be read (it never stops the release: the TXT is the source of
    record)."""

    name: str | None
    frame: pl.DataFrame
    error: str | None = None


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


@cache
def _actions(text: str) -> frozenset[str]:
    """Every action letter whose phrase a change text is (or, truncated, begins); a report has
    about 20 distinct texts over a thousand lines, so each is matched once."""
    t = " ".join(text.lower().split())
    return frozenset(
        a for p, a in PHRASES.items() if p == t or (len(t) >= MIN_PREFIX and p.startswith(t)))


def action_for(text: str, where: str) -> str:
    """The action letter for a (possibly truncated) change text; the error names ``where``."""
    hits = set(_actions(text))
    if len(hits) != 1:
        problem = "unknown" if not hits else f"ambiguous ({', '.join(sorted(hits))})"
        raise TransactionReportError(
            f"{where}: {problem} type of change {text!r} (add CMS's wording to "
            f"contracts.domains.ACTION_CODE.phrases)"
        )
    return hits.pop()


def _frame(rows: list[tuple[str, str, int]], where: str, unit: str) -> pl.DataFrame:
    """(code, change text, line) rows as the report frame; every code once, looking like one."""
    first: dict[str, int] = {}
    out = []
    for code, text, number in rows:
        at = f"{where}, {unit} {number}"
        if not _CODE.fullmatch(code):
            raise TransactionReportError(f"{at}: {code!r} is no HCPCS code or modifier")
        if code in first:
            raise TransactionReportError(
                f"{at}: code {code} listed twice (first at {unit} {first[code]})")
        first[code] = number
        out.append((code, action_for(text, at), text, number))
    return pl.DataFrame(out, schema=SCHEMA, orient="row")


def parse_transaction_report(data: bytes, name: str = "transaction report") -> pl.DataFrame:
    """A text report (2016 ``.txt``, 2017 / 2019 ``.prn``): (code, action, change_text, line) for
    every code line after the header line; ``name`` is for error messages."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise TransactionReportError(
            f"{name}: not a text report (byte {data[exc.start]:#04x} at offset {exc.start} is "
            f"no cp1252 character)") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    at = next((i for i, ln in enumerate(lines) if ln.strip()), 0)
    header = lines[at] if lines else ""
    if _CODE_HEADING not in header.upper():
        raise TransactionReportError(
            f"{name}, line {at + 1}: expected the header line (HCPCS/Modifier Code, Type of "
            f"Change), got {header[:80]!r}")
    cut = header.upper().find(_CUT_AT)
    rows = []
    for number, ln in enumerate(lines[at + 1:], at + 2):
        if not ln.strip():
            continue
        if "\t" in ln:
            code, _, rest = ln.partition("\t")
            change = rest.split("\t")[0]
        else:
            code, _, change = (ln[:cut] if cut > 0 else ln).strip().partition(" ")
        code, change = code.strip(), change.strip()
        if not code or not change:
            raise TransactionReportError(f"{name}, line {number}: no code and change in {ln!r}")
        rows.append((code, change, number))
    return _frame(rows, name, "line")


def _heading(frame: pl.DataFrame) -> tuple[int, int, int] | None:
    """(row index, code column, change column) of a sheet's header row, if it has one."""
    for index, row in enumerate(frame.iter_rows()):
        cells = [(c or "").strip().upper() for c in row]
        code = next((i for i, c in enumerate(cells) if c.startswith(_CODE_HEADING)), None)
        change = next((i for i, c in enumerate(cells) if c in _CHANGE_HEADINGS), None)
        if code is not None and change is not None:
            return index, code, change
    return None


def _report_sheet(data: bytes, name: str) -> tuple[str, pl.DataFrame, tuple[int, int, int]]:
    """The sheet listing by code (else the first with a header row), its cells as text from
    Excel row 1, and where its header is."""
    try:
        reader = fastexcel.read_excel(data)
        sheets = sorted(reader.sheet_names, key=lambda s: not _BY_CODE_SHEET.search(s))
        for sheet in sheets:
            cells = reader.load_sheet(sheet, header_row=None, skip_rows=0, dtypes="string")
            frame = cells.to_polars()
            if frame.width and (found := _heading(frame)):
                return sheet, frame, found
    except fastexcel.FastExcelError as err:
        raise TransactionReportError(
            f"{name}: not a readable .xlsx or .xls workbook ({str(err).splitlines()[0]})"
        ) from err
    raise TransactionReportError(
        f"{name}: no sheet has a header row (a cell starting {_CODE_HEADING!r} and one of "
        f"{', '.join(repr(h.title()) for h in _CHANGE_HEADINGS)}); sheets: "
        f"{', '.join(repr(s) for s in reader.sheet_names) or '(none)'}")


def parse_workbook_report(data: bytes, name: str = "transaction report") -> pl.DataFrame:
    """A workbook report (2016-2020 ``.xlsx``): the rows after the header of the sheet listing
    by code; ``line`` is the Excel row; blank rows are skipped."""
    sheet, frame, (at, code_col, change_col) = _report_sheet(data, name)
    rows = []
    for index, row in enumerate(frame.iter_rows(), 1):
        if index <= at + 1:
            continue
        code, change = (row[code_col] or "").strip(), (row[change_col] or "").strip()
        if not code and not change:
            continue
        if not code or not change:
            raise TransactionReportError(
                f"{name}, sheet {sheet!r}, row {index}: no code and change in "
                f"{[c for c in row if c]!r}")
        rows.append((code, change, index))
    return _frame(rows, f"{name}, sheet {sheet!r}", "row")


def parse_transaction_report_file(name: str, data: bytes) -> pl.DataFrame:
    """Any real report layout, by the suffix of its file ``name``: text (``.txt``, ``.prn``) or
    workbook (``.xlsx``, ``.xls``)."""
    suffix = PurePosixPath(name.replace("\\", "/")).suffix.lower()
    if suffix not in REPORT_FORMATS:
        raise TransactionReportError(
            f"{name}: a {suffix or 'suffix-less'} file is no transaction report layout "
            f"({', '.join(REPORT_FORMATS)})")
    if suffix in WORKBOOK_FORMATS:
        return parse_workbook_report(data, name)
    return parse_transaction_report(data, name)
