"""The validation suite as data: checks derived from the code domains plus a small rule table.

Each ``Check`` is one Great Expectations expectation with a severity. Errors are structural breaks
(unreadable or misaligned records, values outside a domain, duplicate codes, a release that lost a
large part of its codes): they stop publishing. Warnings are rules CMS's own releases break (see
``cms-hcpcs-format.md`` sections 3.5 and 5): recorded and published with the data.
GX is imported only inside ``build_suite`` so that importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from expectations.domains import DOMAINS
from expectations.frame import (
    OCCURS,
    obsolete_column,
    occurrence_column,
    occurrence_field,
    outside_domain_column,
)

if TYPE_CHECKING:
    import great_expectations as gx

Severity = Literal["error", "warning"]
Batch = Literal["codes", "previous"]


@dataclass(frozen=True)
class GateSettings:
    """Thresholds of the release-level checks (shares are fractions: 0.15 = 15%).

    Defaults sit well above what real releases show (2016->2017: +3.3% codes, 1.6% vanished,
    2.7% descriptions changed; 2017->2019: +4.6%, 1.7%, 2.9%) and well below a truncated file.
    """

    max_code_count_drift: float = 0.15
    max_vanished_share: float = 0.10
    max_description_changed_share: float = 0.25
    sample_size: int = 10
    #: Run every check in GX's cheap pass/fail format first and count only what failed (half the
    #: time; same outcomes). False runs every check in full.
    quick_first: bool = True


@dataclass(frozen=True)
class Check:
    """One expectation: which GX expectation on which column, with what severity and why.

    ``field`` names the field in failing samples; None means the column holds ``"field=value"``
    (the derived columns of ``expectations.frame``). ``when`` is a row condition
    ``(column, values)``: the check applies only to rows whose column is in ``values``.
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


_PROC = ("kind", ("procedure",))
_NULL, _NOT_NULL, _IN_SET = (
    "ExpectColumnValuesToBeNull",
    "ExpectColumnValuesToNotBeNull",
    "ExpectColumnValuesToBeInSet",
)


def _check(name: str, severity: Severity, expectation: str, column: str, why: str,
           field: str | None = "", **kwargs: Any) -> Check:
    """Shorthand for the rule table: ``field`` defaults to the column itself."""
    when = kwargs.pop("when", None)
    return Check(name, severity, expectation, column, column if field == "" else field, why,
                 kwargs, when)


# fmt: off
#: Rules that are not plain domain membership, in the order they are reported.
RULES: tuple[Check, ...] = (
    Check("release_has_codes", "error", "ExpectTableRowCountToBeBetween", None, "code_count",
          "A release holds codes (an empty parse means a wrong or truncated file).",
          {"min_value": 1}),
    _check("procedure_code_format", "error", "ExpectColumnValuesToMatchRegex", "code",
           "Level II procedure codes are a letter A-V and four digits.",
           regex=r"^[A-V][0-9]{4}$", when=_PROC),
    _check("modifier_code_format", "error", "ExpectColumnValuesToMatchRegex", "code",
           "Modifiers are two characters.", regex=r"^[A-Z0-9]{2}$",
           when=("kind", ("modifier",))),
    _check("code_unique", "error", "ExpectColumnValuesToBeUnique", "code",
           "A code appears once in a release."),
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
           "date written two columns early, impossible dates).", field=None),
    _check("numbers_valid", "error", _NULL, "invalid_number",
           "Numeric fields (anesthesia base units) are numbers.", field=None),
    _check("fillers_blank", "error", _NULL, "nonblank_filler",
           "Filler columns are blank; text there means a misaligned record.", field=None),
    _check("modifier_without_procedure_values", "error", _NULL, "procedure_value_on_modifier",
           "Modifiers have no pricing indicators, multiple pricing indicator, BETOS, type of "
           "service or anesthesia units (0 exceptions 2016-2025).", field=None),
    _check("action_effective_date_present", "warning", _NOT_NULL, "action_effective_date",
           "Codes carry an action effective date; CMS left it blank for A5513 in 2019."),
    _check("added_not_after_action_effective", "warning", _NULL,
           "added_after_action_effective",
           "A code's action cannot take effect before the code was added; CMS has legacy "
           "exceptions (E0910, E1050, S0091-S0093).", field=None),
    _check("termination_not_before_added", "warning", _NULL, "terminated_before_added",
           "A code cannot end before it was added.", field=None),
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
    (``expectations.frame``) naming its first bad occurrence, so 17 occurrences cost 3 checks.
    """
    out: list[Check] = []
    for name, domain in DOMAINS.items():
        retired = ", ".join(sorted(domain.obsolete))
        listed = f" ({', '.join(domain.values)})" if len(domain.values) <= 10 else ""
        for col in domain.columns:
            group = col in OCCURS
            what = f"Every occurrence of {col}" if group else col
            out.append(Check(
                f"{col}_in_domain", "error", _NULL if group else _IN_SET,
                outside_domain_column(col) if group else col, None if group else col,
                f"{what} is blank or one of the {len(domain.values)} {name} values{listed}.",
                {} if group else {"value_set": list(domain.values)},
            ))
            if domain.obsolete:
                out.append(Check(
                    f"{col}_not_obsolete", "warning",
                    _NULL if group else "ExpectColumnValuesToNotBeInSet",
                    obsolete_column(col) if group else col, None if group else col,
                    f"{'No occurrence of ' + col if group else col + ' does not'} hold"
                    f"{'s' if group else ''} a {name} value CMS retired ({retired}).",
                    {} if group else {"value_set": sorted(domain.obsolete)},
                ))
    return out


def release_checks(settings: GateSettings, previous_count: int) -> list[Check]:
    """Checks against the previously published release (its code count and codes)."""
    drift = settings.max_code_count_drift
    return [
        Check("code_count_drift", "error", "ExpectTableRowCountToBeBetween", None, "code_count",
              f"The number of codes differs by at most {drift:.0%} from the previous release's "
              "(a large drop means a truncated or partial file).",
              {"min_value": math.ceil(previous_count * (1 - drift)),
               "max_value": math.floor(previous_count * (1 + drift))}),
        Check("vanished_codes_share", "error", _IN_SET, "status", "code",
              f"At most {settings.max_vanished_share:.0%} of the previous release's codes are "
              "missing (terminated codes stay in the file for years).",
              {"value_set": ["present"], "mostly": 1 - settings.max_vanished_share},
              batch="previous"),
        Check("description_changed_share", "warning", _IN_SET, "description_change", None,
              f"At most {settings.max_description_changed_share:.0%} of continuing codes change "
              "their long or short description (whitespace ignored).",
              {"value_set": ["unchanged"], "mostly": 1 - settings.max_description_changed_share}),
    ]


def all_checks(settings: GateSettings, previous_count: int | None) -> list[Check]:
    """The whole suite, in report order; release checks only when there is a previous release."""
    checks = [*RULES[:5], *domain_checks(), *RULES[5:]]
    if previous_count is not None:
        checks += release_checks(settings, previous_count)
    names = [c.name for c in checks]
    assert len(names) == len(set(names)), "check names must be unique"
    return checks


def checks_markdown(settings: GateSettings | None = None) -> str:
    """The whole suite as a Markdown table (the README's copy is generated from this)."""
    rows = [
        "| check | severity | GX expectation | column | applies to | rule |",
        "|---|---|---|---|---|---|",
    ]
    for c in all_checks(settings or GateSettings(), previous_count=0):
        where = {"previous": "previous release's codes"}.get(c.batch, "every code")
        if c.column is None:
            where = "the release"
        if c.when is not None:
            where = f"{c.when[0]} in {{{', '.join(c.when[1])}}}"
        column = f"`{c.column}`" if c.column else "(table)"
        rows.append(f"| `{c.name}` | {c.severity} | {c.expectation} | {column} | {where} "
                    f"| {c.why} |")
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
        expectations.append(cls(**kwargs, meta={"check": c.name, "severity": c.severity},
                                notes=c.why))
    # The constructor, not add_expectation: that compares each new one with all before it.
    return gx.ExpectationSuite(name=name, expectations=expectations)
