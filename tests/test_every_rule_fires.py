"""Every check of the validation suite, made to fail by the smallest change to real records.

The records: 110 real codes of the 2019 release (``SAMPLE``), cut from its fixed-width file with
their lines in the file's order. Each record-level case changes one value of its own code, as the
file would carry it (text written over a field) or, for what no file can hold, on the parsed codes;
one gate run (``records``) carries them all, against the unchanged sample as the previous release.
Each release-level case changes the sample as a whole and has a run of its own.

``CASES`` holds, for every check, what must then fail: exactly which codes, fields and values (the
count, for a check on the whole table), with which severity, and whether the release is refused.
``test_every_check_has_a_case`` fails when the suite gains a check without a case here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import polars as pl
import pytest

from contracts.domains import DOMAINS
from contracts.layout import FIELDS, domain_columns
from contracts.settings import GateSettings
from contracts.validation import BLANK, GateResult, Sample
from expectations.frame import OCCURS, occurrence_field
from expectations.gate import run_gate
from expectations.suite import Severity, all_checks
from tests.conftest import real_txt
from tests.test_gate_corruptions import overwrite, reparse, with_value
from transforms import parse_anweb

pytestmark = pytest.mark.realdata

RELEASE, EARLIER, REVISION = "2019-Q1", "2018-Q4", "2019-Q1r2"

#: Real 2019 codes, in the file's order: 7 modifiers and 103 procedures, 13 of them terminated and
#: 18 added in 2019. None has a finding of its own (A5513, E0910... are left out).
SAMPLE: tuple[str, ...] = (
    "A1", "CE", "CO", "CP", "KD", "NU", "TH", "A0425", "A4220", "A4250", "A4425", "A4619",
    "A4773", "A6402", "A6457", "A9273", "A9589", "A9698", "B4176", "C2621", "C9113", "C9138",
    "C9481", "C9751", "E0118", "E0182", "E0443", "E0784", "E0880", "E1250", "E2000", "E2327",
    "G0079", "G0153", "G0166", "G0431", "G0453", "G6001", "G6038", "G8498", "G8568", "G8700",
    "G8779", "G8883", "G8943", "G9079", "G9244", "G9264", "G9426", "G9499", "G9604", "G9741",
    "G9869", "G9874", "G9978", "H0045", "J0129", "J0595", "J0599", "J0630", "J1573", "J2590",
    "J7170", "J7179", "J7309", "J7310", "J7665", "J7670", "J7999", "J8498", "J8540", "J8597",
    "J9215", "J9265", "J9330", "K0743", "K0854", "L1110", "L1830", "L2375", "L3500", "L3710",
    "L5230", "L5816", "L6689", "L8507", "L8701", "M1012", "M1026", "M1040", "M1054", "M1068",
    "P2028", "P9041", "Q0111", "Q4042", "Q4183", "Q4193", "Q5106", "R0076", "S0630", "S3861",
    "S4042", "S9034", "S9348", "S9900", "T4543", "T4545", "V2797", "V5170",
)


@dataclass(frozen=True)
class InFile:
    """Text written over a code's first record line from the start of ``field`` (occurrence
    ``at`` of a repeating group): the damage as a file from CMS would carry it."""

    code: str
    field: str
    text: str
    at: int = 1

    def apply(self, data: bytes) -> bytes:
        f = FIELDS[self.field]
        return overwrite(data, self.code, f.start + (self.at - 1) * f.length, self.text)


@dataclass(frozen=True)
class InFrame:
    """A value no fixed-width field can hold, set on the parsed codes (a reader's mistake)."""

    code: str
    column: str
    value: str


@dataclass(frozen=True)
class Case:
    """How one check is made to fail (``change``, in the ``records`` run; else the ``run`` named
    does it) and what it must report: every failing code, field and value (a table-level check:
    its one sample, the count), its severity, and whether the release is then refused."""

    run: str
    severity: Severity
    found: tuple[Sample, ...]
    change: InFile | InFrame | None = None
    refused: bool = False
    count: int | None = None  # failing rows, when not one per sample (a duplicated code: 2)


def _record(severity: Severity, change: InFile | InFrame, *found: Sample) -> Case:
    return Case("records", severity, found, change)


def _one(code: str | None, field: str, value: str) -> tuple[Sample, ...]:
    return (Sample(code, field, value),)


#: What ``vanished_codes_share`` finds when the file lost its terminated codes.
TERMINATED = ("CP", "C9138", "C9481", "G0431", "G6038", "G8498", "G8700", "G8779", "G8943",
              "G9244", "G9499", "J9265", "V5170")
#: Codes a revision drops (none terminated), with the short description they had.
DROPPED = {"A4250": "Urine reagent strips/tablets", "A4773": "Occult blood test strips",
           "A9273": "Hot/cold botle/cap/col/wrap", "C2621": "Pmkr, other than sing/dual",
           "E0118": "Crutch substitute", "E0443": "Portable 02 contents, gas"}
#: Reworded: every third code of the sample (37 of the 109 that stay: over 25%); H0045 is gone.
REWORDED = SAMPLE[::3]
GONE = "H0045"
#: Whitespace-only rewording (not a change): a long and a short description.
RESPACED = {"A4425": "long_description", "KD": "short_description"}

CASES: dict[str, Case] = {
    # --- release-level: the file as a whole; an error refuses it ---
    "release_has_codes": Case("empty", "error", _one(None, "code_count", "0 codes"),
                              refused=True),
    "code_unique": Case("duplicate", "error", _one("Q0111", "code", "Q0111"), refused=True,
                        count=2),
    "rejects_within_limit": Case("garbage", "error",
                                 _one(None, "reject_count", "2 rejected lines"), refused=True),
    "rejected_codes_missing": Case("lost_line", "error", _one(
        "J2590", "line", "121: first line of J2590 has sequence number 00200, expected 00100"),
        refused=True),
    "code_count_drift": Case(
        "grown", "error", _one(None, "code_count", "110 codes (previous 92, +19.6%)"),
        refused=True),
    "vanished_codes_share": Case(
        "cut", "error", tuple(Sample(c, "code", "vanished") for c in TERMINATED), refused=True),
    "revision_removes_codes": Case(
        "revision", "error", tuple(Sample(c, "short_description", s) for c, s in DROPPED.items()),
        refused=True),
    "vanished_without_termination": Case(
        "reworded", "warning", _one(GONE, "short_description", "Respite not-in-home per diem")),
    "description_changed_share": Case(
        "reworded", "warning", tuple(Sample(c, "long_description", "changed") for c in REWORDED)),
    # --- record-level: one code's value; kept as a finding, never a refusal ---
    "procedure_code_format": _record(
        "error", InFrame("A0425", "code", "a0425"), Sample("a0425", "code", "a0425")),
    "modifier_code_format": _record(
        "error", InFrame("NU", "code", "nu"), Sample("nu", "code", "nu")),
    "record_kind_in_domain": _record(
        "error", InFrame("A4220", "kind", "continuation"), Sample("A4220", "kind", "continuation")),
    "action_code_in_domain": _record(
        "error", InFile("A4619", "action_code", "E"), Sample("A4619", "action_code", "E")),
    "coverage_code_in_domain": _record(
        "error", InFile("A6457", "coverage_code", "X"), Sample("A6457", "coverage_code", "X")),
    "pricing_indicators_in_domain": _record(
        "error", InFile("A9698", "pricing_indicators", "41", at=2),
        Sample("A9698", "pricing_indicators[2]", "41")),
    "multiple_pricing_indicator_in_domain": _record(
        "error", InFile("C9113", "multiple_pricing_indicator", "Z"),
        Sample("C9113", "multiple_pricing_indicator", "Z")),
    "multiple_pricing_indicator_not_obsolete": _record(
        "warning", InFile("E0182", "multiple_pricing_indicator", "E"),
        Sample("E0182", "multiple_pricing_indicator", "E")),
    "lab_certifications_in_domain": _record(
        "error", InFile("E0784", "lab_certifications", "311"),
        Sample("E0784", "lab_certifications[1]", "311")),
    "types_of_service_in_domain": _record(
        "error", InFile("E2000", "types_of_service", "X", at=2),
        Sample("E2000", "types_of_service[2]", "X")),
    "types_of_service_not_obsolete": _record(
        "warning", InFile("G0166", "types_of_service", "H", at=2),
        Sample("G0166", "types_of_service[2]", "H")),
    "betos_in_domain": _record(
        "error", InFile("G6001", "betos", "I3G"), Sample("G6001", "betos", "I3G")),
    # the ASC group one letter short; P9041's shifted ASC date (below) is outside it too
    "asc_group_in_domain": _record(
        "error", InFile("J0129", "asc_group", "Y "), Sample("J0129", "asc_group", "Y"),
        Sample("P9041", "asc_group", "20")),
    "long_description_present": _record(
        "error", InFile("J0595", "long_description", " " * 80),
        Sample("J0595", "long_description", BLANK)),
    "short_description_present": _record(
        "error", InFile("J7309", "short_description", " " * 28),
        Sample("J7309", "short_description", BLANK)),
    "short_description_max_28": _record(
        "error", InFrame("J7665", "short_description", "Mannitol, administered through"),
        Sample("J7665", "short_description", "Mannitol, administered through")),
    "coverage_code_present": _record(
        "error", InFile("J7310", "coverage_code", " "), Sample("J7310", "coverage_code", BLANK)),
    "action_code_present": _record(
        "error", InFile("J7999", "action_code", " "), Sample("J7999", "action_code", BLANK)),
    "added_date_present": _record(
        "error", InFile("J8498", "added_date", " " * 8), Sample("J8498", "added_date", BLANK)),
    "procedure_pricing_indicator_present": _record(
        "error", InFile("J8540", "pricing_indicators", "  "),
        Sample("J8540", "pricing_indicators[1]", BLANK)),
    "procedure_multiple_pricing_present": _record(
        "error", InFile("J8597", "multiple_pricing_indicator", " "),
        Sample("J8597", "multiple_pricing_indicator", BLANK)),
    "procedure_type_of_service_present": _record(
        "error", InFile("J9215", "types_of_service", " "),
        Sample("J9215", "types_of_service[1]", BLANK)),
    # June 31st; and P9041's ASC date cut to six digits (below)
    "dates_valid": _record(
        "error", InFile("K0743", "action_effective_date", "20110631"),
        Sample("K0743", "action_effective_date", "20110631"),
        Sample("P9041", "asc_effective_date", "080101")),
    "numbers_valid": _record(
        "error", InFile("L1830", "anesthesia_base_units", "  O"),
        Sample("L1830", "anesthesia_base_units", "  O")),
    "fillers_blank": _record(
        "error", InFile("L3710", "filler_294", "X"), Sample("L3710", "filler_294", "X")),
    # CMS's 2018 quirk: the ASC date written from the ASC group's column, two columns early
    "asc_fields_shifted": _record(
        "error", InFile("P9041", "asc_group", "20080101  "), Sample("P9041", "asc_group", "20")),
    "modifier_without_procedure_values": _record(
        "error", InFile("A1", "betos", "D1A"), Sample("A1", "betos", "D1A")),
    "action_effective_date_present": _record(
        "warning", InFile("P2028", "action_effective_date", " " * 8),
        Sample("P2028", "action_effective_date", BLANK)),
    "added_not_after_action_effective": _record(
        "warning", InFile("Q4183", "action_effective_date", "20181001"),
        Sample("Q4183", "action_effective_date", "20181001 (before added_date 20190101)")),
    "termination_not_before_added": _record(
        "warning", InFile("T4545", "termination_date", "20181231"),
        Sample("T4545", "termination_date", "20181231 (before added_date 20190101)")),
    "pricing_00_99_means_multiple_pricing_9": _record(
        "warning", InFile("S3861", "multiple_pricing_indicator", "A"),
        Sample("S3861", "multiple_pricing_indicator", "A")),
    "multiple_pricing_9_means_pricing_00_99": _record(
        "warning", InFile("S9348", "pricing_indicators", "11"),
        Sample("S9348", "pricing_indicators[1]", "11")),
    "discontinued_has_termination_date": _record(
        "warning", InFile("V5170", "termination_date", " " * 8),
        Sample("V5170", "termination_date", BLANK)),
}

#: Checks a run fails besides its own cases: a code a revision drops unterminated is also gone
#: without a termination date.
ALSO: dict[str, set[str]] = {"revision": {"vanished_without_termination"}}


def excerpt(data: bytes, codes: tuple[str, ...]) -> bytes:
    """The file's disclaimer lines, then the record lines of ``codes``, in the file's order."""
    wanted = {c.encode() for c in codes}
    lines = data.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line[5:11] in (b"001003", b"001007"))
    return b"".join([*lines[:first], *(line for line in lines[first:]
                                       if line[:5].strip() in wanted)])


def _records(data: bytes) -> GateResult:
    """Every record-level change at once, each on its own code, against the sample unchanged as
    the previous release (under the same code names: a renamed code has not vanished)."""
    clean = reparse(data)
    for case in CASES.values():
        if isinstance(case.change, InFile):
            data = case.change.apply(data)
    codes = reparse(data)
    for case in CASES.values():
        if isinstance(case.change, InFrame):
            codes = with_value(codes, case.change.code, case.change.column, case.change.value)
    return run_gate(codes, previous=clean.with_columns(codes["code"]), release_id=RELEASE,
                    previous_release_id=EARLIER)


def _empty(data: bytes) -> GateResult:
    """No code at all (a wrong member, a file cut before its first record)."""
    return run_gate(reparse(data).clear(), release_id=RELEASE)


def _read(data: bytes) -> GateResult:
    """The gate on what the parser reads of ``data``, its rejected lines included."""
    parsed = parse_anweb(data)
    return run_gate(parsed.codes, rejects=parsed.rejects, release_id=RELEASE)


def _duplicate(data: bytes) -> GateResult:
    """Q0111's record written twice: the parser keeps both and rejects the second line (one
    rejected line, which 1% of 111 codes allows)."""
    start = data.index(b"\nQ011100100") + 1
    end = data.index(b"\n", start) + 1
    return _read(data[:end] + data[start:end] + data[end:])


def _garbage(data: bytes) -> GateResult:
    """Two lines that are not records: one more than 1% of 110 codes allows."""
    return _read(data + b"this line is not a record\r\n" * 2)


def _lost_line(data: bytes) -> GateResult:
    """J2590's only line with a broken sequence number: the parser rejects it, and so the code
    (one rejected line, which 1% of the 109 codes left allows)."""
    return _read(overwrite(data, "J2590", FIELDS["sequence_number"].start, "00200"))


def _grown(data: bytes) -> GateResult:
    """Against a previous release without the 18 codes 2019 added: 19.6% more codes, where
    15% is the limit."""
    codes = reparse(data)
    return run_gate(codes, previous=codes.filter(pl.col("action_code") != "A"),
                    release_id=RELEASE, previous_release_id=EARLIER)


def _cut(data: bytes) -> GateResult:
    """The file without the 13 codes CMS terminated (it keeps them for years): 11.8% gone."""
    codes = reparse(data)
    return run_gate(codes.filter(pl.col("termination_date").is_null()), previous=codes,
                    release_id=RELEASE, previous_release_id=EARLIER)


def _revision(data: bytes) -> GateResult:
    """A revision of the same quarter that drops six codes nobody terminated (five may go)."""
    codes = reparse(data)
    return run_gate(codes.filter(~pl.col("code").is_in(list(DROPPED))), previous=codes,
                    release_id=REVISION, previous_release_id=RELEASE)


def _reworded(data: bytes) -> GateResult:
    """One unterminated code gone, and a third of the long descriptions reworded; two more
    descriptions only re-spaced, which is no change."""
    codes = reparse(data)
    reworded = pl.col("code").is_in(list(REWORDED))
    now = codes.filter(pl.col("code") != GONE).with_columns(
        pl.when(reworded).then(pl.col("long_description") + " (revised)")
        .otherwise(pl.col("long_description")).alias("long_description"))
    for code, column in RESPACED.items():
        text = now.filter(pl.col("code") == code)[column].item()
        now = with_value(now, code, column, text.replace(" ", "  ", 1))
    return run_gate(now, previous=codes, release_id=RELEASE, previous_release_id=EARLIER)


#: Run name -> how it changes the sample (its bytes) and runs the gate on it.
RUNS: dict[str, Callable[[bytes], GateResult]] = {
    "records": _records, "empty": _empty, "duplicate": _duplicate, "garbage": _garbage,
    "lost_line": _lost_line, "grown": _grown, "cut": _cut, "revision": _revision,
    "reworded": _reworded,
}


@pytest.fixture(scope="module")
def sample_txt(cms_dir: Path) -> bytes:
    return excerpt(real_txt(cms_dir, RELEASE), SAMPLE)


@pytest.fixture(scope="module")
def gate(sample_txt: bytes) -> Callable[[str], GateResult]:
    """The gate's result of a run, each run made once, when a test first asks for it."""
    return cache(lambda run: RUNS[run](sample_txt))


def test_the_sample_is_real_2019_records(cms_dir: Path, sample_txt: bytes) -> None:
    """The excerpt reads as exactly those codes of the whole release (only line numbers move)."""
    codes = reparse(sample_txt)
    whole = parse_anweb(real_txt(cms_dir, RELEASE)).codes.filter(pl.col("code").is_in(SAMPLE))
    assert codes.drop("source_line").equals(whole.drop("source_line"))
    assert tuple(codes["code"]) == SAMPLE
    assert codes["kind"].value_counts(sort=True).rows() == [("procedure", 103), ("modifier", 7)]
    terminated = codes.filter(pl.col("termination_date").is_not_null())["code"]
    assert tuple(terminated) == TERMINATED
    assert codes.filter(pl.col("action_code") == "A").height == 18


def test_every_check_has_a_case() -> None:
    """The whole suite (with a previous release of the same quarter) against ``CASES``."""
    names = {c.name for c in all_checks(GateSettings(), len(SAMPLE), len(SAMPLE), revision=True)}
    assert (sorted(names - set(CASES)), sorted(set(CASES) - names)) == ([], [])


@pytest.mark.parametrize("name", list(CASES))
def test_rule_fires(gate: Callable[[str], GateResult], name: str) -> None:
    """The check fails on exactly the codes, fields and values changed, with its severity; only
    a release-level error refuses the release."""
    case = CASES[name]
    result = gate(case.run)
    outcome = result.outcome(name)
    assert not outcome.success
    assert outcome.severity == case.severity
    found = outcome.failures if outcome.column else outcome.samples
    assert found == case.found
    if outcome.column is None:
        assert outcome.observed == case.found[0].value
    else:
        assert outcome.unexpected_count == (case.count or len(case.found))
    assert (result.passed, [o.name for o in result.blocking]) == (
        (False, [name]) if case.refused else (True, []))
    # a record-level failure is kept per code (findings.parquet); a release-level one is not
    kept = [f[1:] for f in result.findings() if f[0] == name]
    assert kept == ([(case.severity, s.code, s.field, s.value) for s in case.found]
                    if case.change else [])


@pytest.mark.parametrize("run", list(RUNS))
def test_each_run_fails_only_its_cases(gate: Callable[[str], GateResult], run: str) -> None:
    """No change trips a check it was not made for (a finding elsewhere would hide a miss)."""
    failed = {o.name for o in gate(run).outcomes if not o.success}
    assert failed == {n for n, c in CASES.items() if c.run == run} | ALSO.get(run, set())


def test_every_domain_value_passes_and_only_retired_ones_warn(sample_txt: bytes) -> None:
    """The converse of the domain cases: one real procedure with, row by row, every value of
    every domain (its first occurrence, for a repeating group) fails no domain check, and the
    retired values are exactly what each ``_not_obsolete`` check names."""
    template = reparse(sample_txt).filter(pl.col("code") == "J0630")
    rows = max(len(d.values) for d in DOMAINS.values())
    frame = pl.concat([template] * rows)
    expected: dict[str, set[tuple[str, str]]] = {}
    for name, domain in DOMAINS.items():
        values = list(domain.values)
        for col in domain_columns(name):
            cycle = [values[i % len(values)] for i in range(rows)]
            group = col in OCCURS
            frame = frame.with_columns(pl.Series(
                col, [[v] for v in cycle] if group else cycle, dtype=frame.schema[col]))
            label = occurrence_field(col, 1) if group else col
            expected[f"{col}_in_domain"] = set()
            if domain.obsolete:
                expected[f"{col}_not_obsolete"] = {(label, v) for v in domain.obsolete}
    result = run_gate(frame, release_id=RELEASE)
    found = {name: {(s.field, s.value) for s in result.outcome(name).failures}
             for name in expected}
    assert found == expected
