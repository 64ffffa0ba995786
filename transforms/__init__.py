"""Pure transformations: CMS bytes -> Polars frames (no network, no files written)."""

from transforms.fixed_width import ParseResult, parse_anweb

__all__ = ["ParseResult", "parse_anweb"]
