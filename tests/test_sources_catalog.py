"""Catalogs (shipped CMS list, user CSV, folder, URL list), resolve_source, and the raw store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from contracts.release import ReleaseFile, release_from_name
from sources.archive import read_release_file
from sources.catalog import (
    SHIPPED_CATALOG,
    CatalogError,
    cms_catalog,
    folder_catalog,
    read_catalog_csv,
    url_list_catalog,
)
from sources.demo import DEMO_QUARTERS
from sources.fetch import fetch
from sources.rawstore import RawStore
from sources.registry import resolve_source

Z = "https://www.cms.gov/files/zip"


def test_shipped_catalog_is_consistent_with_the_names() -> None:
    entries = cms_catalog()
    assert len(entries) == 24
    assert entries[0] == ReleaseFile(
        "2012-Q1", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets/Downloads/12anweb.zip"
    )
    assert entries[-1] == ReleaseFile("2026-Q4", f"{Z}/october-2026-alpha-numeric-hcpcs-file.zip")
    for entry in entries:  # the CSV's release column agrees with what the URL says
        assert release_from_name(entry.source_url) == entry.release_id, entry.source_url
    assert len(read_catalog_csv(SHIPPED_CATALOG)) == 24


def test_user_catalog_extends_and_overrides(tmp_path: Path, monkeypatch) -> None:
    mine = tmp_path / "mine.csv"
    mine.write_text(
        "release,url\n"
        f"2027-Q1,{Z}/january-2027-alpha-numeric-hcpcs-file.zip\n"
        f",{Z}/april-2027-alpha-numeric-hcpcs-file.zip\n"  # release derived from the URL
        f"2026-Q2,{Z}/2026-alpha-numeric-hcpcs-file.zip\n"  # overrides the shipped 2026-Q1
    )
    entries = cms_catalog(mine)
    assert len(entries) == 26
    assert entries[-2:] == [
        ReleaseFile("2027-Q1", f"{Z}/january-2027-alpha-numeric-hcpcs-file.zip"),
        ReleaseFile("2027-Q2", f"{Z}/april-2027-alpha-numeric-hcpcs-file.zip"),
    ]
    assert ReleaseFile("2026-Q2", f"{Z}/2026-alpha-numeric-hcpcs-file.zip") in entries
    monkeypatch.setenv("HCPCS_CATALOG", str(mine))
    assert resolve_source("cms", tmp_path) == entries


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("release,url\n2026-Q7,https://x/y.zip\n", "mine.csv:2: invalid release id '2026-Q7'"),
        ("release,url\n,https://x/download\n", "mine.csv:2: cannot tell the release of"),
        ("2026-Q1,https://x/a.zip,extra\n", "mine.csv:1: expected release,url"),
    ],
)
def test_bad_catalog_lines_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    mine = tmp_path / "mine.csv"
    mine.write_text(content)
    with pytest.raises(CatalogError) as err:
        read_catalog_csv(mine)
    assert message in str(err.value)


def test_url_list(tmp_path: Path) -> None:
    listing = tmp_path / "urls.txt"
    listing.write_text(
        "# my mirror\n"
        f"{Z}/july-2025-alpha-numeric-hcpcs-file.zip\n"
        "\n"
        "2025-Q4 https://mirror.example/hcpcs/latest.zip\n"
        "2026-Q1,https://mirror.example/hcpcs/jan.zip\n"
    )
    expected = [
        ReleaseFile("2025-Q3", f"{Z}/july-2025-alpha-numeric-hcpcs-file.zip"),
        ReleaseFile("2025-Q4", "https://mirror.example/hcpcs/latest.zip"),
        ReleaseFile("2026-Q1", "https://mirror.example/hcpcs/jan.zip"),
    ]
    assert url_list_catalog(listing) == expected
    assert resolve_source(str(listing), tmp_path) == expected
    listing.write_text("https://mirror.example/hcpcs/latest.zip\n")
    with pytest.raises(CatalogError, match=r"urls.txt:1: cannot tell the release"):
        url_list_catalog(listing)


@pytest.mark.realdata
def test_folder_of_real_releases(cms_dir: Path, tmp_path: Path) -> None:
    expected = [
        ReleaseFile("2016-Q1", str(cms_dir / "2016-annual/HCPC2016_CONTR_ANWEB.txt")),
        ReleaseFile("2017-Q1", str(cms_dir / "2017-annual/2017-Alpha-Numeric-HCPCS-File.zip")),
        ReleaseFile("2019-Q1", str(cms_dir / "2019-annual/2019-Alpha-Numeric-HCPCS-File.zip")),
        ReleaseFile("2020-Q2", str(cms_dir / "2020-Q2-april/anweb.xlsx")),
        ReleaseFile("2020-Q3", str(cms_dir / "2020-Q3-july/anweb.xlsx")),
        ReleaseFile("2020-Q4", str(cms_dir / "2020-Q4-october/anweb.xlsx")),
    ]  # left out: the 2016 xlsx (the TXT's copy), corrections, NOC, record layouts, readmes,
    # transaction reports (trans_alpha.xlsx), the derived CSV
    assert folder_catalog(cms_dir) == expected
    assert resolve_source(str(cms_dir), tmp_path) == expected
    assert resolve_source(cms_dir.as_uri(), tmp_path) == expected
    store = RawStore(tmp_path / "raw")
    results = [fetch(e.source_url, store, release=e.release_id) for e in expected]
    assert [(r.release_id, r.status, r.member_name, r.path.suffix) for r in results] == [
        ("2016-Q1", "new", "HCPC2016_CONTR_ANWEB.txt", ".txt"),
        ("2017-Q1", "new", "HCPC17_CONTR_ANWEB.txt", ".zip"),
        ("2019-Q1", "new", "HCPC2019_CONTR_ANWEB.txt", ".zip"),
        ("2020-Q2", "new", "anweb.xlsx", ".xlsx"),
        ("2020-Q3", "new", "anweb.xlsx", ".xlsx"),
        ("2020-Q4", "new", "anweb.xlsx", ".xlsx"),
    ]
    names = [read_release_file(r.path).name for r in results]
    assert (
        names
        == [
            f"{results[0].sha256}.txt",  # a stored bare file: its sha256 and its format's suffix
            "HCPC17_CONTR_ANWEB.txt",
            "HCPC2019_CONTR_ANWEB.txt",
            *(f"{r.sha256}.xlsx" for r in results[3:]),
        ]
    )


def test_folder_uses_the_data_member_when_the_zip_name_says_nothing(tmp_path: Path) -> None:
    demo = resolve_source("demo", tmp_path)
    renamed = tmp_path / "inbox" / "download (3).zip"
    renamed.parent.mkdir()
    renamed.write_bytes(Path(demo[5].source_url).read_bytes())
    (tmp_path / "inbox" / "notes.txt").write_text("not a release")
    assert folder_catalog(tmp_path / "inbox") == [ReleaseFile("2025-Q1", str(renamed))]
    assert resolve_source(str(renamed), tmp_path) == [ReleaseFile("2025-Q1", str(renamed))]


def test_demo_source_generates_once_and_lists_every_zip(tmp_path: Path) -> None:
    entries = resolve_source("demo", tmp_path)
    assert [e.release_id for e in entries] == [q.release[:7] for q in DEMO_QUARTERS]
    assert [Path(e.source_url).name for e in entries] == [q.zip_name for q in DEMO_QUARTERS]
    stamps = [os.stat(e.source_url).st_mtime_ns for e in entries]
    assert resolve_source("demo", tmp_path) == entries
    assert [os.stat(e.source_url).st_mtime_ns for e in entries] == stamps


def test_urls_and_missing_paths(tmp_path: Path) -> None:
    url = f"{Z}/october-2025-alpha-numeric-hcpcs-file.zip"
    assert resolve_source(url, tmp_path) == [ReleaseFile("2025-Q4", url)]
    assert resolve_source("https://x.org/dl/file.zip", tmp_path) == [
        ReleaseFile(None, "https://x.org/dl/file.zip")  # quarter read from the member later
    ]
    with pytest.raises(CatalogError, match="no-such-dir: no such file or folder"):
        resolve_source(str(tmp_path / "no-such-dir"), tmp_path)


def test_raw_store_layout_sidecar_and_interrupted_add(tmp_path: Path) -> None:
    demo = resolve_source("demo", tmp_path)
    store = RawStore(tmp_path / "raw")
    result = fetch(demo[0].source_url, store)
    sidecar = json.loads(result.path.with_suffix(".json").read_text())
    assert sidecar == {
        "quarter": "2024-Q1",
        "sha256": result.sha256,
        "file": f"{result.sha256}.zip",
        "size": result.path.stat().st_size,
        "source_url": demo[0].source_url,
        "member_name": "HCPC2024_JAN_ANWEB.txt",
        "fetched_at": sidecar["fetched_at"],
    }
    # A crash between the sidecar and the move leaves a sidecar alone: it is not an entry,
    # and the next add of those bytes completes normally.
    orphan = store.root / "2024-Q2" / ("0" * 64 + ".json")
    orphan.parent.mkdir()
    orphan.write_text(json.dumps({**sidecar, "quarter": "2024-Q2", "file": "0" * 64 + ".zip"}))
    assert [z.release_id for z in store.list()] == ["2024-Q1"]
    copy = tmp_path / "copy.zip"
    copy.write_bytes(Path(demo[1].source_url).read_bytes())
    added = store.add(copy, "2024-Q2", source_url="x", member_name="HCPC2024_APR_ANWEB.txt")
    assert not copy.exists()
    assert [z.release_id for z in store.list()] == ["2024-Q1", "2024-Q2"]
    assert added.path.read_bytes() == Path(demo[1].source_url).read_bytes()
