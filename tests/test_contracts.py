"""The shared contracts: the layout checks its own facts, tables derive from it, the manifest
round-trips, settings come from one place, errors say whether to retry, sources are one table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
import pytest

from contracts.errors import HcpcsError, TerminalError, TransientError
from contracts.layout import LAYOUT, LayoutError, check_layout
from contracts.paths import DataDir
from contracts.release import FileEntry, Manifest, ManifestError, ReleaseFile, ReleaseIdError
from contracts.settings import (
    FetchSettings,
    GateSettings,
    ReportSettings,
    Settings,
    apply_offline_env,
)
from sources import registry
from sources.archive import ArchiveError
from sources.catalog import CatalogError
from sources.fetch import FetchError
from warehouse.changes import EXPECTED_ACTIONS
from warehouse.lock import LockBusyError
from warehouse.publish import PublishError


def _with(name: str, **changes) -> tuple:
    return tuple(dataclasses.replace(f, **changes) if f.name == name else f for f in LAYOUT)


def test_the_layout_refuses_a_missing_or_contradictory_fact() -> None:
    check_layout(LAYOUT)
    cases = {
        "statute": ({"change": None}, "says nothing of how a change to it is classified"),
        "betos": ({"domain": "bets"}, "unknown domain 'bets'"),
        "coverage_code": ({"change": "colour"}, "unknown change class 'colour'"),
        "filler_260": ({"procedure_only": True}, "structure and fillers carry no column facts"),
        "action_code": ({"start": 292}, "starts at 292, expected 293"),
    }
    for name, (changes, message) in cases.items():
        with pytest.raises(LayoutError, match=message):
            check_layout(_with(name, **changes))


def test_per_column_tables_derive_from_the_layout() -> None:
    # every payment field, the legacy MOG ones included, is announced by P, F or B ...
    for name in ("mog_group", "mog_indicator", "mog_effective_date", "asc_group"):
        assert EXPECTED_ACTIONS[f"{name}_changed"] == "PFB"
    assert EXPECTED_ACTIONS["termination_date_changed"] == "D"
    assert EXPECTED_ACTIONS["long_description_changed"] == "CB"
    assert EXPECTED_ACTIONS["anesthesia_base_units_changed"] == "PFB"
    assert EXPECTED_ACTIONS["added"] == EXPECTED_ACTIONS["redefined"] == "A"


def test_manifest_round_trips_and_a_broken_one_names_its_file(tmp_path: Path) -> None:
    m = Manifest("2019-Q1", "2019-Q1", 1, "file:///x.zip", "ab" * 32, "HCPC2019.txt",
                 "2026-01-01T00:00:00+00:00", {"codes": 1, "procedures": 1, "modifiers": 0,
                                               "rejects": 0}, 1, "f" * 64, "0.1.0",
                 {"codes.parquet": FileEntry("cd" * 32, 10, 1)})
    assert Manifest.from_json(m.to_json()) == m
    assert m.to_json() == Manifest.from_json(m.to_json()).to_json()
    with pytest.raises(ManifestError, match=r"x/manifest.json: not a valid release manifest"):
        Manifest.from_json(b'{"release_id": "2019-Q1"', "x/manifest.json")
    with pytest.raises(ManifestError, match="missing counts, fetched_at"):
        Manifest.from_json(b'{"release_id": "2019-Q1", "quarter": "2019-Q1", "revision": 1, '
                           b'"source_url": null, "raw_sha256": "a", "member_name": null, '
                           b'"schema_version": 1, "schema_fingerprint": "f", '
                           b'"pipeline_version": "0", "files": {}}')


def test_settings_come_from_the_environment_once_and_say_what_is_wrong() -> None:
    assert Settings.from_env({}) == Settings()
    got = Settings.from_env({"HCPCS_FETCH_MAX_TOTAL_SECONDS": "5", "HCPCS_FETCH_TIMEOUT": "2.5",
                             "HCPCS_GATE_MAX_VANISHED_SHARE": "0.02",
                             "HCPCS_GATE_QUICK_FIRST": "false", "HCPCS_REPORT_WRITE": "no",
                             "UNRELATED": "x"})
    assert got.fetch == FetchSettings(max_total_seconds=5.0, timeout=2.5)
    assert got.report == ReportSettings(write=False)
    assert isinstance(got.fetch.max_total_seconds, float)
    assert got.gate == GateSettings(max_vanished_share=0.02, quick_first=False)
    with pytest.raises(ValueError, match="HCPCS_FETCH_MAX_ATTEMPTS='many': expected a int"):
        Settings.from_env({"HCPCS_FETCH_MAX_ATTEMPTS": "many"})
    with pytest.raises(ValueError, match="HCPCS_GATE_QUICK_FIRST='maybe': expected true or false"):
        Settings.from_env({"HCPCS_GATE_QUICK_FIRST": "maybe"})


def test_offline_environment_is_one_table(tmp_path: Path) -> None:
    env = {"DO_NOT_TRACK": "0", "PREFECT_HOME": "/elsewhere"}
    apply_offline_env(tmp_path, env)
    assert env["DO_NOT_TRACK"] == "0" and env["PREFECT_HOME"] == "/elsewhere"  # user's choice
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    apply_offline_env(tmp_path, env, force=True)
    assert env["DO_NOT_TRACK"] == "1" and env["PREFECT_HOME"] == "/elsewhere"


def test_every_error_says_whether_retrying_can_help() -> None:
    terminal = [ReleaseIdError("x"), ArchiveError("x"), CatalogError("x"), PublishError("x"),
                ManifestError("x"), FetchError("404")]
    transient = [FetchError("503", transient=True), LockBusyError("busy")]
    assert all(isinstance(e, HcpcsError) and not e.transient for e in terminal)
    assert all(isinstance(e, HcpcsError) and e.transient for e in transient)
    assert issubclass(LockBusyError, TransientError) and issubclass(PublishError, TerminalError)


def test_data_dir_names_every_path_once(tmp_path: Path) -> None:
    d = DataDir(tmp_path)
    assert d.release("2026-Q1r2") == tmp_path / "parquet/releases/release=2026-Q1r2"
    assert (d.raw, d.demo, d.database) == (tmp_path / "raw", tmp_path / "sources/demo",
                                          tmp_path / "hcpcs.duckdb")
    assert d.last_run.parent == d.runs.parent == d.reports


def test_a_new_source_kind_is_one_entry(tmp_path: Path, monkeypatch) -> None:
    kind = registry.SourceKind(
        "mirror", "mirror:NAME", "a named mirror", False, lambda s: s.startswith("mirror:"),
        lambda s, d: [ReleaseFile("2026-Q1", f"https://mirror.example/{s[7:]}.zip")])
    monkeypatch.setattr(registry, "SOURCE_KINDS", (kind, *registry.SOURCE_KINDS))
    assert registry.resolve_source("mirror:jan", tmp_path) == [
        ReleaseFile("2026-Q1", "https://mirror.example/jan.zip")]
    assert "mirror:NAME: a named mirror" in registry.sources_help()
    assert "| `mirror` | `mirror:NAME` | a named mirror | no |" in registry.sources_markdown()


def test_every_source_kind_is_recognised(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "HCPC2019_CONTR_ANWEB.txt").write_text("x")
    (folder / "list.csv").write_text("release,url\n")
    (folder / "urls.txt").write_text("")
    seen = {
        "demo": "demo", "cms": "cms",
        "zip-url": "https://www.cms.gov/files/zip/january-2026-alpha-numeric-hcpcs-file.zip",
        "page": "https://www.cms.gov/quarterly-update", "folder": str(folder),
        "file": str(folder / "HCPC2019_CONTR_ANWEB.txt"), "catalog": str(folder / "list.csv"),
        "url-list": (folder / "urls.txt").as_uri(),
    }
    assert {name: registry.source_kind(s).name for name, s in seen.items()} == {
        k: k for k in seen}
    assert [k.name for k in registry.SOURCE_KINDS] == list(seen)
    with pytest.raises(CatalogError, match="no such file or folder, and not a known source"):
        registry.source_kind(str(tmp_path / "missing"))


def test_a_validation_rule_is_one_entry_with_its_own_column(monkeypatch) -> None:
    from expectations import suite
    from expectations.frame import labelled
    from expectations.gate import run_gate
    from tests.warehouse_synth import codes_frame

    rule = suite.Check(
        "statute_not_na", "warning", "ExpectColumnValuesToBeNull", "statute_is_na", None,
        "A statute of NA says nothing.",
        derive=pl.when(pl.col("statute") == "NA").then(labelled("statute", pl.col("statute"))))
    monkeypatch.setattr(suite, "RULES", (*suite.RULES, rule))
    codes = codes_frame([{"code": "A0001"}, {"code": "A0002", "statute": "NA"}])
    found = run_gate(codes).outcome("statute_not_na")
    assert (found.success, found.unexpected_count) == (False, 1)
    assert [(s.code, s.field, s.value) for s in found.samples] == [("A0002", "statute", "NA")]
