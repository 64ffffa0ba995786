"""Corrupted copies of the real 2019 release: each corruption produces exactly its finding, and
exactly the verdict the finding policy gives it.

Field-level damage (a shifted field, an impossible date) is done on the fixed-width bytes and
re-parsed, as it would arrive from CMS; the rest is done on the parsed frame. A finding is an
expectation whose outcome differs from the clean release's (which has two CMS warnings of its own).
Record-level damage (one code's values) is kept per code and publishes; release-level damage (no
codes, garbage lines, duplicates, a collapse in count, mass disappearance) is refused.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from contracts.layout import FIELDS
from contracts.settings import GateSettings
from contracts.validation import GateResult, Sample
from expectations.gate import run_gate
from tests.conftest import real_txt
from transforms import parse_anweb

pytestmark = pytest.mark.realdata

Finding = tuple[str, int | None, tuple[Sample, ...]]


@pytest.fixture(scope="module")
def codes(real_parsed) -> pl.DataFrame:
    return real_parsed["2019-Q1"].codes


@pytest.fixture(scope="module")
def clean(codes: pl.DataFrame) -> GateResult:
    return run_gate(codes, release_id="2019-Q1")


def findings(result: GateResult, clean: GateResult) -> dict[str, Finding]:
    """Expectations whose outcome changed from the clean release's (or failed, when the clean
    run did not have them: the release-level checks)."""
    before = {o.name: (o.success, o.unexpected_count) for o in clean.outcomes}
    return {
        o.name: (o.severity, o.unexpected_count, o.samples)
        for o in result.outcomes
        if before.get(o.name, (True, o.unexpected_count)) != (o.success, o.unexpected_count)
    }


def overwrite(data: bytes, code: str, column: int, text: str) -> bytes:
    """The file with ``text`` written over the first record line of ``code`` from ``column``
    (1-based, as in the CMS layout)."""
    start = data.index(b"\n" + code.rjust(5).encode() + b"00100") + 1
    pos = start + column - 1
    return data[:pos] + text.encode() + data[pos + len(text):]


def with_value(codes: pl.DataFrame, code: str, column: str, value: str) -> pl.DataFrame:
    """The frame with ``column`` of ``code`` set to ``value``."""
    hit = pl.col("code") == code
    return codes.with_columns(pl.when(hit).then(pl.lit(value)).otherwise(column).alias(column))


def reparse(data: bytes) -> pl.DataFrame:
    parsed = parse_anweb(data)
    assert parsed.rejects.height == 0  # the damage is in the fields, not the record structure
    return parsed.codes


def test_coverage_code_outside_domain(codes, clean) -> None:
    result = run_gate(with_value(codes, "S2107", "coverage_code", "X"), release_id="2019-Q1")
    assert findings(result, clean) == {
        "coverage_code_in_domain": ("error", 1, (Sample("S2107", "coverage_code", "X"),)),
    }
    assert result.passed  # one code's value: a finding, never a refusal
    assert ("coverage_code_in_domain", "error", "S2107", "coverage_code", "X") in (
        result.findings())


def test_duplicated_code(codes, clean) -> None:
    bad = pl.concat([codes, codes.filter(pl.col("code") == "S2107")])
    result = run_gate(bad, release_id="2019-Q1")
    assert findings(result, clean) == {
        "code_unique": ("error", 2, (Sample("S2107", "code", "S2107"),)),
    }
    assert not result.passed
    assert [o.name for o in result.blocking] == ["code_unique"]


def test_shifted_field(cms_dir: Path, clean) -> None:
    """CMS's 2018 quirk on a 2019 code: the ASC date written from column 231 instead of 233,
    so the ASC group reads "20" and the date field keeps only "080101"."""
    asc = FIELDS["asc_group"]
    data = overwrite(real_txt(cms_dir, "2019-Q1"), "A9527", asc.start, "20080101  ")
    result = run_gate(reparse(data), release_id="2019-Q1")
    assert findings(result, clean) == {
        "asc_group_in_domain": ("error", 1, (Sample("A9527", "asc_group", "20"),)),
        "asc_fields_shifted": ("error", 1, (Sample("A9527", "asc_group", "20"),)),
        "dates_valid": ("error", 1, (Sample("A9527", "asc_effective_date", "080101"),)),
    }
    assert result.passed
    assert [f for f in result.findings() if f[2] == "A9527"] == [
        ("asc_group_in_domain", "error", "A9527", "asc_group", "20"),
        ("dates_valid", "error", "A9527", "asc_effective_date", "080101"),
        ("asc_fields_shifted", "error", "A9527", "asc_group", "20"),
    ]


def test_impossible_date(cms_dir: Path, clean) -> None:
    data = overwrite(real_txt(cms_dir, "2019-Q1"), "S2107", FIELDS["added_date"].start, "20020231")
    result = run_gate(reparse(data), release_id="2019-Q1")
    assert findings(result, clean) == {
        "dates_valid": ("error", 1, (Sample("S2107", "added_date", "20020231"),)),
    }
    assert result.passed


def test_pricing_00_with_multiple_pricing_a_is_a_warning(codes, clean) -> None:
    """CMS itself did this (J3290, Oct 2025), so it is recorded but does not stop publishing."""
    bad = with_value(codes, "S2107", "multiple_pricing_indicator", "A")
    result = run_gate(bad, release_id="2019-Q1")
    assert findings(result, clean) == {
        "pricing_00_99_means_multiple_pricing_9": (
            "warning", 1, (Sample("S2107", "multiple_pricing_indicator", "A"),)),
    }
    assert result.passed


@pytest.fixture(scope="module")
def dropped(codes: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """2019 without 30% of its codes (rows 0-2 of every 10), and the removed codes."""
    idx = pl.int_range(pl.len()) % 10
    return codes.filter(idx >= 3), codes.filter(idx < 3)


def test_thirty_percent_drop_in_codes(codes, clean, dropped) -> None:
    kept, removed = dropped
    assert (kept.height, removed.height) == (4760, 2040)
    result = run_gate(kept, previous=codes, release_id="2019-Q1")
    count = "4,760 codes (previous 6,800, -30.0%)"
    vanished = tuple(Sample(c, "code", "vanished") for c in removed["code"].head(10))
    # The per-code warnings move with the codes removed (E0910 is gone), so compare verdicts:
    # exactly two errors, and no kind of warning the clean release did not have but the codes
    # gone without a termination date (1,889 of the 2,040; not a revision: no error for them).
    assert {e.name: (e.severity, e.unexpected_count, e.samples) for e in result.errors} == {
        "code_count_drift": ("error", None, (Sample(None, "code_count", count),)),
        "vanished_codes_share": ("error", 2040, vanished),
    }
    assert [w.name for w in result.warnings] == [
        *(w.name for w in clean.warnings), "vanished_without_termination"]
    assert result.outcome("vanished_without_termination").unexpected_count == 1889
    assert result.outcome("revision_removes_codes").unexpected_count == 0
    assert result.outcome("code_count_drift").observed == count
    assert result.outcome("description_changed_share").unexpected_count == 0
    assert not result.passed
    assert [o.name for o in result.blocking] == ["code_count_drift", "vanished_codes_share"]


def _with_garbage(data: bytes, lines: int) -> bytes:
    """The file with ``lines`` lines of text that are not records appended."""
    return data + b"".join(b"this line is not a record %05d\r\n" % i for i in range(lines))


@pytest.mark.parametrize(("lines", "refused"), [(68, False), (69, True)])
def test_unreadable_lines_beyond_one_percent_refuse_the_release(cms_dir: Path, clean, lines,
                                                                refused) -> None:
    """1% of 6,800 codes is 68 lines: the 69th unreadable line refuses the file."""
    parsed = parse_anweb(_with_garbage(real_txt(cms_dir, "2019-Q1"), lines))
    assert (parsed.codes.height, parsed.rejects.height) == (6800, lines)
    result = run_gate(parsed.codes, rejects=parsed.rejects, release_id="2019-Q1")
    outcome = result.outcome("rejects_within_limit")
    assert outcome.observed == f"{lines} rejected lines"
    assert (result.passed, outcome.blocks) == (not refused, refused)


def test_a_file_of_garbage_is_refused() -> None:
    """With no record at all, every line is text before the first record (a preamble)."""
    parsed = parse_anweb(_with_garbage(b"", 500))
    assert (parsed.codes.height, parsed.preamble.height) == (0, 500)
    result = run_gate(parsed.codes, rejects=parsed.rejects, release_id="2019-Q1")
    assert [o.name for o in result.blocking] == ["release_has_codes"]


def test_thresholds_are_settings(codes, dropped) -> None:
    lenient = GateSettings(max_code_count_drift=0.35, max_vanished_share=0.35)
    result = run_gate(dropped[0], previous=codes, settings=lenient, release_id="2019-Q1")
    assert result.passed
    assert result.outcome("vanished_codes_share").unexpected_count == 2040
    assert result.to_dict()["settings"]["max_vanished_share"] == 0.35
