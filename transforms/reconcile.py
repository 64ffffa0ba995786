"""The TXT (the source of record) against CMS's xlsx copy of the same release, value by value.

Both frames come from the parsers (``parse_anweb``, ``parse_anweb_xlsx``), so they have the same
columns; every layout field of every code is compared as text (a date as ``YYYYMMDD``; a value
that could not be typed by its raw text from ``unparsed_values``), each occurrence of a repeating
group on its own (``types_of_service[4]``). Each difference gets one class of
``DIFFERENCES``, the first that fits, in the table's order.
"""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

from contracts.layout import DATA_FIELDS, Field
from transforms.fixed_width import occurrence_labels

#: Difference class -> what it means (the docs' table is generated from this).
DIFFERENCES: dict[str, str] = {
    "missing_in_xlsx": "The code is in the TXT only (one row, field `code`).",
    "only_in_xlsx": "The code is in the xlsx only (one row, field `code`).",
    "blank_in_xlsx": "A value in the TXT, blank in the xlsx.",
    "blank_in_txt": "A value in the xlsx, blank in the TXT.",
    "whitespace": "Equal once every run of white space is one space and the ends are trimmed "
    "(a double space the TXT lost, or gained, at a line wrap).",
    "truncated_in_xlsx": "The xlsx value is a proper prefix of the TXT value, white space "
    "collapsed: CMS cut the cell.",
    "value_differs": "Both have a value, and they differ otherwise.",
}
#: What ``reconcile`` returns.
RECONCILIATION_SCHEMA: dict[str, pl.DataType] = {
    "code": pl.String(),
    "field": pl.String(),
    "txt_value": pl.String(),
    "xlsx_value": pl.String(),
    "difference": pl.String(),
}
_COMPARED = [f for f in DATA_FIELDS if f.name != "code"]  # the code is the key
_LABELS = [label for f in _COMPARED for label in occurrence_labels(f)]
_XLSX = "__xlsx"  # suffix of the xlsx's columns beside the TXT's


def _text(f: Field, i: int, label: str) -> pl.Expr:
    """Occurrence ``i`` of ``f`` as the text the file had: a date as ``YYYYMMDD``; a date or
    number that could not be typed as its raw text (from ``unparsed_values``)."""
    value = pl.col(f.name).list.get(i, null_on_oob=True) if f.occurs > 1 else pl.col(f.name)
    text = value.dt.strftime("%Y%m%d") if f.type == "date" else value.cast(pl.String)
    if f.type in ("date", "int"):
        entry = pl.element()
        mine = entry.filter(entry.struct.field("field") == label)
        raw = pl.col("unparsed_values").list.eval(mine).list.first().struct.field("value")
        text = pl.coalesce(text, raw)
    return text.alias(label)


_TEXTS = {label: _text(f, i, label) for f in _COMPARED
          for i, label in enumerate(occurrence_labels(f))}


def field_texts(codes: pl.DataFrame, labels: Collection[str] | None = None) -> pl.DataFrame:
    """(code, field, value): the compared field occurrences (those among ``labels``; default
    all) of every code as the text the file had (``_text``)."""
    wanted = [label for label in _LABELS if labels is None or label in labels]
    return codes.select("code", *(_TEXTS[label] for label in wanted)).unpivot(
        wanted, index="code", variable_name="field", value_name="value"
    )


def collapsed(text: pl.Expr) -> pl.Expr:
    """Text with every run of white space one space, ends trimmed: how CMS's re-wrapped
    descriptions compare (a re-wrap is not a difference, nor a change)."""
    return text.str.replace_all(r"\s+", " ").str.strip_chars()


def reconcile(record: pl.DataFrame, cross_check: pl.DataFrame) -> pl.DataFrame:
    """Every (code, field) where the TXT's frame ``record`` and the xlsx's ``cross_check``
    disagree, with both values as text and the class of the difference; sorted by code, then
    field in layout order."""
    txt, xlsx = collapsed(pl.col("txt_value")), collapsed(pl.col("xlsx_value"))
    difference = (
        pl.when(pl.col("xlsx_value").is_null())
        .then(pl.lit("blank_in_xlsx"))
        .when(pl.col("txt_value").is_null())
        .then(pl.lit("blank_in_txt"))
        .when(txt == xlsx)
        .then(pl.lit("whitespace"))
        .when(txt.str.starts_with(xlsx))
        .then(pl.lit("truncated_in_xlsx"))
        .otherwise(pl.lit("value_differs"))
    )
    # side by side, one row per code, then each field's differing rows: a long (code, field)
    # frame of every value of both files would be 70 times larger
    both = record.select("code", *_TEXTS.values()).join(
        cross_check.select("code", *_TEXTS.values()), on="code", suffix=_XLSX)
    values = pl.concat([
        both.filter(pl.col(label).ne_missing(pl.col(label + _XLSX))).select(
            "code", field=pl.lit(label), txt_value=label, xlsx_value=label + _XLSX)
        for label in _LABELS
    ]).with_columns(difference=difference)
    codes = record.select("code", txt_value="code").join(
        cross_check.select("code", xlsx_value="code"), on="code", how="full", coalesce=True
    )
    missing = codes.filter(pl.col("txt_value").is_null() | pl.col("xlsx_value").is_null()).select(
        "code",
        field=pl.lit("code"),
        txt_value="txt_value",
        xlsx_value="xlsx_value",
        difference=pl.when(pl.col("xlsx_value").is_null())
        .then(pl.lit("missing_in_xlsx"))
        .otherwise(pl.lit("only_in_xlsx")),
    )
    out = pl.concat([missing, values.select(missing.columns)])
    order = pl.col("field").replace_strict(_LABELS, range(len(_LABELS)), default=-1)
    return out.sort("code", order).select(
        [pl.col(n).cast(t) for n, t in RECONCILIATION_SCHEMA.items()]
    )


def differences_markdown() -> str:
    """The difference classes as a Markdown table (the docs' copy is generated from this)."""
    rows = ["| class | meaning |", "|---|---|"]
    rows += [f"| `{name}` | {meaning} |" for name, meaning in DIFFERENCES.items()]
    return "\n".join(rows)
