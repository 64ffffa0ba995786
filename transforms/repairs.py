"""Known CMS defects, corrected from a versioned table after parsing (never by editing the bytes).

``repairs.csv`` beside this module lists each one: release, code, field, the raw value CMS wrote,
the value it meant, and the evidence (CMS's own corrections workbooks). A repair applies only to
that release's quarter (any revision of it) and only while the code still holds exactly that raw
value, so a re-issued, fixed file is left alone. The raw value stays on record: ``apply_repairs``
returns every table entry for the release with what it found and whether it applied, and
``warehouse.publish`` keeps that as ``repairs.parquet``.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from contracts.errors import TerminalError
from contracts.layout import FIELDS
from contracts.release import ReleaseIdError, quarter_of
from transforms.fixed_width import typed_text
from transforms.reconcile import field_texts

SHIPPED_REPAIRS = Path(__file__).with_name("repairs.csv")
_COLUMNS = ["release", "code", "field", "raw_value", "repaired_value", "evidence"]

#: What ``apply_repairs`` returns for each table entry of the release (``repairs.parquet``).
REPAIRS_SCHEMA: dict[str, pl.DataType] = {
    "code": pl.String(), "field": pl.String(), "raw_value": pl.String(),
    "repaired_value": pl.String(), "evidence": pl.String(), "found_value": pl.String(),
    "applied": pl.Boolean(),
}


class RepairsTableError(TerminalError, ValueError):
    """The repairs table cannot be trusted (bad column, field, release or value); names the row."""


def _without(name: str) -> pl.Expr:
    """``unparsed_values`` without the entry of field ``name``."""
    return pl.col("unparsed_values").list.eval(
        pl.element().filter(pl.element().struct.field("field") != name))


def read_repairs(path: str | Path | None = None) -> pl.DataFrame:
    """The repairs table (``path``, else the shipped one), checked entry by entry."""
    path = Path(path) if path else SHIPPED_REPAIRS
    try:
        table = pl.read_csv(path, glob=False, schema={c: pl.String() for c in _COLUMNS})
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise RepairsTableError(f"{path}: cannot read the repairs table ({exc})") from None
    for line, row in enumerate(table.iter_rows(named=True), 2):  # a handful of rows
        where = f"{path}:{line}"
        if any(row[c] is None for c in _COLUMNS):
            raise RepairsTableError(f"{where}: every column is required ({', '.join(_COLUMNS)})")
        try:
            quarter_of(row["release"])
        except ReleaseIdError as exc:
            raise RepairsTableError(f"{where}: {exc}") from None
        f = FIELDS.get(row["field"])
        if f is None or f.occurs != 1 or f.type in ("code", "sequence", "record_id", "filler"):
            raise RepairsTableError(f"{where}: {row['field']!r} is not a single-valued data field")
        if pl.select(typed_text(f, pl.lit(row["repaired_value"]))).item() is None:
            raise RepairsTableError(
                f"{where}: repaired value {row['repaired_value']!r} is not a valid {f.type}")
    return table


def apply_repairs(codes: pl.DataFrame, release_id: str,
                  table: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The codes with this release's repairs applied, and one row per table entry for the
    release (``REPAIRS_SCHEMA``): the value found, and whether it matched the raw value and was
    repaired. A repaired value's ``unparsed_values`` entry is removed (the raw text is kept in
    the returned frame instead)."""
    quarter = pl.col("release").str.extract(r"^(\d{4}-Q[1-4])")
    entries = table.filter(quarter == quarter_of(release_id)).drop("release")
    found = field_texts(codes, set(entries["field"]))
    found = found.rename({"value": "found_value"})
    report = entries.join(found, on=["code", "field"], how="left").with_columns(
        applied=pl.col("found_value").eq_missing(pl.col("raw_value")))
    for name, fixes in report.filter("applied").group_by("field", maintain_order=True):
        f = FIELDS[str(name[0])]
        fixed = dict(zip(fixes["code"], fixes["repaired_value"], strict=True))
        hit = pl.col("code").is_in(list(fixed))
        codes = codes.with_columns(
            pl.when(hit).then(typed_text(f, pl.col("code").replace_strict(fixed, default=None)))
            .otherwise(pl.col(f.name)).alias(f.name),
            pl.when(hit).then(_without(f.name)).otherwise(pl.col("unparsed_values"))
            .alias("unparsed_values"),
        )
    return codes, report.select(list(REPAIRS_SCHEMA)).cast(REPAIRS_SCHEMA)
