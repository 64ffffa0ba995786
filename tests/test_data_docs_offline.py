"""The GX Data Docs of a real gate run, read in headless Chromium with no network.

Each page asks CDNs for its CSS and JavaScript; here every request that is not ``file://`` is
aborted, as on a machine offline, and the test reads what a person would see: each suite's
verdict and counts, a section for every column the suite checks with one row per expectation,
and under each failed expectation its count of unexpected values and the failing codes.

Each row shows its check as ``<name> (<severity>): <rule>`` (the expectation's ``description``,
set by ``expectations.suite.build_suite``). What the pages lose offline: the pass/fail mark of each
row (a Font Awesome icon, whose font comes from a CDN) and the "Failed Only" filter (jQuery). So the
verdict of a passing expectation is visible only in the suite's counts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from contracts.validation import ExpectationOutcome, GateResult
from expectations.docs import build_data_docs
from expectations.gate import run_gate

pytestmark = pytest.mark.realdata

SUITES = ("hcpcs_codes", "hcpcs_previous_release", "hcpcs_rejects")


@pytest.fixture(scope="module")
def gate_2019(real_parsed) -> GateResult:
    """2019-Q1 against 2017-Q1: three warnings (two on the codes, one on the codes gone)."""
    return run_gate(real_parsed["2019-Q1"].codes, previous=real_parsed["2017-Q1"].codes,
                    release_id="2019-Q1")


def by_suite(gate: GateResult) -> dict[str, list[ExpectationOutcome]]:
    """The gate's outcomes, grouped by the GX suite (one Data Docs page each) that ran them."""
    suite_of = {r.expectation_config.meta["check"]: v.suite_name
                for v in gate.gx_results for r in v.results}
    grouped: dict[str, list[ExpectationOutcome]] = {}
    for outcome in gate.outcomes:
        grouped.setdefault(suite_of[outcome.name], []).append(outcome)
    return grouped


def read_offline(chromium, page_path: Path) -> tuple[object, list[str]]:
    """``page_path`` opened with every request that is not ``file://`` aborted: (the page, the
    URLs it was refused)."""
    page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
    refused: list[str] = []

    def only_files(route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_files)
    page.goto(page_path.as_uri())
    return page, refused


@pytest.mark.parametrize("suite", SUITES)
def test_data_docs_offline_show_each_suite_verdict_and_each_failure(
    browser,
    gate_2019: GateResult,
    tmp_path: Path,
    suite: str,
) -> None:
    build_data_docs([gate_2019], tmp_path / "reports")
    [page_path] = (tmp_path / "reports" / "data_docs" / "validations" / suite).rglob("*.html")
    page, refused = read_offline(browser, page_path)
    try:
        assert refused and all(u.startswith("https://") for u in refused)  # the CDNs, cut off
        outcomes = by_suite(gate_2019)[suite]
        failed = [o for o in outcomes if not o.success]
        text = " ".join(page.inner_text("body").split())
        verdict = "Failed" if failed else "Succeeded"
        assert f"Expectation Suite: {suite} Data asset: None Status: {verdict}" in text
        assert (f"Evaluated Expectations {len(outcomes)} Successful Expectations "
                f"{len(outcomes) - len(failed)} Unsuccessful Expectations {len(failed)}") in text
        # one section per column checked (table-level checks have their own), one row per check
        headings = page.locator("div.ge-section h5").all_inner_texts()
        assert headings[0] == "Overview"
        assert sorted(headings[1:]) == sorted(
            {o.column or "Table-Level Expectations" for o in outcomes})
        rows = page.locator('table.table:has(th:text-is("Status")) > tbody > tr')
        assert rows.count() == len(outcomes)
        shown_checks = [" ".join(t.split()) for t in rows.all_inner_texts()]
        for o in outcomes:  # every check by name, severity and rule, in a row of its own
            named = f"{o.name} ({o.severity}): {' '.join(o.description.split())}"
            assert sum(named in row for row in shown_checks) == 1, named
        for o in failed:  # under its column: how many codes failed, of how many, and which
            section = page.locator("div.ge-section").filter(
                has=page.locator("h5", has_text=re.compile(rf"^\s*{o.column}\s*$")))
            shown = " ".join(section.inner_text().split())
            assert f"{o.unexpected_count} unexpected values found." in shown, o.name
            assert f"of {o.element_count} total rows." in shown, o.name
            assert all(s.code in shown for s in o.samples), o.name
    finally:
        page.context.close()
