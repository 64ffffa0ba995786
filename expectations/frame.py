"""The frames Great Expectations validates, prepared with Polars expressions (no row loops).

GX validates flat pandas frames of scalars, so the codes frame is flattened: the occurrences rules
name become columns (``pricing_indicators_1``), each repeating group's domain check becomes one
derived column naming its first bad occurrence, and dates become the text CMS wrote
(``YYYYMMDD``, or the raw text when it is not a date, so "present" and "valid" are separate
checks). Rules GX cannot express directly (unparsed values, cross-field comparisons, comparison
with the previous release) become *derived* columns holding ``"field=value"`` for a failing code and
null otherwise; GX then checks them with a null/in-set expectation, and the sample names the field.
"""

from __future__ import annotations

import polars as pl

from expectations.domains import DOMAINS
from transforms.layout import CODES_SCHEMA, DATA_FIELDS, FIELDS, LAYOUT

#: Repeating groups -> number of occurrences (4 pricing indicators, 8 lab certifications, ...).
OCCURS: dict[str, int] = {f.name: f.occurs for f in DATA_FIELDS if f.occurs > 1}
DATE_FIELDS: tuple[str, ...] = tuple(f.name for f in DATA_FIELDS if f.type == "date")
NUMBER_FIELDS: tuple[str, ...] = tuple(f.name for f in DATA_FIELDS if f.type == "int")
FILLER_FIELDS: tuple[str, ...] = tuple(f.name for f in LAYOUT if f.type == "filler")
#: Fields a modifier record leaves blank (the layout's procedure-only pricing/BETOS/TOS data).
PROCEDURE_ONLY: tuple[str, ...] = (
    "pricing_indicators",
    "multiple_pricing_indicator",
    "betos",
    "types_of_service",
    "anesthesia_base_units",
)
#: Scalar code columns passed to GX unchanged.
_SCALARS = (
    "code",
    "kind",
    "short_description",
    "long_description",
    "multiple_pricing_indicator",
    "coverage_code",
    "asc_group",
    "betos",
    "action_code",
)


def occurrence_column(group: str, i: int) -> str:
    """GX column of occurrence ``i`` (1-based) of a repeating group: ``types_of_service_2``."""
    return f"{group}_{i}"


def occurrence_field(group: str, i: int) -> str:
    """How samples name that occurrence: ``types_of_service[2]``."""
    return f"{group}[{i}]"


def _labelled(field: str | pl.Expr, value: pl.Expr) -> pl.Expr:
    """``"field=value"`` (the derived columns' format)."""
    name = pl.lit(field) if isinstance(field, str) else field
    return pl.concat_str([name, pl.lit("="), value.cast(pl.String)])


def _unparsed(fields: tuple[str, ...]) -> pl.Expr:
    """First unparsed value among ``fields`` as ``"field=raw text"``, else null."""
    entry = pl.element()
    wanted = entry.struct.field("field").str.replace(r"\[\d+\]$", "").is_in(list(fields))
    return (
        pl.col("unparsed_values")
        .list.eval(entry.filter(wanted))
        .list.first()
        .pipe(lambda e: _labelled(e.struct.field("field"), e.struct.field("value")))
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


def _first_procedure_value() -> pl.Expr:
    """For a modifier: the first procedure-only field that carries a value, as field=value."""
    candidates = []
    for name in PROCEDURE_ONLY:
        if name in OCCURS:
            for i in range(OCCURS[name]):
                value = pl.col(name).list.get(i, null_on_oob=True)
                candidates.append(_labelled(occurrence_field(name, i + 1), value))
        else:
            candidates.append(_labelled(name, pl.col(name)))
    return pl.when(pl.col("kind") == "modifier").then(pl.coalesce(candidates))


def outside_domain_column(group: str) -> str:
    """Derived column: the first occurrence of a repeating group outside its domain."""
    return f"{group}_outside_domain"


def obsolete_column(group: str) -> str:
    """Derived column: the first occurrence of a repeating group holding a retired value."""
    return f"{group}_obsolete"


def _first_occurrence(group: str, values: list[str], inside: bool) -> pl.Expr:
    """First non-null occurrence whose value is (``inside``) or is not in ``values``, as
    ``"group[i]=value"``; one Polars expression per occurrence, no row loops."""
    hits = []
    for i in range(OCCURS[group]):
        value = pl.col(group).list.get(i, null_on_oob=True)
        hit = value.is_in(values) if inside else ~value.is_in(values)
        hits.append(pl.when(hit).then(_labelled(occurrence_field(group, i + 1), value)))
    return pl.coalesce(hits)


def _group_domain_columns() -> list[pl.Expr]:
    """For every repeating group a domain decodes: outside-domain and obsolete-value columns."""
    out = []
    for domain in DOMAINS.values():
        for group in (c for c in domain.columns if c in OCCURS):
            values = list(domain.values)
            out.append(_first_occurrence(group, values, False).alias(outside_domain_column(group)))
            if domain.obsolete:
                retired = sorted(domain.obsolete)
                out.append(_first_occurrence(group, retired, True).alias(obsolete_column(group)))
    return out


def _date_order(later: str, earlier: str) -> pl.Expr:
    """``later=YYYYMMDD (before earlier YYYYMMDD)`` when ``later`` < ``earlier``, else null."""
    fmt = "%Y%m%d"
    text = pl.concat_str([
        pl.col(later).dt.strftime(fmt), pl.lit(f" (before {earlier} "),
        pl.col(earlier).dt.strftime(fmt), pl.lit(")"),
    ])
    return pl.when(pl.col(later) < pl.col(earlier)).then(_labelled(later, text))


def _collapsed(name: str) -> pl.Expr:
    """Description with whitespace collapsed (CMS re-wraps text; that is not a change)."""
    return pl.col(name).str.replace_all(r"\s+", " ").str.strip_chars()


def _description_change(codes: pl.DataFrame, previous: pl.DataFrame) -> pl.Series:
    """Per code: null when new, "unchanged", or ``"<first description field changed>=changed"``."""
    before = previous.unique("code", keep="first").select(
        "code", known=pl.lit(True), prev_long=_collapsed("long_description"),
        prev_short=_collapsed("short_description"),
    )
    joined = codes.select("code", "long_description", "short_description").join(
        before, on="code", how="left", maintain_order="left"
    )
    change = (
        pl.when(pl.col("known").is_null())
        .then(None)
        .when(_collapsed("long_description").ne_missing(pl.col("prev_long")))
        .then(pl.lit("long_description=changed"))
        .when(_collapsed("short_description").ne_missing(pl.col("prev_short")))
        .then(pl.lit("short_description=changed"))
        .otherwise(pl.lit("unchanged"))
    )
    return joined.select(change.alias("description_change")).to_series()


def codes_frame(codes: pl.DataFrame, previous: pl.DataFrame | None = None) -> pl.DataFrame:
    """The flat frame the per-code suite validates (one row per code, file order kept)."""
    missing = [c for c in CODES_SCHEMA if c not in codes.columns]
    if missing:
        raise ValueError(f"codes frame lacks columns {missing} (expected parse_anweb output)")
    occurrences = [
        pl.col(group).list.get(i, null_on_oob=True).alias(occurrence_column(group, i + 1))
        for group, n in OCCURS.items()
        if FIELDS[group].type == "text"
        for i in range(n)
    ]
    frame = codes.select(
        *_SCALARS,
        *occurrences,
        *(_date_text(d) for d in DATE_FIELDS),
        *_group_domain_columns(),
        invalid_date=_unparsed(DATE_FIELDS),
        invalid_number=_unparsed(NUMBER_FIELDS),
        nonblank_filler=_unparsed(FILLER_FIELDS),
        procedure_value_on_modifier=_first_procedure_value(),
        added_after_action_effective=_date_order("action_effective_date", "added_date"),
        terminated_before_added=_date_order("termination_date", "added_date"),
    )
    if previous is None:
        return frame.with_columns(description_change=pl.lit(None, pl.String))
    return frame.with_columns(_description_change(codes, previous))


def previous_frame(codes: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """The previous release's codes, each marked "present" or "vanished" from this release."""
    now = codes.select("code").unique()
    return previous.select("code").with_columns(
        status=pl.when(pl.col("code").is_in(now["code"].implode()))
        .then(pl.lit("present"))
        .otherwise(pl.lit("vanished"))
    )
