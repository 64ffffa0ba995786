"""The command line outside the flows: fast help, validate's verdicts, clear usage errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from contracts.layout import FIELDS
from flows.cli import _table_lines, app
from tests.conftest import real_txt

runner = CliRunner()
COMMANDS = ("parse", "validate", "run", "backfill", "status", "diff", "code", "accept", "doctor",
            "serve")


def test_help_lists_every_command_without_heavy_imports() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.stdout
    probe = (
        "import sys; from flows.cli import app; "
        "heavy = {'prefect', 'great_expectations', 'polars', 'duckdb', 'pandas'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    assert loaded.stdout.strip() == "[]"


def test_text_tables_align_numbers_wrap_long_text_and_leave_nulls_blank() -> None:
    rows = [{"release": "2024-Q1", "codes": 185, "silent": True, "new_value": None},
            {"release": "2024-Q3r2", "codes": 7, "silent": False, "new_value": "Sterile water, "
             "saline and/or dextrose, diluent/flush, 10 ml per unit, for a longer text"}]
    columns = ["release", "codes", "silent", "new_value"]
    assert _table_lines(rows, columns, {"new_value": "new value"}) == [
        "release    codes  silent  new value",
        "---------  -----  ------  --------------------------------------",
        "2024-Q1      185  true",
        "2024-Q3r2      7  false   Sterile water, saline and/or dextrose,",
        "                          diluent/flush, 10 ml per unit,…",
    ]
    assert _table_lines([], ["release", "codes"]) == ["release  codes", "-------  -----"]


def with_coverage(data: bytes, code: str, coverage: str) -> bytes:
    """The fixed-width text with ``code``'s coverage code replaced."""
    column = FIELDS["coverage_code"].start - 1
    lines = data.split(b"\n")
    hit = [n for n, line in enumerate(lines) if line[:5] == code.encode() and line[10:11] == b"3"]
    assert len(hit) == 1
    line = lines[hit[0]]
    lines[hit[0]] = line[:column] + coverage.encode() + line[column + 1:]
    return b"\n".join(lines)


def with_code_twice(data: bytes, code: str) -> bytes:
    """The file with ``code``'s record lines written again at its end."""
    lines = b"".join(line for line in data.splitlines(keepends=True)
                     if line.startswith(code.encode()))
    return data + lines


def test_validate_real_release_and_a_corrupted_copy(cms_dir: Path, tmp_path: Path) -> None:
    good = tmp_path / "HCPC2019_CONTR_ANWEB.txt"
    good.write_bytes(real_txt(cms_dir, "2019-Q1"))
    previous = tmp_path / "HCPC17_CONTR_ANWEB.txt"
    previous.write_bytes(real_txt(cms_dir, "2017-Q1"))
    result = runner.invoke(app, ["validate", str(good), "--previous", str(previous)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        "Validation gate 2019-Q1: PASSED - 0 blocking, 0 errors, 3 warnings; 42 expectations on "
        "6,800 codes (previous release: 6,498)"
    )
    assert "A5513 action_effective_date=(blank)" in result.stdout

    # one code's value outside its domain: a record-level finding, the release would publish
    bad = tmp_path / "HCPC2019_bad_ANWEB.txt"
    bad.write_bytes(with_coverage(good.read_bytes(), "S2107", "Z"))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 0
    assert "PASSED - 0 blocking, 1 errors" in result.stdout
    row = next(line for line in result.stdout.splitlines()
               if line.startswith("coverage_code_in_domain"))
    assert row.split()[:4] == ["coverage_code_in_domain", "error", "finding", "1"]
    assert "S2107 coverage_code=Z" in row

    # a code twice: release-level, the release would be refused
    twice = tmp_path / "HCPC2019_twice_ANWEB.txt"
    twice.write_bytes(with_code_twice(good.read_bytes(), "S2107"))
    result = runner.invoke(app, ["validate", str(twice), "--json"])
    assert result.exit_code == 1
    assert '"passed": false' in result.stdout
    text = runner.invoke(app, ["validate", str(twice)]).stdout
    assert "FAILED - 1 blocking, 1 errors" in text
    row = next(line for line in text.splitlines() if line.startswith("code_unique"))
    assert row.split()[:5] == ["code_unique", "error", "BLOCK", "2", "S2107"]


def test_usage_errors_are_one_clear_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    result = runner.invoke(app, ["validate", str(junk)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {junk}: not a readable ZIP archive")
    text = tmp_path / "notes.txt"
    text.write_text("no records here\n")
    for command in (["parse", str(text), "--out", str(tmp_path / "x.parquet")],
                    ["validate", str(text)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert result.stderr == (
            f"error: {text}: no HCPCS record found (not a CMS Alpha-Numeric release?)\n"
        )
    assert not (tmp_path / "x.parquet").exists()
    result = runner.invoke(app, ["status", "--data-dir", str(tmp_path / "none")])
    assert result.exit_code == 2
    assert "no database yet; run `hcpcs run`" in result.stderr
    result = runner.invoke(app, ["backfill", "--first", "2019-Q5", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "2019-Q5" in result.stderr


def test_progress_bars_show_releases_and_bytes() -> None:
    import io

    from rich.console import Console

    from flows.progress import RichReporter, reporter, reporting

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with reporting(RichReporter(console)) as bars:
        assert reporter() is bars
        bars.releases(2, "fetching")
        bars.release("2019-Q1", "downloading")
        bars.download(1024 * 1024, None)  # a server that does not announce the size
        bars.download(2 * 1024 * 1024, 4 * 1024 * 1024)
        bars.advance()
    shown = out.getvalue()  # every frame drawn, the last one when the run closed the bars
    assert "fetching: 2019-Q1 downloading" in shown
    assert "1/2" in shown and "2.0/4.0 MB" in shown
    assert type(reporter()).__name__ == "Reporter"  # silent again after the run
