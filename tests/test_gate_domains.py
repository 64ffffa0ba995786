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
from contracts.validation import GateResult, Sample
from expectations.gate import run_gate
from expectations.suite import all_checks
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
