"""Pure transformations: the record layout as data and the fixed-width parser (no I/O)."""

from transforms.fixed_width import ParseResult, parse_anweb
from transforms.layout import CODES_SCHEMA, LAYOUT, REJECTS_SCHEMA

__all__ = ["CODES_SCHEMA", "LAYOUT", "REJECTS_SCHEMA", "ParseResult", "parse_anweb"]
