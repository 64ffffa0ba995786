"""Codes a release dropped although the release before it had not terminated them.

CMS retires a code by giving it a termination date and keeps it in the file for years after; a
code that disappears while its last record had no termination date was lost, not retired (CMS
removed modifier DA that way in 2019, "removed in error", and put it back in its corrections
file). The gate counts them (``vanished_without_termination``, a warning; in a revision of the
same quarter ``revision_removes_codes``, an error) on the frame ``with_presence`` builds, by the
one condition ``UNTERMINATED``; ``vanished_without_termination`` lists them for the manifest.
"""

from __future__ import annotations

import polars as pl

from expectations.frame import previous_frame

#: Over ``with_presence``: the code is gone, and the previous release gave it no termination date.
UNTERMINATED: pl.Expr = ~pl.col("present") & pl.col("termination_date").is_null()


def with_presence(codes: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """The previous release's codes, every field, in its order, with ``present``: whether
    ``codes`` still holds the code."""
    present = previous_frame(codes, previous, {"present": pl.col("present")})["present"]
    return previous.with_columns(present)


def vanished_without_termination(codes: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """The codes of ``previous`` that ``codes`` lacks and that ``previous`` had not terminated,
    in ``previous``'s order: code, kind, long and short description and added date as
    ``previous`` had them (2017 against 2016: G0298, G9668; 2019 against 2017: DA)."""
    return with_presence(codes, previous).filter(UNTERMINATED).select(
        "code", "kind", "long_description", "short_description", "added_date")
