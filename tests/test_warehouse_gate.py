"""The warehouse with the gate's domains and results: real 2019 published with its validation,
S2107 decoded in ``code_pages`` as on CMS's code page (../shared/seed), one result row per check."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from contracts.domains import DOMAINS
from contracts.release import ReleaseFile
from expectations.gate import run_gate
from tests.conftest import REAL_RELEASES
from warehouse import history
from warehouse.publish import publish_release

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def con(cms_dir: Path, real_parsed, tmp_path_factory) -> duckdb.DuckDBPyConnection:
    data = tmp_path_factory.mktemp("gate_warehouse")
    parsed = real_parsed["2019-Q1"]
    path = cms_dir / REAL_RELEASES["2019-Q1"][0]
    gate = run_gate(parsed.codes, release_id="2019-Q1")
    file = ReleaseFile("2019-Q1", path.as_uri(),
                       sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
                       member_name=REAL_RELEASES["2019-Q1"][1] or path.name,
                       fetched_at="2026-11-24T00:00:00+00:00")
    publish_release(data, file=file, codes=parsed.codes, rejects=parsed.rejects,
                    validation=gate)
    history.rebuild(data)
    return duckdb.connect(str(data / history.DB_NAME), read_only=True)


def test_s2107_decoded_like_the_cms_code_page(con) -> None:
    row = con.sql(
        """SELECT coverage_code, coverage_code_meaning, pricing_indicators[1],
                  pricing_indicators_meaning[1], multiple_pricing_indicator,
                  multiple_pricing_indicator_meaning, betos, betos_meaning, types_of_service[1],
                  types_of_service_meaning[1], action_code, action_code_meaning
           FROM code_pages WHERE code = 'S2107' AND release_id = '2019-Q1'""").fetchall()
    assert row == [(
        "I", "Not payable by Medicare",
        "00", "Service not separately priced by part B (e.g., services not covered, bundled, "
        "used by part a only, etc.)",
        "9", "Not applicable as HCPCS not priced separately by part B (pricing indicator is 00) "
        "or value is not established (pricing indicator is '99')",
        "Z2", "Undefined codes",
        "9", "Other medical items or services",
        "N", "No maintenance for this code",
    )]
    assert row[0][1] == DOMAINS["coverage_code"].values["I"]


def test_lookup_tables_come_from_the_domains(con) -> None:
    for name, domain in DOMAINS.items():
        rows = con.sql(f"SELECT code, meaning FROM lookup_{name} ORDER BY code").fetchall()
        assert rows == sorted(domain.values.items())
    assert con.sql("SELECT meaning FROM lookup_betos WHERE code = 'O1L'").fetchone() == (
        "Lymphedema compression treatment items (eff 1/1/2024)",)
    comment = con.sql("SELECT comment FROM duckdb_tables() WHERE table_name = "
                      "'lookup_coverage_code'").fetchone()[0]
    assert comment.startswith("Coverage code: the code's Medicare coverage status. Decodes: "
                              "coverage_code. Source: CMS record layout")


def test_validation_results_hold_one_row_per_expectation(con) -> None:
    rows = con.sql(
        """SELECT result->>'name', result->>'severity', (result->>'success')::BOOLEAN,
                  (result->>'unexpected_count')::INT
           FROM validation_results WHERE release_id = '2019-Q1' ORDER BY result_index""").fetchall()
    assert len(rows) == 37  # no previous release published: no comparison with it
    failed = [r for r in rows if not r[2]]
    assert failed == [("action_effective_date_present", "warning", False, 1),
                      ("added_not_after_action_effective", "warning", False, 5)]
    sample = con.sql(
        """SELECT result->'samples'->0->>'code' FROM validation_results
           WHERE result->>'name' = 'action_effective_date_present'""").fetchone()
    assert sample == ("A5513",)
