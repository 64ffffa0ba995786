"""Without ../shared the real-data tests skip with one loud summary line; under ``CI=true`` they
fail: CI has ../shared beside the clone, so a skip there would hide them.

Each case runs pytest on a real-data test file in a child process, with ``HCPCS_CMS_DIR``
naming a folder that does not exist.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, shared_file

REAL_DATA_FILE = "tests/test_parser_real.py"


def _pytest(tmp_path: Path, *, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["HCPCS_CMS_DIR"] = str(tmp_path / "no-shared" / "cms")
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", REAL_DATA_FILE],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _collected(tmp_path: Path) -> int:
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only",
                          "-p", "no:cacheprovider", REAL_DATA_FILE],
                         cwd=ROOT, capture_output=True, text=True, timeout=300).stdout
    return int(re.search(r"(\d+) tests? collected", out).group(1))


def test_without_shared_real_data_tests_skip_with_one_loud_line(tmp_path: Path) -> None:
    run = _pytest(tmp_path, ci=False)
    assert run.returncode == 0, run.stdout
    total = _collected(tmp_path)
    loud = [line for line in run.stdout.splitlines() if "real-data tests SKIPPED" in line]
    assert len(loud) == 1, run.stdout
    assert loud[0].startswith("!") and loud[0].endswith("!")
    assert (f" {total} real-data tests SKIPPED: ../shared is missing "
            f"({tmp_path / 'no-shared' / 'cms'}); put the shared folder beside the clone or set "
            "HCPCS_CMS_DIR ") in loud[0]
    listed = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    assert listed == [f"SKIPPED [{total}] tests/conftest.py:{shared_file.__code__.co_firstlineno}: "
                      "../shared is missing: real CMS releases (set HCPCS_CMS_DIR) not found at "
                      f"{tmp_path / 'no-shared' / 'cms' / 'SOURCES.md'}"], run.stdout
    assert run.stdout.splitlines()[-1].startswith(f"{total} skipped")


def test_under_ci_a_missing_shared_folder_fails_the_run(tmp_path: Path) -> None:
    run = _pytest(tmp_path, ci=True)
    assert run.returncode == 1, run.stdout
    total = _collected(tmp_path)
    assert re.search(rf"\b{total} errors?\b", run.stdout), run.stdout[-2000:]
    assert ("CI=true and real CMS releases (set HCPCS_CMS_DIR) not found at "
            f"{tmp_path / 'no-shared' / 'cms' / 'SOURCES.md'}") in run.stdout
    assert "skipped" not in run.stdout.splitlines()[-1]
