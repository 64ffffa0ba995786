"""The frames Great Expectations validates, assembled from the codes and the checks' own columns.

GX validates flat pandas frames of scalars, so the codes frame is flattened: every scalar text
field of the layout as is, each occurrence of a text repeating group as its own column
(``pricing_indicators_1``), and dates as the text CMS wrote (``YYYYMMDD``, or the raw text when it
is not a date, so "present" and "valid" are separate checks). Rules GX cannot express directly
declare a *derived* column on their ``Check`` (``Check.derive``, a Polars expression holding
``"field=value"`` for a failing code and null otherwise); the helpers below build those
expressions, and the frames below add the columns they are given. No row loops: one Polars
``select`` per frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from contracts.layout import CODES_SCHEMA, DATA_FIELDS, FIELDS, LAYOUT

#: Repeating groups -> number of occurrences (4 pricing indicators, 8 lab certifications, ...).
OCCURS: dict[str, int] = {f.name: f.occurs for f in DATA_FIELDS if f.occurs > 1}
DATE_FIELDS: tuple[str, ...] = tuple(f.name for f in DATA_FIELDS if f.type == "date")
NUMBER_FIELDS: tuple[str, ...] = tuple(f.name for f in DATA_FIELDS if f.type == "int")
FILLER_FIELDS: tuple[str, ...] = tuple(f.name for f in LAYOUT if f.type == "filler")
#: Scalar text columns passed to GX unchanged (every one a check may name).
SCALARS: tuple[str, ...] = ("code", "kind", *(
    f.name for f in DATA_FIELDS
    if f.occurs == 1 and f.type in ("text", "chunk") and f.name != "code"))
#: Columns of the previous release joined beside each code (for checks that compare).
PREVIOUS = "previous_"


def occurrence_column(group: str, i: int) -> str:
    """GX column of occurrence ``i`` (1-based) of a repeating group: ``types_of_service_2``."""
    return f"{group}_{i}"


def occurrence_field(group: str, i: int) -> str:
    """How samples name that occurrence: ``types_of_service[2]``."""
    return f"{group}[{i}]"


def labelled(field: str | pl.Expr, value: pl.Expr) -> pl.Expr:
    """``"field=value"`` (the derived columns' format)."""
    name = pl.lit(field) if isinstance(field, str) else field
    return pl.concat_str([name, pl.lit("="), value.cast(pl.String)])


def unparsed(fields: Sequence[str]) -> pl.Expr:
    """First unparsed value among ``fields`` as ``"field=raw text"``, else null."""
    entry = pl.element()
    wanted = entry.struct.field("field").str.replace(r"\[\d+\]$", "").is_in(list(fields))
    return (
        pl.col("unparsed_values")
        .list.eval(entry.filter(wanted))
        .list.first()
        .pipe(lambda e: labelled(e.struct.field("field"), e.struct.field("value")))
    )


def _date_text(name: str) -> pl.Expr:
    """The date as CMS wrote it: YYYYMMDD, or the raw text the parser could not type."""
    raw = (
        pl.col("unparsed_values")
        .list.eval(pl.element().filter(pl.element().struct.field("field") == name))
        .list.first()
        .struct.field("value")
    )
    return pl.coalesce(pl.col(name).dt.strftime("%Y%m%d"), raw).alias(name)


def first_value_on_modifier(fields: Sequence[str]) -> pl.Expr:
    """For a modifier: the first of ``fields`` (any occurrence) that carries a value."""
    candidates = []
    for name in fields:
        if name in OCCURS:
            for i in range(OCCURS[name]):
                value = pl.col(name).list.get(i, null_on_oob=True)
                candidates.append(labelled(occurrence_field(name, i + 1), value))
        else:
            candidates.append(labelled(name, pl.col(name)))
    return pl.when(pl.col("kind") == "modifier").then(pl.coalesce(candidates))


def first_occurrence(group: str, values: Sequence[str], inside: bool) -> pl.Expr:
    """First non-null occurrence whose value is (``inside``) or is not in ``values``, as
    ``"group[i]=value"``; one Polars expression per occurrence, no row loops."""
    hits = []
    for i in range(OCCURS[group]):
        value = pl.col(group).list.get(i, null_on_oob=True)
        hit = value.is_in(list(values)) if inside else ~value.is_in(list(values))
        hits.append(pl.when(hit).then(labelled(occurrence_field(group, i + 1), value)))
    return pl.coalesce(hits)


def date_order(later: str, earlier: str) -> pl.Expr:
    """``later=YYYYMMDD (before earlier YYYYMMDD)`` when ``later`` < ``earlier``, else null."""
    fmt = "%Y%m%d"
    text = pl.concat_str([
        pl.col(later).dt.strftime(fmt), pl.lit(f" (before {earlier} "),
        pl.col(earlier).dt.strftime(fmt), pl.lit(")"),
    ])
    return pl.when(pl.col(later) < pl.col(earlier)).then(labelled(later, text))


def collapsed(name: str) -> pl.Expr:
    """Text with whitespace collapsed (CMS re-wraps descriptions; that is not a change)."""
    return pl.col(name).str.replace_all(r"\s+", " ").str.strip_chars()


def codes_frame(codes: pl.DataFrame, derived: Mapping[str, pl.Expr],
                previous: pl.DataFrame | None = None) -> pl.DataFrame:
    """The flat frame the per-code checks validate (one row per code, file order kept), with
    the ``derived`` columns (name -> expression over the codes).

    With ``previous``, its codes' fields are joined beside each code as ``previous_<field>``
    (``previous_code`` is null for a new code), for the expressions that compare with it.
    """
    missing = [c for c in CODES_SCHEMA if c not in codes.columns]
    if missing:
        raise ValueError(f"codes frame lacks columns {missing} (expected parse_anweb output)")
    source = codes
    if previous is not None:
        before = previous.unique("code", keep="first").select(
            pl.col("code"), pl.all().name.prefix(PREVIOUS))
        source = codes.join(before, on="code", how="left", maintain_order="left")
    occurrences = [
        pl.col(group).list.get(i, null_on_oob=True).alias(occurrence_column(group, i + 1))
        for group, n in OCCURS.items()
        if FIELDS[group].type == "text"
        for i in range(n)
    ]
    return source.select(*SCALARS, *occurrences, *(_date_text(d) for d in DATE_FIELDS),
                         *(e.alias(name) for name, e in derived.items()))


def previous_frame(codes: pl.DataFrame, previous: pl.DataFrame,
                   derived: Mapping[str, pl.Expr]) -> pl.DataFrame:
    """The previous release's codes (``present``: still in this release), with the ``derived``
    columns."""
    now = codes.select("code").unique().with_columns(present=pl.lit(True))
    joined = previous.select("code").join(now, on="code", how="left", maintain_order="left")
    return joined.with_columns(pl.col("present").fill_null(False)).select(
        "code", *(e.alias(name) for name, e in derived.items()))
