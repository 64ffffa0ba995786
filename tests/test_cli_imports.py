"""The query commands (``hcpcs code``, ``diff``, ``status``) answer from DuckDB alone: in a fresh
process they never import Polars, numpy, pyarrow, pandas, Prefect or Great Expectations, which
cost a second of a one-row lookup. The data directory is the demo's, built by ``hcpcs run``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

HEAVY = {"polars", "numpy", "pyarrow", "pandas", "prefect", "great_expectations"}
#: Runs the command line in a fresh interpreter, then names the heavy modules it loaded, on the
#: last line of stderr (the exit status is the command's).
PROBE = f"""
import sys
from flows.cli import app
try:
    app(sys.argv[1:], prog_name="hcpcs")
finally:
    print(*sorted({HEAVY!r} & set(sys.modules)), file=sys.stderr)
"""


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory of the nine demo releases, published by a real ``hcpcs run``."""
    tmp = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(tmp / "prefect"), "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    run = subprocess.run([str(Path(sys.executable).with_name("hcpcs")), "run", "--quiet",
                          "--data-dir", str(tmp / "data")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return tmp / "data"


def fresh(data_dir: Path, *args: str) -> str:
    """``hcpcs ARGS --data-dir DATA_DIR`` in a new process: its stdout, once it is known to
    have succeeded without loading any heavy module."""
    out = subprocess.run([sys.executable, "-c", PROBE, *args, "--data-dir", str(data_dir)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr.splitlines()[-1].split() == [], out.stderr
    return out.stdout


def test_code_page_and_history(demo_dir: Path) -> None:
    assert fresh(demo_dir, "code", "e0200").splitlines() == [
        "E0200 in release 2025-Q4",
        "  code                       E0200",
        "  kind                       procedure",
        "  long_description           Heat lamp, without stand (table model), includes bulb, or "
        "infrared element",
        "  short_description          Heat lamp without stand (tab",
        "  pricing_indicators #1      32           Inexpensive & routinely purchased DME (price "
        "subject to floors and ceilings)",
        "  multiple_pricing_indicator A            Not applicable as HCPCS priced under one "
        "methodology",
        "  coverage_code              D            Special coverage instructions apply",
        "  betos                      D1E          Other DME",
        "  types_of_service #1        P            Lump sum purchase of DME, prosthetics, "
        "orthotics",
        "  anesthesia_base_units      0",
        "  added_date                 1984-01-01",
        "  action_effective_date      2025-01-01",
        "  action_code                N            No maintenance for this code",
        "  source_line                60",
        "  line_count                 1",
        "history (one line per version, then the changes that started it):",
        "  v1 (episode 1) in force 1984-01-01 .. 2024-03-31 (from added_date); releases 2024-Q1 "
        ".. 2024-Q1; action N; ended: discontinued",
        "  v2 (episode 1) never in force (from termination_date); releases 2024-Q2 .. 2024-Q4; "
        "action D; ended: changed",
        "      discontinued: termination_date None -> 2024-03-31 (CMS action D)",
        "  v3 (episode 1) in force 2025-01-01 .. now (from action_effective_date); releases "
        "2025-Q1 .. 2025-Q4; action R; latest version",
        "      reactivated: termination_date 2024-03-31 -> None (CMS action R)",
    ]
    doc = json.loads(fresh(demo_dir, "code", "E0200", "--json"))
    assert (doc["page"]["release_id"], doc["page"]["types_of_service_meaning"]) == (
        "2025-Q4", ["Lump sum purchase of DME, prosthetics, orthotics"])
    assert [(h["version"], h["change_type"], h["valid_from_date"]) for h in doc["history"]] == [
        (1, None, "1984-01-01"), (2, "discontinued", "2024-04-01"),
        (3, "reactivated", "2025-01-01")]


def test_diff_between_two_releases(demo_dir: Path) -> None:
    lines = fresh(demo_dir, "diff", "2024-Q2", "2024-Q3r2").splitlines()
    assert lines[0].split() == ["release_id", "code", "change_type", "field", "old_value",
                                "new_value", "action_code", "silent"]
    assert lines[2].split()[:4] == ["2024-Q3r2", "A4216", "long_description_changed",
                                    "long_description"]
    # a long value wraps within its column, on the lines after its row
    assert lines[3].index("diluent/flush") == lines[2].index("Sterile water")
    assert lines[3].split("  ")[-1] == "diluent/flush, 10 ml per unit"
    assert lines[10].split() == ["2024-Q3r2", "S9083", "coverage_code_changed", "coverage_code",
                                 "I", "M", "F", "false"]
    assert lines[-1] == "5 change(s): added 2, coverage_code_changed 1, long_description_changed 2"
    silent = json.loads(fresh(demo_dir, "diff", "2024-Q1", "2025-Q4", "--silent", "--json"))
    assert [(c["release_id"], c["code"], c["change_type"], c["old_value"], c["new_value"])
            for c in silent] == [
        ("2024-Q3r2", "A4216", "long_description_changed",
         "Sterile water, saline and/or dextrose, diluent/flush, 10 ml",
         "Sterile water, saline and/or dextrose, diluent/flush, 10 ml per unit"),
        ("2024-Q4", "L1830", "pricing_indicators_changed", "[38]", "[46]"),
        ("2025-Q2", "E0143", "coverage_code_changed", "D", "C")]


def test_status_of_every_release(demo_dir: Path) -> None:
    lines = fresh(demo_dir, "status").splitlines()
    assert lines[0].split()[:4] == ["release", "codes", "rejects", "added"]
    assert lines[2].split() == ["2024-Q1", "185", *["0"] * 14]
    assert lines[4].split() == ["2024-Q3", "187", "0", "0", "0", "0", "0", "0", "2024-Q3r2"]
    assert lines[11].startswith("last run: ") and "(refresh, " in lines[11]
    doc = json.loads(fresh(demo_dir, "status", "--json"))
    releases = [(r["release_id"], r["code_count"], r["superseded_by"]) for r in doc["releases"]]
    assert releases[1:4] == [
        ("2024-Q2", 186, None), ("2024-Q3", 187, "2024-Q3r2"), ("2024-Q3r2", 188, None)]
    assert list(doc["details"]) == ["findings (record level: published, codes flagged in "
                                    "code_flags)", "repairs (transforms/repairs.csv)",
                                    "TXT vs xlsx differences", "waivers"]
    assert doc["last_run"]["flow"] == "refresh"
