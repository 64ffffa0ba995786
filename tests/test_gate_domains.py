"""Code domains as data, the suite derived from them, and the gate on a small synthetic release
(every rule the real releases never trip: repeating groups, modifiers, linking rules)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from contracts.domains import DOMAINS
from contracts.layout import CODES_SCHEMA, domain_columns
from contracts.settings import GateSettings
from contracts.validation import BLANK, GateResult, Sample
from expectations.frame import (
    PREVIOUS,
    collapsed,
    date_order,
    first_value_on_modifier,
    previous_frame,
    unparsed,
)
from expectations.frame import codes_frame as gx_frame
from expectations.gate import run_gate
from expectations.suite import (
    Check,
    _asc_shifted,
    _check,
    _revision_removals,
    all_checks,
    build_suite,
)
from expectations.vanished import vanished_without_termination
from tests.warehouse_synth import D, codes_frame

ROOT = Path(__file__).resolve().parents[1]


def test_domains_hold_the_layout_codes_with_cms_wording() -> None:
    assert list(DOMAINS) == [
        "record_id", "action_code", "coverage_code", "pricing_indicator",
        "multiple_pricing_indicator", "lab_certification", "type_of_service", "betos", "asc_group",
    ]
    assert DOMAINS["coverage_code"].values["I"] == "Not payable by Medicare"
    assert DOMAINS["pricing_indicator"].values["40"] == (
        "Lymphedema Compression Treatment Items (eff 1/1/2024)")
    assert DOMAINS["betos"].values["O1L"].startswith("Lymphedema compression")
    assert "01L" not in DOMAINS["betos"].values  # the digit-zero misprint of one transcription
    assert DOMAINS["betos"].values["Z2"] == "Undefined codes"
    assert DOMAINS["type_of_service"].values["9"] == "Other medical items or services"
    assert DOMAINS["action_code"].values["N"] == "No maintenance for this code"
    assert list(DOMAINS["record_id"].values) == ["3", "4", "7", "8"]
    sizes = {name: len(d.values) for name, d in DOMAINS.items()}
    assert sizes == {"record_id": 4, "action_code": 10, "coverage_code": 5,
                     "pricing_indicator": 26, "multiple_pricing_indicator": 8,
                     "lab_certification": 31, "type_of_service": 34, "betos": 107, "asc_group": 1}


def test_every_domain_decodes_real_columns() -> None:
    for name, d in DOMAINS.items():
        assert all(c in CODES_SCHEMA for c in domain_columns(name))
        assert d.obsolete <= set(d.values)
    assert domain_columns("record_id") == ()  # the parser turns it into kind
    assert domain_columns("type_of_service") == ("types_of_service",)


def test_suite_is_derived_from_the_domains() -> None:
    checks = {c.name: c for c in all_checks(GateSettings(), previous_count=None)}
    for name, d in DOMAINS.items():
        for col in domain_columns(name):
            check = checks[f"{col}_in_domain"]
            assert check.severity == "error"
            if check.expectation == "ExpectColumnValuesToBeInSet":
                assert check.kwargs["value_set"] == list(d.values)
    assert len(checks) == 37
    assert "code_count_drift" not in checks
    assert [n for n, c in checks.items() if c.scope == "release"] == [
        "release_has_codes", "code_unique", "rejects_within_limit", "rejected_codes_missing"]


def test_importing_the_gate_does_not_import_great_expectations() -> None:
    code = ("import sys, contracts.domains, expectations.suite, expectations.gate, "
            "expectations.docs; print('great_expectations' in sys.modules, "
            "'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.fixture(scope="module")
def synthetic() -> GateResult:
    """One clean code of each kind plus one code per defect the real releases never show."""
    blank_modifier = {"pricing_indicators": [], "multiple_pricing_indicator": None,
                      "betos": None, "types_of_service": [],
                      "anesthesia_base_units": None}
    rows = [
        {"code": "A0001"},
        {"code": "A1", **blank_modifier},
        {"code": "A0002", "types_of_service": ["9", "X"]},
        {"code": "A0003", "types_of_service": ["1", None, "B"]},
        {"code": "A0004", "lab_certifications": [None, "999"]},
        {"code": "A2", **blank_modifier, "betos": "Z2"},
        {"code": "A0005", "action_code": "D"},
        {"code": "A0006", "multiple_pricing_indicator": "E",
         "pricing_indicators": ["11"]},
        {"code": "A0007", "termination_date": D(1999, 12, 31)},
        {"code": "A0008", "unparsed_values": [{"field": "anesthesia_base_units", "value": "x1"},
                                              {"field": "filler_294", "value": "junk"}]},
        {"code": "V0009", "short_description": "x" * 29},
        {"code": "AAAAA"},
    ]
    return run_gate(codes_frame(rows), release_id="synthetic")


def test_synthetic_findings(synthetic: GateResult) -> None:
    found = {o.name: (o.severity, o.unexpected_count, o.samples)
             for o in synthetic.outcomes if not o.success}
    assert found == {
        "procedure_code_format": ("error", 1, (Sample("AAAAA", "code", "AAAAA"),)),
        "types_of_service_in_domain": ("error", 1, (Sample("A0002", "types_of_service[2]", "X"),)),
        "types_of_service_not_obsolete": (
            "warning", 1, (Sample("A0003", "types_of_service[3]", "B"),)),
        "lab_certifications_in_domain": (
            "error", 1, (Sample("A0004", "lab_certifications[2]", "999"),)),
        "modifier_without_procedure_values": ("error", 1, (Sample("A2", "betos", "Z2"),)),
        "discontinued_has_termination_date": (
            "warning", 1, (Sample("A0005", "termination_date", "(blank)"),)),
        "multiple_pricing_indicator_not_obsolete": (
            "warning", 1, (Sample("A0006", "multiple_pricing_indicator", "E"),)),
        "termination_not_before_added": ("warning", 1, (Sample(
            "A0007", "termination_date", "19991231 (before added_date 20000101)"),)),
        "numbers_valid": ("error", 1, (Sample("A0008", "anesthesia_base_units", "x1"),)),
        "fillers_blank": ("error", 1, (Sample("A0008", "filler_294", "junk"),)),
        "short_description_max_28": ("error", 1, (Sample("V0009", "short_description", "x" * 29),)),
    }
    assert synthetic.passed and synthetic.blocking == []  # every finding is one code's
    assert [e.name for e in synthetic.errors][:2] == ["procedure_code_format",
                                                      "lab_certifications_in_domain"]
    assert len(synthetic.findings()) == len(found)  # one failing code each


def test_an_empty_release_fails() -> None:
    """A file that parses to no codes at all (wrong member, truncated) must not be published."""
    result = run_gate(pl.DataFrame(schema=CODES_SCHEMA), release_id="empty")
    assert [(e.name, e.observed, e.samples) for e in result.errors] == [
        ("release_has_codes", "0 codes", (Sample(None, "code_count", "0 codes"),))]
    assert result.warnings == []


# The rule table (``RULES``) is built once, when ``expectations.suite`` is imported; the builders
# below are called here on frames whose answer is known, so a wrong builder fails a test of its own
# (``make mutants`` showed that nothing else would: docs/mutants.md).
_UNPARSED = pl.List(pl.Struct({"field": pl.String, "value": pl.String}))


def _eval(expr: pl.Expr, **columns: pl.Series | list) -> list:
    return pl.DataFrame(columns).with_columns(expr.alias("out"))["out"].to_list()


def test_the_rule_shorthand_fills_field_scope_when_and_derive() -> None:
    derive = pl.lit("x")
    made = _check("a_rule", "warning", "ExpectX", "col", "Why.", regex="r", when=("kind", ("m",)),
                  derive=derive, scope="release")
    assert made == Check("a_rule", "warning", "ExpectX", "col", "col", "Why.", {"regex": "r"},
                         ("kind", ("m",)), scope="release")
    assert made.derive is derive and made.batch == "codes"
    plain = _check("b_rule", "error", "ExpectY", "col", "Why not.", field=None)
    assert (plain.field, plain.kwargs, plain.when, plain.derive, plain.scope) == (
        None, {}, None, None, "record")
    assert _check("c", "error", "E", "col", "w", field="other").field == "other"


def test_asc_shifted_names_a_two_digit_group_beside_a_six_digit_raw_date() -> None:
    raw = [
        [{"field": "asc_effective_date", "value": "201801"}],  # the 2018 shift
        [{"field": "asc_effective_date", "value": "201801"}],  # but the group is not 2 digits
        [{"field": "asc_effective_date", "value": "20180101"}],  # eight digits: not the shift
        [{"field": "mog_effective_date", "value": "201801"}],  # another field's raw text
        [],
    ]
    got = _eval(_asc_shifted(), asc_group=["12", "1", "12", "12", "12"],
                unparsed_values=pl.Series(raw, dtype=_UNPARSED))
    assert got == ["asc_group=12", None, None, None, None]


def test_unparsed_names_the_first_raw_value_of_the_fields_asked_for() -> None:
    raw = [
        [{"field": "statute", "value": "s"}, {"field": "pricing_indicators[2]", "value": "9X"},
         {"field": "betos", "value": "??"}],
        [{"field": "statute", "value": "s"}],
        [],
    ]
    got = _eval(unparsed(["pricing_indicators", "betos"]),
                unparsed_values=pl.Series(raw, dtype=_UNPARSED))
    assert got == ["pricing_indicators[2]=9X", None, None]


def test_first_value_on_modifier_names_the_first_procedure_only_value() -> None:
    got = _eval(first_value_on_modifier(["pricing_indicators", "coverage_code"]),
                kind=["modifier", "modifier", "modifier", "procedure"],
                pricing_indicators=[[None, "11"], [], [], ["11"]],
                coverage_code=["C", "D", None, "C"])
    assert got == ["pricing_indicators[2]=11", "coverage_code=D", None, None]


def test_date_order_names_a_date_before_the_one_it_follows() -> None:
    got = _eval(date_order("termination_date", "added_date"),
                termination_date=[D(2019, 1, 31), D(2020, 1, 1), D(2021, 1, 1), None],
                added_date=[D(2020, 1, 1)] * 4)
    assert got == ["termination_date=20190131 (before added_date 20200101)", None, None, None]


def test_collapsed_compares_descriptions_by_their_words() -> None:
    got = _eval(collapsed("d"), d=[" a \t b\n c  ", "a b c", None])
    assert got == ["a b c", "a b c", None]


def test_vanished_without_termination_lists_only_unterminated_codes_gone() -> None:
    previous = codes_frame([
        {"code": "A0001", "short_description": "gone, never ended"},
        {"code": "A0002", "termination_date": D(2019, 12, 31)},  # gone, but terminated
        {"code": "A0003"},  # still there
        {"code": "AA", "kind": "modifier", "short_description": "gone too"},
    ])
    got = vanished_without_termination(codes_frame([{"code": "A0003"}]), previous)
    assert got.columns == ["code", "kind", "long_description", "short_description", "added_date"]
    assert got.select("code", "kind", "short_description").rows() == [
        ("AA", "modifier", "gone too"), ("A0001", "procedure", "gone, never ended")]
    assert got["added_date"].to_list() == previous.filter(
        pl.col("code").is_in(["AA", "A0001"]))["added_date"].to_list()


@pytest.mark.parametrize(
    ("limit", "previous_count", "mostly"),
    [(5, 100, 1 - 5.5 / 100), (0, 40, 1 - 0.5 / 40), (5, 3, 0.0), (5, 0, 0.0)],
)
def test_a_revision_may_lose_exactly_its_limit_of_codes(limit, previous_count, mostly) -> None:
    settings = GateSettings(max_revision_removed_codes=limit)
    check = _revision_removals(settings, previous_count, revision=True)
    assert (check.name, check.scope, check.batch) == (
        "revision_removes_codes", "release", "previous")
    assert check.kwargs == {"mostly": pytest.approx(mostly)}
    assert f"lacks at most {limit} codes" in check.why
    previous = pl.DataFrame({"present": [False, False, True],
                             "termination_date": [None, None, None],
                             "short_description": ["Gone", None, "Kept"]},
                            schema_overrides={"termination_date": pl.Date})
    assert _eval(check.derive, **previous.to_dict()) == [
        "short_description=Gone", f"short_description={BLANK}", None]
    other_quarter = _revision_removals(settings, previous_count, revision=False).derive
    assert _eval(other_quarter, **previous.to_dict()) == [None, None, None]


def test_previous_frame_keeps_the_previous_order_and_says_what_is_still_there() -> None:
    previous = codes_frame([{"code": c} for c in ("A0009", "A0001", "A0005", "AA")])
    codes = codes_frame([{"code": c} for c in ("A0005", "AA", "A0002")])
    got = previous_frame(codes, previous, {"gone": ~pl.col("present")})
    assert got.rows() == [("AA", False), ("A0001", True), ("A0005", False), ("A0009", True)]
    assert got.columns == ["code", "gone"]


def test_codes_frame_gives_gx_dates_as_cms_wrote_them_and_one_previous_record_per_code() -> None:
    codes = codes_frame([{"code": "A0001", "added_date": D(2020, 1, 31)}])
    previous = pl.concat([codes_frame([{"code": "A0001", "short_description": "first"}]),
                          codes_frame([{"code": "A0001", "short_description": "second"}])])
    frame = gx_frame(codes, {"was": pl.col(f"{PREVIOUS}short_description")}, previous)
    assert frame["added_date"].to_list() == ["20200131"]
    assert frame["was"].to_list() == ["first"]
    with pytest.raises(ValueError, match=r"^codes frame lacks columns \['kind'\] \(expected "):
        gx_frame(codes.drop("kind"), {})


def test_each_gx_expectation_carries_its_check_name_severity_and_rule() -> None:
    checks = all_checks(GateSettings(), previous_count=None)
    suite = build_suite("codes", checks)
    assert [e.description for e in suite.expectations] == [
        f"{c.name} ({c.severity}): {c.why}" for c in checks]
