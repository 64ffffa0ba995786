"""The gate on the real CMS releases 2016, 2017 and 2019: zero errors, and exactly the warnings
CMS's own data earns (each one checked against the format notes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.settings import GateSettings
from contracts.validation import BLANK, GateResult, Sample
from expectations.docs import build_data_docs
from expectations.frame import codes_frame
from expectations.gate import run_gate
from expectations.suite import all_checks, derived_columns

pytestmark = pytest.mark.realdata

#: Legacy codes whose action took effect before CMS added them (format notes 3.5 and quirk 12).
_LEGACY = [
    Sample("E0910", "action_effective_date", "19840101 (before added_date 19860101)"),
    Sample("E1050", "action_effective_date", "19840101 (before added_date 19860101)"),
    Sample("S0091", "action_effective_date", "20010701 (before added_date 20020101)"),
    Sample("S0092", "action_effective_date", "20010701 (before added_date 20020101)"),
    Sample("S0093", "action_effective_date", "20010701 (before added_date 20020101)"),
]


@pytest.fixture(scope="module")
def gates(real_parsed) -> dict[str, GateResult]:
    """One gate run per release, each against the release before it (2016 has none)."""
    codes = {rid: parsed.codes for rid, parsed in real_parsed.items()}
    return {
        "2016-Q1": run_gate(codes["2016-Q1"], release_id="2016-Q1"),
        "2017-Q1": run_gate(codes["2017-Q1"], previous=codes["2016-Q1"], release_id="2017-Q1"),
        "2019-Q1": run_gate(codes["2019-Q1"], previous=codes["2017-Q1"], release_id="2019-Q1"),
    }


def _warnings(result: GateResult) -> dict[str, tuple[int | None, tuple[Sample, ...]]]:
    return {w.name: (w.unexpected_count, w.samples) for w in result.warnings}


@pytest.mark.parametrize("release", ["2016-Q1", "2017-Q1", "2019-Q1"])
def test_real_release_passes_with_zero_errors(gates, release: str) -> None:
    result = gates[release]
    assert result.errors == []
    assert result.passed
    assert all(o.severity == "warning" for o in result.outcomes if not o.success)


def test_2016_warnings(gates) -> None:
    assert _warnings(gates["2016-Q1"]) == {"added_not_after_action_effective": (5, tuple(_LEGACY))}


def test_2017_warnings(gates) -> None:
    # L5643: TXT says action effective 19860101, the xlsx 19880101 (= its added date): quirk 7.
    l5643 = Sample("L5643", "action_effective_date", "19860101 (before added_date 19880101)")
    expected = (*_LEGACY[:2], l5643, *_LEGACY[2:])
    assert _warnings(gates["2017-Q1"]) == {
        "added_not_after_action_effective": (6, expected),
        # gone from 2017 though 2016 gave them no termination date
        "vanished_without_termination": (2, (
            Sample("G0298", "short_description", "Hiv combination assay"),
            Sample("G9668", "short_description", "Doc med rsn no stat tx/presc"))),
    }


def test_2019_warnings(gates) -> None:
    assert _warnings(gates["2019-Q1"]) == {
        # A5513 (action B) has a blank action effective date in the TXT: quirk 6.
        "action_effective_date_present": (1, (Sample("A5513", "action_effective_date", BLANK),)),
        "added_not_after_action_effective": (5, tuple(_LEGACY)),
        # CMS removed DA in error and put it back in its 2019 corrections file
        "vanished_without_termination": (
            1, (Sample("DA", "short_description", "Oral health assess, not dent"),)),
    }


def test_release_checks_against_previous(gates) -> None:
    """Real year-on-year movement stays far inside the thresholds, but is counted."""
    drift = gates["2019-Q1"].outcome("code_count_drift")
    assert drift.success and drift.observed == "6,800 codes (previous 6,498, +4.6%)"
    vanished = gates["2019-Q1"].outcome("vanished_codes_share")
    assert (vanished.success, vanished.unexpected_count) == (True, 108)
    assert vanished.element_count == 6498
    # DA: CMS removed the modifier in error in 2019 and put it back in its corrections file.
    assert vanished.samples[0] == Sample("DA", "code", "vanished")
    changed = gates["2019-Q1"].outcome("description_changed_share")
    # element_count is every code; the share is over the 6,390 that existed before (nulls skipped).
    assert (changed.success, changed.unexpected_count, changed.element_count) == (True, 186, 6800)
    assert gates["2017-Q1"].outcome("vanished_codes_share").unexpected_count == 98
    assert gates["2017-Q1"].outcome("description_changed_share").unexpected_count == 170
    assert all(c.name != "code_count_drift" for c in gates["2016-Q1"].outcomes)


def test_description_changes_are_counted_over_continuing_codes_only(real_parsed) -> None:
    """The share's base: the 6,390 codes of 2019 that 2017 had (new codes are null, not
    "unchanged"); whitespace-only rewording is "unchanged"."""
    codes, before = real_parsed["2019-Q1"].codes, real_parsed["2017-Q1"].codes
    derived = derived_columns(all_checks(GateSettings(), before.height), "codes")
    change = codes_frame(codes, derived, before)["description_change"]
    assert change.null_count() == 6800 - 6390
    assert sorted(change.drop_nulls().value_counts().rows()) == [
        ("long_description=changed", 162), ("short_description=changed", 24), ("unchanged", 6204)]


def test_one_result_per_expectation_in_json(gates) -> None:
    result = gates["2019-Q1"]
    doc = json.loads(json.dumps(result.to_dict()))
    checks = all_checks(GateSettings(), 6498, 6800)
    assert [r["name"] for r in doc["results"]] == [c.name for c in checks]
    assert len(doc["results"]) == doc["expectation_count"] == 42
    assert (doc["passed"], doc["blocking_count"], doc["error_count"], doc["warning_count"]) == (
        True, 0, 0, 3)
    assert doc["waivers"] == []
    a5513 = next(r for r in doc["results"] if r["name"] == "action_effective_date_present")
    assert a5513 == {
        "name": "action_effective_date_present", "severity": "warning",
        "expectation": "ExpectColumnValuesToNotBeNull", "column": "action_effective_date",
        "success": False, "unexpected_count": 1, "element_count": 6800, "observed": None,
        "samples": [{"code": "A5513", "field": "action_effective_date", "value": "(blank)"}],
        "description": a5513["description"], "scope": "record", "waived": False,
    }
    assert "A5513" in a5513["description"]


def test_summary_text_lists_rule_severity_count_and_samples(gates) -> None:
    text = gates["2019-Q1"].summary_text()
    lines = text.splitlines()
    assert lines[0] == ("Validation gate 2019-Q1: PASSED - 0 blocking, 0 errors, 3 warnings; "
                        "42 expectations on 6,800 codes (previous release: 6,498)")
    assert lines[2].split() == ["rule", "severity", "result", "count", "sample", "codes"]
    assert lines[3].split()[:6] == ["action_effective_date_present", "warning", "finding", "1",
                                    "A5513", "action_effective_date=(blank)"]
    assert lines[4].split()[:5] == ["added_not_after_action_effective", "warning", "finding",
                                    "5", "E0910"]
    assert lines[5].split()[:5] == ["vanished_without_termination", "warning", "finding", "1",
                                    "DA"]
    assert lines[-1] == "(37 other expectations passed with nothing to report)"
    assert len(gates["2019-Q1"].summary_text(all_rows=True).splitlines()) == 3 + 42


def test_data_docs_written_per_suite_with_analytics_off(gates, tmp_path: Path) -> None:
    """The files only: a page per suite, analytics off in the context. What the pages show with
    no network is read in Chromium by ``tests/test_data_docs_offline.py``."""
    reports = tmp_path / "reports"
    index = build_data_docs([gates["2019-Q1"]], reports)
    assert index == reports / "data_docs" / "index.html" and index.exists()
    pages = sorted(p.relative_to(reports / "data_docs").parts[:3]
                   for p in (reports / "data_docs" / "validations").rglob("*.html"))
    assert pages == [("validations", "hcpcs_codes", "2019-Q1"),
                     ("validations", "hcpcs_previous_release", "2019-Q1"),
                     ("validations", "hcpcs_rejects", "2019-Q1")]
    page = next((reports / "data_docs" / "validations" / "hcpcs_codes").rglob("*.html"))
    assert "added_after_action_effective" in page.read_text()  # a derived column's section
    assert "analytics_enabled: false" in (reports / "gx" / "great_expectations.yml").read_text()


def test_quick_first_gives_the_same_outcomes_as_full_results(gates, real_parsed) -> None:
    """Counting only what failed (the default) reports exactly what counting everything does."""
    full = run_gate(real_parsed["2019-Q1"].codes, previous=real_parsed["2017-Q1"].codes,
                    settings=GateSettings(quick_first=False), release_id="2019-Q1")
    assert full.outcomes == gates["2019-Q1"].outcomes
    sizes = {n: gates["2019-Q1"].outcome(n).element_count for n in (
        "code_unique", "procedure_code_format", "modifier_code_format",
        "discontinued_has_termination_date", "vanished_codes_share")}
    assert sizes == {"code_unique": 6800, "procedure_code_format": 6440,
                     "modifier_code_format": 360, "discontinued_has_termination_date": 49,
                     "vanished_codes_share": 6498}
