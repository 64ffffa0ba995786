"""Pure transformations: CMS bytes -> Polars frames (no network, no files written)."""

from pathlib import PurePosixPath

from contracts.errors import TerminalError
from transforms.fixed_width import ParseResult, parse_anweb
from transforms.xlsx import WorkbookError, parse_anweb_xlsx

__all__ = [
    "ParseResult",
    "UnsupportedFileError",
    "WorkbookError",
    "parse_anweb",
    "parse_anweb_xlsx",
    "parse_member",
]


class UnsupportedFileError(TerminalError, ValueError):
    """A data file of a kind no parser reads (by its suffix); names the file."""


def parse_member(name: str, data: bytes) -> ParseResult:
    """Parse a release's data file by the suffix of its ``name``: the fixed-width ``.txt``, or
    CMS's ``.xlsx`` / ``.xls`` workbook of the same data."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix == ".txt":
        return parse_anweb(data)
    if suffix in (".xlsx", ".xls"):
        return parse_anweb_xlsx(data, name)
    kind = f"a {suffix} file" if suffix else "a file without a suffix"
    raise UnsupportedFileError(f"{name}: {kind} is no ANWEB data file (.txt, .xlsx or .xls)")
