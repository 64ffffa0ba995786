"""Demo releases: deterministic, CMS-shaped, zero rejects, and holding the stated events."""

from __future__ import annotations

import hashlib
import zipfile
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from contracts.release import release_from_name
from sources.archive import read_data_member
from sources.demo import (
    DEMO_CHANGES,
    DEMO_QUARTERS,
    demo_states,
    write_demo_releases,
)
from sources.fetch import fetch
from sources.rawstore import RawStore
from transforms import parse_anweb
from transforms.transaction_report import parse_transaction_report

EXPECTED_CODES = {
    "2024-Q1": 185, "2024-Q2": 186, "2024-Q3": 187, "2024-Q3r2": 188, "2024-Q4": 188,
    "2025-Q1": 190, "2025-Q2": 189, "2025-Q3": 190, "2025-Q4": 191,
}  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, Path]:
    paths = write_demo_releases(tmp_path_factory.mktemp("demo"))
    return {q.release: p for q, p in zip(DEMO_QUARTERS, paths, strict=True)}


@pytest.fixture(scope="module")
def parsed(demo) -> dict[str, pl.DataFrame]:
    out = {}
    for release, path in demo.items():
        result = parse_anweb(read_data_member(path).data)
        assert result.rejects.height == 0, (release, result.rejects.head(3).to_dicts())
        out[release] = result.codes
    return out


def row(parsed, release: str, code: str) -> dict:
    hit = parsed[release].filter(pl.col("code") == code)
    assert hit.height == 1, f"{code} not once in {release}"
    return hit.row(0, named=True)


def test_nine_zips_for_eight_quarters_and_one_reissue(demo) -> None:
    assert list(demo) == list(EXPECTED_CODES)
    assert len({release_from_name(p.name) for p in demo.values()}) == 8
    for release, path in demo.items():
        assert release_from_name(path.name) == release[:7]


def test_generation_is_byte_identical(demo, tmp_path: Path) -> None:
    again = write_demo_releases(tmp_path)
    assert [p.name for p in again] == [p.name for p in demo.values()]
    for first, second in zip(demo.values(), again, strict=True):
        assert first.read_bytes() == second.read_bytes(), first.name
    mtimes = [p.stat().st_mtime_ns for p in again]
    write_demo_releases(tmp_path)  # unchanged files are not rewritten
    assert [p.stat().st_mtime_ns for p in again] == mtimes


def test_every_release_parses_with_zero_rejects_and_exact_counts(parsed) -> None:
    assert {r: f.height for r, f in parsed.items()} == EXPECTED_CODES
    for frame in parsed.values():
        assert frame["unparsed_values"].list.len().sum() == 0
        assert frame.filter(pl.col("kind") == "modifier").height in (15, 16)


def test_parsed_fields_equal_what_the_generator_wrote(parsed) -> None:
    for quarter, rows in demo_states():
        frame = parsed[quarter.release]
        assert frame["code"].to_list() == [r["code"] for r in rows]
        fields = ("long_description", "short_description", "coverage_code", "action_code",
                  "added_date", "action_effective_date", "termination_date", "betos")  # fmt: skip
        for name in fields:
            assert frame[name].to_list() == [r.get(name) for r in rows], (quarter.release, name)
        prices = [list(r.get("pricing_indicators") or []) for r in rows]
        got = frame["pricing_indicators"].list.drop_nulls().to_list()
        assert got == prices, quarter.release


def test_cms_file_quirks_are_reproduced(demo) -> None:
    def data_lines(release: str) -> list[bytes]:
        return read_data_member(demo[release]).data.split(b"\r\n")

    first = data_lines("2024-Q1")
    continuations = [ln for ln in first if ln[10:11] in (b"4", b"8")]
    assert continuations and {len(ln) for ln in continuations} == {91}
    assert {len(ln) for ln in first if ln[10:11] in (b"3", b"7")} == {320}
    trimmed = [ln for ln in data_lines("2025-Q3") if ln]
    assert not [ln for ln in trimmed if ln.endswith(b" ")]
    disclaimer = data_lines("2024-Q2")[:6]
    assert disclaimer[0].startswith(b"SYNTHETIC DEMO DATA") and b"\xa0" in disclaimer[2]
    assert b"\t" in disclaimer[1]
    assert data_lines("2025-Q1")[-3:] == [b"", b"", b""]  # two blank lines, then the final CRLF
    members = [read_data_member(p).name for p in demo.values()]
    assert members[3] == "HCPC2024_JULY_ANWEB_v2.txt"
    assert "HCPC2025_JAN_ANWEB_12172024.txt" in members
    with zipfile.ZipFile(demo["2024-Q4"]) as zf:
        assert sorted(zf.namelist()) == [
            "HCPC2024_OCT_ANWEB_w_disclaimer.txt",
            "HCPC2024_OCT_README.txt",
            "HCPC2024_OCT_TransReport_Changes_by_Action_Code.txt",
        ]
        assert {i.date_time for i in zf.infolist()} == {(2024, 9, 17, 0, 0, 0)}


def test_transaction_report_lists_exactly_the_flagged_codes(demo, parsed) -> None:
    for release, path in demo.items():
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if "TransReport" in n)
            report = parse_transaction_report(zf.read(name))
        flagged = parsed[release].filter(pl.col("action_code") != "N")
        assert sorted(report.select("code", "action").rows()) == sorted(
            flagged.select("code", "action_code").rows()
        ), release


def test_stated_changes_happen(parsed) -> None:
    # Discontinued, kept with its termination date, then re-activated.
    gone = row(parsed, "2024-Q2", "E0200")
    assert (gone["action_code"], gone["termination_date"]) == ("D", date(2024, 3, 31))
    assert row(parsed, "2024-Q4", "E0200")["action_code"] == "N"
    assert row(parsed, "2024-Q4", "E0200")["termination_date"] == date(2024, 3, 31)
    reactivated = row(parsed, "2025-Q1", "E0200")
    assert (reactivated["action_code"], reactivated["termination_date"]) == ("R", None)
    assert reactivated["action_effective_date"] == date(2025, 1, 1)
    # Reused: discontinued, dropped from the file, back with a new meaning and a new added date.
    old = row(parsed, "2025-Q1", "G0002")
    assert parsed["2025-Q2"].filter(pl.col("code") == "G0002").height == 0
    new = row(parsed, "2025-Q3", "G0002")
    assert old["long_description"].startswith("Office procedure, insertion of temporary")
    assert new["long_description"].startswith("Caregiver training")
    assert (new["action_code"], new["added_date"], new["termination_date"]) == (
        "A", date(2025, 7, 1), None
    )  # fmt: skip
    # Silent changes: the value changes while the action code stays N.
    before, after = row(parsed, "2024-Q2", "A4216"), row(parsed, "2024-Q3", "A4216")
    assert before["long_description"] != after["long_description"]
    assert after["action_code"] == "N"
    assert row(parsed, "2024-Q3", "L1830")["pricing_indicators"][0] == "38"
    silent_price = row(parsed, "2024-Q4", "L1830")
    assert (silent_price["pricing_indicators"][0], silent_price["action_code"]) == ("46", "N")
    # Flagged description change, then corrected in the re-issue of the same quarter.
    assert row(parsed, "2024-Q3", "J0135")["long_description"].endswith("for subcutaneous use")
    assert row(parsed, "2024-Q3r2", "J0135")["long_description"].endswith("subcutaneous injection")
    assert parsed["2024-Q3"].filter(pl.col("code") == "Q4321").height == 0
    assert row(parsed, "2024-Q3r2", "Q4321")["action_code"] == "A"
    # Multi-line description survives the round trip.
    long = row(parsed, "2025-Q1", "G0560")
    assert long["line_count"] == 6 and len(long["long_description"]) > 400
    # Every change with an action letter shows that letter in its release.
    for change in DEMO_CHANGES:
        if change.action and change.kind != "drop":
            assert row(parsed, change.release, change.code)["action_code"] == change.action


def test_reissue_gets_revision_two_whatever_the_fetch_order(demo, tmp_path: Path) -> None:
    store = RawStore(tmp_path / "raw")
    results = [fetch(str(p), store) for p in reversed(demo.values())]
    assert [r.status for r in results].count("reissue") == 1
    ids = {z.member_name: z.release_id for z in store.list()}
    assert ids["HCPC2024_JULY_ANWEB.txt"] == "2024-Q3"
    assert ids["HCPC2024_JULY_ANWEB_v2.txt"] == "2024-Q3r2"
    assert [z.release_id for z in store.list()] == list(EXPECTED_CODES)
    for z in store.list():
        assert z.sha256 == hashlib.sha256(demo[z.release_id].read_bytes()).hexdigest()
