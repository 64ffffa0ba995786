"""A release id, once published, always means the same bytes; the same content is never published
twice; an older revision never replaces a newer one. Real flow runs on real and demo files."""

from __future__ import annotations

import zipfile
from pathlib import Path

from contracts.paths import DataDir
from flows.summary import EXIT_NOTHING_NEW, EXIT_PUBLISHED
from sources.demo import write_demo_releases
from tests.conftest import REAL_RELEASES
from tests.test_flows import hcpcs, query


def published(data_dir: Path) -> list[str]:
    return sorted(p.name.removeprefix("release=") for p in DataDir(data_dir).releases.iterdir()
                  if p.name.startswith("release="))


def run(source: Path, data_dir: Path) -> tuple[int, dict[str, dict]]:
    code, doc = hcpcs("run", "--source", str(source), "--data-dir", str(data_dir))
    return code, {r["release_id"]: r for r in doc["releases"]}


def test_an_older_revision_after_a_newer_one_is_superseded(tmp_path: Path) -> None:
    """CMS's July 2024 v2, then its v1, then v2 again: v2 is published once, v1 never."""
    demo = {p.name: p for p in write_demo_releases(tmp_path / "demo")}
    v1 = demo["july-2024-alpha-numeric-hcpcs-file.zip"]
    v2 = demo["july-2024-alpha-numeric-hcpcs-file-v2.zip"]
    data_dir = tmp_path / "data"

    code, first = run(v2, data_dir)
    assert code == EXIT_PUBLISHED
    assert [(r["release_id"], r["status"]) for r in first.values()] == [("2024-Q3", "published")]

    code, older = run(v1, data_dir)  # the raw store now ranks v1 first: ids must not shift
    assert code == EXIT_NOTHING_NEW
    assert older["2024-Q3"]["status"] == "superseded"
    assert older["2024-Q3"]["message"] == (
        "already superseded: 2024-Q3 (HCPC2024_JULY_ANWEB_v2.txt) is a newer revision of 2024-Q3 "
        "and stays published; HCPC2024_JULY_ANWEB.txt is kept in the raw store, not published")

    code, again = run(v2, data_dir)
    assert code == EXIT_NOTHING_NEW
    assert [(r["release_id"], r["status"]) for r in again.values()] == [("2024-Q3", "unchanged")]
    assert published(data_dir) == ["2024-Q3"]
    assert query(data_dir, "SELECT release_id, member_name FROM releases") == [
        ("2024-Q3", "HCPC2024_JULY_ANWEB_v2.txt")]


def test_revisions_in_order_publish_under_their_own_ids(tmp_path: Path) -> None:
    """v1 then v2 (the usual order): two revisions, v2 supersedes v1 in history."""
    demo = {p.name: p for p in write_demo_releases(tmp_path / "demo")}
    data_dir = tmp_path / "data"
    run(demo["july-2024-alpha-numeric-hcpcs-file.zip"], data_dir)
    code, second = run(demo["july-2024-alpha-numeric-hcpcs-file-v2.zip"], data_dir)
    assert code == EXIT_PUBLISHED and second["2024-Q3r2"]["status"] == "published"
    assert published(data_dir) == ["2024-Q3", "2024-Q3r2"]
    assert query(data_dir, "SELECT release_id, superseded_by FROM releases ORDER BY 1") == [
        ("2024-Q3", "2024-Q3r2"), ("2024-Q3r2", None)]


def test_the_same_content_in_another_file_is_not_published_twice(
        cms_dir: Path, tmp_path: Path) -> None:
    """The real 2019 ZIP, then its own TXT, then the TXT in another ZIP: one release."""
    rel, member = REAL_RELEASES["2019-Q1"]
    data_dir = tmp_path / "data"
    code, first = run(cms_dir / rel, data_dir)
    assert code == EXIT_PUBLISHED and first["2019-Q1"]["status"] == "published"

    with zipfile.ZipFile(cms_dir / rel) as zf:
        txt = zf.read(member)
    bare = tmp_path / member
    bare.write_bytes(txt)
    rezipped = tmp_path / "hcpcs-2019-copy.zip"
    with zipfile.ZipFile(rezipped, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, txt)
    for copy in (bare, rezipped):
        code, again = run(copy, data_dir)
        assert code == EXIT_NOTHING_NEW, again
        [outcome] = again.values()
        assert outcome["status"] == "duplicate"
        assert outcome["message"] == (
            "same content as the published 2019-Q1 (HCPC2019_CONTR_ANWEB.txt); not published "
            "again")
    assert published(data_dir) == ["2019-Q1"]
    assert query(data_dir, "SELECT count(*) FROM codes") == [(6800,)]


def test_content_hash_ignores_where_rows_sat(real_parsed) -> None:
    """Positions in the file are not content; every field CMS wrote is."""
    import polars as pl

    from warehouse.identity import content_sha256

    codes = real_parsed["2017-Q1"].codes
    base = content_sha256(codes)
    assert content_sha256(codes.reverse().with_columns(pl.col("source_line") + 7)) == base
    changed = codes.with_columns(
        pl.when(pl.col("code") == "J0131").then(pl.lit("X")).otherwise(pl.col("coverage_code"))
        .alias("coverage_code"))
    assert content_sha256(changed) != base
