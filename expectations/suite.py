"""The validation suite as data: checks derived from the code domains plus a small rule table.

Each ``Check`` is one Great Expectations expectation with a scope and a severity, and, when GX
cannot read the rule off the codes directly, the Polars expression of the column it validates
(``derive``): adding a rule is adding one entry.

- Scope ``release``: the file as a whole (it holds codes, no duplicates, no collapse in count, no
  mass disappearance, few unreadable lines, no code lost to a rejected line, no revision dropping
  codes its predecessor had not terminated). A failed ``release`` error stops publishing, unless
  an operator waived it for that file.
- Scope ``record``: one code's values (outside a domain, impossible dates, shifted or misaligned
  fields). These never stop an authoritative release: every failing code, field and raw value is
  kept as a finding, severity ``error`` (the value is wrong) or ``warning`` (a rule CMS's own
  releases break, see ``cms-hcpcs-format.md`` sections 3.5 and 5).

GX is imported only inside ``build_suite`` so that importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from contracts.domains import DOMAINS
from contracts.layout import PROCEDURE_ONLY, domain_columns
from contracts.settings import GateSettings
from contracts.validation import BLANK, Scope
from expectations.frame import (
    DATE_FIELDS,
    FILLER_FIELDS,
    NUMBER_FIELDS,
    OCCURS,
    PREVIOUS,
    collapsed,
    date_order,
    first_occurrence,
    first_value_on_modifier,
    labelled,
    occurrence_column,
    occurrence_field,
    unparsed,
)
from expectations.vanished import UNTERMINATED

if TYPE_CHECKING:
    import great_expectations as gx

Severity = Literal["error", "warning"]
Batch = Literal["codes", "previous", "rejects"]


@dataclass(frozen=True)
class Check:
    """One expectation: which GX expectation on which column, with what severity and why.

    ``field`` names the field in failing samples; None means the column holds ``"field=value"``.
    ``derive`` is the Polars expression that computes ``column`` from the codes (``None``: the
    column is a field of the flattened codes). ``when`` is a row condition ``(column, values)``:
    the check applies only to rows whose column is in ``values``. ``scope`` says whether a
    failure blocks the release (``release``) or is kept per code (``record``).
    """

    name: str
    severity: Severity
    expectation: str
    column: str | None
    field: str | None
    why: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    when: tuple[str, tuple[str, ...]] | None = None
    batch: Batch = "codes"
    derive: pl.Expr | None = field(default=None, compare=False, repr=False)
    scope: Scope = "record"


_PROC = ("kind", ("procedure",))
_NULL, _NOT_NULL, _IN_SET = (
    "ExpectColumnValuesToBeNull",
    "ExpectColumnValuesToNotBeNull",
    "ExpectColumnValuesToBeInSet",
)


def _check(name: str, severity: Severity, expectation: str, column: str, why: str,
           field: str | None = "", **kwargs: Any) -> Check:
    """Shorthand for the rule table: ``field`` defaults to the column itself."""
    when, derive = kwargs.pop("when", None), kwargs.pop("derive", None)
    scope = kwargs.pop("scope", "record")
    return Check(name, severity, expectation, column, column if field == "" else field, why,
                 kwargs, when, derive=derive, scope=scope)


def _asc_shifted() -> pl.Expr:
    """``asc_group=<raw>`` where the ASC fields hold the shifted pattern CMS wrote in 2018: a
    two-digit ASC group and a six-digit ASC date, because the eight-digit date started two
    columns early (``cms-hcpcs-format.md`` section 5, item 5)."""
    raw_date = (pl.col("unparsed_values").list.eval(
        pl.element().filter(pl.element().struct.field("field") == "asc_effective_date")
        .struct.field("value")).list.first())
    shifted = pl.col("asc_group").str.contains(r"^[0-9]{2}$") & raw_date.str.contains(
        r"^[0-9]{6}$")
    return pl.when(shifted).then(pl.format("asc_group={}", pl.col("asc_group")))


# fmt: off
#: Rules that are not plain domain membership, in the order they are reported.
RULES: tuple[Check, ...] = (
    Check("release_has_codes", "error", "ExpectTableRowCountToBeBetween", None, "code_count",
          "A release holds codes (an empty parse means a wrong or truncated file).",
          {"min_value": 1}, scope="release"),
    _check("procedure_code_format", "error", "ExpectColumnValuesToMatchRegex", "code",
           "Level II procedure codes are a letter A-V and four digits.",
           regex=r"^[A-V][0-9]{4}$", when=_PROC),
    _check("modifier_code_format", "error", "ExpectColumnValuesToMatchRegex", "code",
           "Modifiers are two characters.", regex=r"^[A-Z0-9]{2}$",
           when=("kind", ("modifier",))),
    _check("code_unique", "error", "ExpectColumnValuesToBeUnique", "code",
           "A code appears once in a release.", scope="release"),
    _check("record_kind_in_domain", "error", _IN_SET, "kind",
           "Every code comes from a first line with record id 3 (procedure) or 7 (modifier).",
           value_set=["procedure", "modifier"]),
    _check("long_description_present", "error", _NOT_NULL, "long_description",
           "Every code has a long description."),
    _check("short_description_present", "error", _NOT_NULL, "short_description",
           "Every code has a short description."),
    _check("short_description_max_28", "error", "ExpectColumnValueLengthsToBeBetween",
           "short_description", "The short description field is 28 characters wide.",
           max_value=28),
    _check("coverage_code_present", "error", _NOT_NULL, "coverage_code",
           "Every code carries a coverage code."),
    _check("action_code_present", "error", _NOT_NULL, "action_code",
           "Every code carries an action code."),
    _check("added_date_present", "error", _NOT_NULL, "added_date",
           "Every code carries the date it was added."),
    _check("procedure_pricing_indicator_present", "error", _NOT_NULL,
           occurrence_column("pricing_indicators", 1),
           "Procedures carry a first pricing indicator.",
           field=occurrence_field("pricing_indicators", 1), when=_PROC),
    _check("procedure_multiple_pricing_present", "error", _NOT_NULL,
           "multiple_pricing_indicator", "Procedures carry a multiple pricing indicator.",
           when=_PROC),
    _check("procedure_type_of_service_present", "error", _NOT_NULL,
           occurrence_column("types_of_service", 1), "Procedures carry a first type of service.",
           field=occurrence_field("types_of_service", 1), when=_PROC),
    _check("dates_valid", "error", _NULL, "invalid_date",
           "Dates are blank or a real YYYYMMDD date (catches shifted fields, 2018's ASC "
           "date written two columns early, impossible dates).", field=None,
           derive=unparsed(DATE_FIELDS)),
    _check("numbers_valid", "error", _NULL, "invalid_number",
           "Numeric fields (anesthesia base units) are numbers.", field=None,
           derive=unparsed(NUMBER_FIELDS)),
    _check("fillers_blank", "error", _NULL, "nonblank_filler",
           "Filler columns are blank; text there means a misaligned record.", field=None,
           derive=unparsed(FILLER_FIELDS)),
    _check("asc_fields_shifted", "error", _NULL, "asc_shifted",
           "The ASC group is blank or YY and the ASC date eight digits; a two-digit group with a "
           "six-digit date is the ASC date written two columns early (CMS 2018: C9488, "
           "C9745-C9748; repaired where transforms/repairs.csv says so).", field=None,
           derive=_asc_shifted()),
    _check("modifier_without_procedure_values", "error", _NULL, "procedure_value_on_modifier",
           "Modifiers have no pricing indicators, multiple pricing indicator, BETOS, type of "
           "service or anesthesia units (0 exceptions 2016-2025).", field=None,
           derive=first_value_on_modifier(PROCEDURE_ONLY)),
    _check("action_effective_date_present", "warning", _NOT_NULL, "action_effective_date",
           "Codes carry an action effective date; CMS left it blank for A5513 in 2019."),
    _check("added_not_after_action_effective", "warning", _NULL,
           "added_after_action_effective",
           "A code's action cannot take effect before the code was added; CMS has legacy "
           "exceptions (E0910, E1050, S0091-S0093).", field=None,
           derive=date_order("action_effective_date", "added_date")),
    _check("termination_not_before_added", "warning", _NULL, "terminated_before_added",
           "A code cannot end before it was added.", field=None,
           derive=date_order("termination_date", "added_date")),
    _check("pricing_00_99_means_multiple_pricing_9", "warning", _IN_SET,
           "multiple_pricing_indicator",
           "Pricing indicator 00 or 99 implies multiple pricing indicator 9; CMS broke it "
           "(J3290, Oct 2025).", value_set=["9"],
           when=(occurrence_column("pricing_indicators", 1), ("00", "99"))),
    _check("multiple_pricing_9_means_pricing_00_99", "warning", _IN_SET,
           occurrence_column("pricing_indicators", 1),
           "Multiple pricing indicator 9 means the code is not priced (00) or has no value (99).",
           field=occurrence_field("pricing_indicators", 1), value_set=["00", "99"],
           when=("multiple_pricing_indicator", ("9",))),
    _check("discontinued_has_termination_date", "warning", _NOT_NULL, "termination_date",
           "Action D (discontinue) implies a termination date.", when=("action_code", ("D",))),
)
# fmt: on


def domain_checks() -> list[Check]:
    """Every coded column within its domain (error) and not a value CMS retired (warning).

    Scalar columns use GX's in-set expectations directly; a repeating group is one derived column
    naming its first bad occurrence, so 17 occurrences cost 3 checks.
    """
    out: list[Check] = []
    for name, domain in DOMAINS.items():
        retired = sorted(domain.obsolete)
        listed = f" ({', '.join(domain.values)})" if len(domain.values) <= 10 else ""
        for col in domain_columns(name):
            group = col in OCCURS
            what = f"Every occurrence of {col}" if group else col
            out.append(Check(
                f"{col}_in_domain", "error", _NULL if group else _IN_SET,
                f"{col}_outside_domain" if group else col, None if group else col,
                f"{what} is blank or one of the {len(domain.values)} {name} values{listed}.",
                {} if group else {"value_set": list(domain.values)},
                derive=first_occurrence(col, list(domain.values), False) if group else None,
            ))
            if domain.obsolete:
                out.append(Check(
                    f"{col}_not_obsolete", "warning",
                    _NULL if group else "ExpectColumnValuesToNotBeInSet",
                    f"{col}_obsolete" if group else col, None if group else col,
                    f"{'No occurrence of ' + col if group else col + ' does not'} hold"
                    f"{'s' if group else ''} a {name} value CMS retired ({', '.join(retired)}).",
                    {} if group else {"value_set": retired},
                    derive=first_occurrence(col, retired, True) if group else None,
                ))
    return out


def _description_change() -> pl.Expr:
    """Per code: null when new, "unchanged", or ``"<first description field changed>=changed"``."""
    change = pl.when(pl.col(f"{PREVIOUS}code").is_null()).then(None)
    for name in ("long_description", "short_description"):
        differs = collapsed(name).ne_missing(collapsed(f"{PREVIOUS}{name}"))
        change = change.when(differs).then(pl.lit(f"{name}=changed"))
    return change.otherwise(pl.lit("unchanged"))


_STATUS = pl.when(pl.col("present")).then(pl.lit("present")).otherwise(pl.lit("vanished"))


def _unterminated() -> pl.Expr:
    """Over the previous release's codes: ``short_description=<as it had it>`` for a code gone
    without a termination date (``expectations.vanished``), else null."""
    text = pl.col("short_description").fill_null(pl.lit(BLANK))
    return pl.when(UNTERMINATED).then(labelled("short_description", text))


def _revision_removals(settings: GateSettings, previous_count: int, revision: bool) -> Check:
    """At most ``max_revision_removed_codes`` unterminated codes gone, when the previous release
    is the same quarter; otherwise its column is all null: it passes, finding nothing.

    GX's ``mostly`` is a share, so the count limit becomes one: half a code above the limit, so
    that exactly ``limit`` codes pass and ``limit + 1`` fail whatever the rounding.
    """
    limit = settings.max_revision_removed_codes
    mostly = max(0.0, 1 - (limit + 0.5) / previous_count) if previous_count else 0.0
    return Check(
        "revision_removes_codes", "error", _NULL, "removed_in_revision", None,
        f"A revision of the same quarter (2019-Q1r2 after 2019-Q1) lacks at most {limit} codes "
        "that the release it revises had not terminated: CMS's revisions drop a handful at most; "
        "more is a cut or partial file that would supersede a good release. Does not apply "
        "against another quarter.", {"mostly": mostly}, batch="previous",
        derive=_unterminated() if revision else pl.lit(None, pl.String), scope="release")


def release_checks(settings: GateSettings, previous_count: int,
                   revision: bool) -> list[Check]:
    """Checks against the previously published release (its code count and codes); ``revision``:
    that release is the same quarter."""
    drift = settings.max_code_count_drift
    return [
        Check("code_count_drift", "error", "ExpectTableRowCountToBeBetween", None, "code_count",
              f"The number of codes differs by at most {drift:.0%} from the previous release's "
              "(a large drop means a truncated or partial file).",
              {"min_value": math.ceil(previous_count * (1 - drift)),
               "max_value": math.floor(previous_count * (1 + drift))}, scope="release"),
        Check("vanished_codes_share", "error", _IN_SET, "status", "code",
              f"At most {settings.max_vanished_share:.0%} of the previous release's codes are "
              "missing (terminated codes stay in the file for years).",
              {"value_set": ["present"], "mostly": 1 - settings.max_vanished_share},
              batch="previous", derive=_STATUS, scope="release"),
        _revision_removals(settings, previous_count, revision),
        Check("vanished_without_termination", "warning", _NULL, "vanished_unterminated", None,
              "No code of the previous release is missing unless it had a termination date "
              "(CMS keeps terminated codes for years; 2019 lost modifier DA this way, in error).",
              batch="previous", derive=_unterminated(), scope="release"),
        Check("description_changed_share", "warning", _IN_SET, "description_change", None,
              f"At most {settings.max_description_changed_share:.0%} of continuing codes change "
              "their long or short description (whitespace ignored).",
              {"value_set": ["unchanged"], "mostly": 1 - settings.max_description_changed_share},
              derive=_description_change(), scope="release"),
    ]


def _lost_code() -> pl.Expr:
    """Over the rejected lines: ``line=<n>: <reason>`` on the first rejected line of a code that
    has no record among the codes read (``has_record``), else null. Lines naming no code are left
    to ``rejects_within_limit``."""
    first = pl.col("line") == pl.col("line").min().over("code")
    lost = pl.col("code").is_not_null() & ~pl.col("has_record") & first
    where = pl.concat_str([pl.col("line").cast(pl.String), pl.lit(": "), pl.col("reason")])
    return pl.when(lost).then(labelled("line", where))


def rejects_checks(settings: GateSettings, code_count: int) -> list[Check]:
    """Lines the parser could not read at all, against the codes it did read."""
    share = settings.max_reject_share
    return [
        Check("rejects_within_limit", "error", "ExpectTableRowCountToBeBetween", None,
              "reject_count", f"At most {share:.0%} as many unreadable lines as codes read "
              "(a file of garbage, or of another format, is not a release).",
              {"min_value": 0, "max_value": math.floor(code_count * share)},
              batch="rejects", scope="release"),
        Check("rejected_codes_missing", "error", _NULL, "lost_code", None,
              "Every code a rejected line names still has a record among the codes read: one "
              "unreadable line (400 characters, a broken sequence) must not drop a code from the "
              "release without a word.", batch="rejects", derive=_lost_code(), scope="release"),
    ]


def all_checks(settings: GateSettings, previous_count: int | None,
               code_count: int = 0, *, revision: bool = False) -> list[Check]:
    """The whole suite, in report order; release checks only when there is a previous release
    (``revision``: it is the same quarter)."""
    checks = [*RULES[:5], *domain_checks(), *RULES[5:], *rejects_checks(settings, code_count)]
    if previous_count is not None:
        checks += release_checks(settings, previous_count, revision)
    names = [c.name for c in checks]
    assert len(names) == len(set(names)), "check names must be unique"
    return checks


def derived_columns(checks: list[Check], batch: Batch) -> dict[str, pl.Expr]:
    """Column -> Polars expression, for the checks of ``batch`` that derive their column."""
    return {c.column: c.derive for c in checks
            if c.batch == batch and c.derive is not None and c.column is not None}


def checks_markdown(settings: GateSettings | None = None) -> str:
    """The whole suite as a Markdown table (the README's copy is generated from this)."""
    rows = [
        "| check | scope | severity | GX expectation | column | applies to | rule |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in all_checks(settings or GateSettings(), previous_count=0):
        where = {"previous": "previous release's codes", "rejects": "rejected lines"}.get(
            c.batch, "every code")
        if c.column is None:
            where = "the release"
        if c.when is not None:
            where = f"{c.when[0]} in {{{', '.join(c.when[1])}}}"
        column = f"`{c.column}`" if c.column else "(table)"
        scope = "**release** (blocks)" if c.scope == "release" and c.severity == "error" else (
            c.scope)
        rows.append(f"| `{c.name}` | {scope} | {c.severity} | {c.expectation} | {column} "
                    f"| {where} | {c.why} |")
    return "\n".join(rows)


def build_suite(name: str, checks: list[Check]) -> gx.ExpectationSuite:
    """A GX suite of the given checks; each expectation's ``meta`` carries the check's name."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    expectations = []
    for c in checks:
        kwargs: dict[str, Any] = dict(c.kwargs)
        if c.column is not None:
            kwargs["column"] = c.column
        if c.when is not None:
            column, values = c.when
            cond = Column(column)
            kwargs["row_condition"] = cond == values[0] if len(values) == 1 else cond.is_in(
                list(values))
        cls = getattr(gxe, c.expectation)
        # ``description`` is what Data Docs show for the expectation: the check's name with it.
        expectations.append(cls(**kwargs, meta={"check": c.name, "severity": c.severity},
                                notes=c.why, description=f"{c.name} ({c.severity}): {c.why}"))
    # The constructor, not add_expectation: that compares each new one with all before it.
    return gx.ExpectationSuite(name=name, expectations=expectations)
