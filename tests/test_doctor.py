"""The data directory checks and heals itself: damaged releases and databases found, named and
quarantined (never deleted), leftovers of killed writes swept, published files readable by others,
invalid JSON named, and a data directory whose path looks like a glob pattern."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from contracts.files import atomic_write_bytes, readable_mode
from contracts.paths import DB_NAME, DataDir
from contracts.release import ManifestError, ReleaseFile
from flows.summary import RunReportError, last_run
from sources.rawstore import RawStore
from tests.warehouse_synth import codes_frame, empty_rejects, no_findings, publish
from warehouse import doctor, history
from warehouse import publish as pub
from warehouse.doctor import REPAIR, DamagedFileError, Problem
from warehouse.lock import publish_lock
from warehouse.waivers import WaiverError, read_waivers

ROWS = {"2019-Q1": [{"code": "A1"}, {"code": "A0001"}, {"code": "A0002"}],
        "2020-Q1": [{"code": "A1"}, {"code": "A0001"}, {"code": "A0003", "action_code": "A"}]}
HINT = (f"`hcpcs doctor` checks every published file against its manifest, `{REPAIR}` "
        "quarantines what is damaged so the next run derives it again")


def _stored(data: Path, release_id: str) -> ReleaseFile:
    """A raw file for ``release_id`` in the data directory's raw store (its bytes are made up:
    what matters here is that the store holds them, by sha256)."""
    incoming = data.parent / f"incoming-{release_id}.txt"
    incoming.parent.mkdir(parents=True, exist_ok=True)
    incoming.write_bytes(f"raw bytes of {release_id}\n".encode())
    return RawStore(DataDir(data).raw).add(incoming, release_id,
                                           source_url=f"https://cms.example/{release_id}.zip",
                                           member_name=f"HCPC_{release_id}.txt", suffix=".txt")


def _publish_stored(data: Path, release_id: str) -> pub.PublishResult:
    """Publish ``ROWS[release_id]`` as if parsed from its raw store file."""
    codes = codes_frame(ROWS[release_id])
    return pub.publish_release(data, file=_stored(data, release_id), codes=codes,
                               rejects=empty_rejects(), validation=no_findings(release_id, codes))


def _refetch_fix(data: Path, release_id: str, source: str) -> str:
    return (f"{REPAIR} (moves release={release_id} to {data / 'quarantine'}), then hcpcs run "
            f"--source {source} (its raw file is not in the raw store)")


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Two releases published from the raw store, and their database."""
    data = tmp_path / "data"
    for release_id in ROWS:
        _publish_stored(data, release_id)
    history.rebuild(data)
    return data


def test_a_healthy_data_dir_has_no_problems(data: Path) -> None:
    assert doctor.check(data) == []
    assert doctor.sweep(data) == []


def test_truncated_codes_parquet_is_named_quarantined_and_derived_again(data: Path) -> None:
    folder = DataDir(data).release("2020-Q1")
    codes = folder / "codes.parquet"
    size = codes.stat().st_size
    codes.write_bytes(codes.read_bytes()[:100])
    raw = _stored(data, "2020-Q1").path
    assert doctor.check(data) == [Problem(
        codes, f"wrong size: manifest {size} bytes, found 100", "2020-Q1",
        f"{REPAIR} (moves release=2020-Q1 to {data / 'quarantine'}); the next run derives it "
        f"again from {raw}")]
    # what the next release's validation ran into: now it names the file and what to do
    with pytest.raises(DamagedFileError) as err:
        pub.load_codes(data, "2020-Q1")
    assert str(err.value) == (f"{codes}: cannot be read (parquet: File out of specification: "
                              f"The file must end with PAR1 or PARE); {HINT}")
    with pytest.raises(DamagedFileError) as err:  # and so did the rebuild
        history.rebuild(data)
    assert str(err.value) == (f"{DataDir(data).releases}: cannot be read (Invalid Input Error: "
                              f"No magic bytes found at end of file '{codes}'); {HINT}")
    damaged = _tree(folder)

    with publish_lock(data):
        moved = doctor.quarantine(data, doctor.check(data))
    assert len(moved) == 1 and moved[0].name == "release=2020-Q1"
    assert moved[0].parent.parent == data / "quarantine"
    assert _tree(moved[0]) == damaged  # kept as it was, byte for byte
    assert [m.release_id for m in pub.published_releases(data)] == ["2019-Q1"]
    assert doctor.check(data) == []

    # the next run derives it again from the raw store file the manifest names
    assert _publish_stored(data, "2020-Q1").status == "published"
    assert pub.load_codes(data, "2020-Q1").equals(codes_frame(ROWS["2020-Q1"]))
    assert history.rebuild(data).releases == 2
    assert doctor.check(data) == []


def test_every_kind_of_release_damage_is_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for release_id in ("2019-Q1", "2020-Q1", "2021-Q1", "2022-Q1"):
        publish(data, release_id, codes_frame(ROWS["2019-Q1"]))
    paths = DataDir(data)
    (paths.release("2019-Q1") / "validation.json").unlink()
    findings = paths.release("2020-Q1") / "findings.parquet"
    body = bytearray(findings.read_bytes())
    body[40] ^= 0xFF  # same size, other bytes
    findings.write_bytes(bytes(body))
    (paths.release("2021-Q1") / "manifest.json").write_text("{")
    (paths.release("2022-Q1") / "manifest.json").unlink()
    manifest = pub.read_manifest(paths.release("2019-Q1"))
    validation = manifest.files["validation.json"]
    expected_sha = pub.read_manifest(paths.release("2020-Q1")).files["findings.parquet"].sha256
    found_sha = hashlib.sha256(bytes(body)).hexdigest()
    assert doctor.check(data) == [
        Problem(paths.release("2019-Q1") / "validation.json",
                f"missing: the manifest lists it ({validation.bytes} bytes)", "2019-Q1",
                _refetch_fix(data, "2019-Q1", "synthetic://2019-Q1")),
        Problem(findings, f"wrong sha256: manifest {expected_sha}, found {found_sha}", "2020-Q1",
                _refetch_fix(data, "2020-Q1", "synthetic://2020-Q1")),
        Problem(paths.release("2021-Q1") / "manifest.json",
                "not a valid release manifest (Expecting property name enclosed in double "
                "quotes: line 1 column 2 (char 1))", "2021-Q1",
                _refetch_fix(data, "2021-Q1", "<its URL or file>")),
        Problem(paths.release("2022-Q1") / "manifest.json",
                "missing: every published release folder has one", "2022-Q1",
                _refetch_fix(data, "2022-Q1", "<its URL or file>")),
    ]
    with publish_lock(data):
        moved = doctor.quarantine(data, doctor.check(data))
    assert [p.name for p in moved] == [f"release={r}" for r in
                                      ("2019-Q1", "2020-Q1", "2021-Q1", "2022-Q1")]
    assert list(paths.releases.iterdir()) == []


def test_the_fix_says_where_a_release_comes_back_from(data: Path) -> None:
    raw = _stored(data, "2019-Q1").path
    manifest = DataDir(data).release("2019-Q1") / "manifest.json"
    manifest.rename(manifest.with_name("manifest.json.old"))
    [problem] = doctor.check(data)  # no manifest: the raw store's file of that release id
    assert problem.fix == (f"{REPAIR} (moves release=2019-Q1 to {data / 'quarantine'}); the "
                           f"next run derives it again from {raw}")
    manifest.with_name("manifest.json.old").rename(manifest)
    codes = DataDir(data).release("2019-Q1") / "codes.parquet"
    codes_size = codes.stat().st_size
    codes.write_bytes(b"")
    raw.write_bytes(b"not what was fetched\n")  # the raw store's own check names it too
    url = "https://cms.example/2019-Q1.zip"
    found = hashlib.sha256(b"not what was fetched\n").hexdigest()
    assert doctor.check(data) == [
        Problem(codes, f"wrong size: manifest {codes_size} bytes, found 0", "2019-Q1",
                _refetch_fix(data, "2019-Q1", url)),
        Problem(raw, f"bytes changed since they were stored: sha256 {found}, expected "
                f"{raw.stem}", None, f"hcpcs run --source {url} (fetches it again)")]
    raw.unlink()
    release, lost = doctor.check(data)
    assert release.fix == _refetch_fix(data, "2019-Q1", url)
    assert lost == Problem(
        raw.with_suffix(".json"), f"sidecar without its file {raw.name} (an interrupted fetch)",
        None, "not listed (fetch the release again to restore the entry, or restore it from a "
        "backup)")


def test_an_invalid_manifest_names_its_file_and_what_to_do(data: Path) -> None:
    where = DataDir(data).release("2019-Q1") / "manifest.json"
    where.write_text('{"release_id": "2019-Q1"')
    with pytest.raises(ManifestError) as err:
        pub.published_releases(data)
    assert str(err.value) == (
        f"{where}: not a valid release manifest (Expecting ',' delimiter: line 1 column 25 "
        f"(char 24)); `{REPAIR}` quarantines the release so the next run derives it again from "
        "its raw file")


def test_unopenable_database_is_quarantined_and_one_in_use_is_not(data: Path) -> None:
    db = DataDir(data).database
    holder = subprocess.Popen(  # an analyst's read-write session holds the file's lock
        [sys.executable, "-c", f"import duckdb, time\ncon = duckdb.connect({str(db)!r})\n"
                               "print('open', flush=True)\ntime.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        assert doctor.check(data) == []
    finally:
        holder.kill()
        holder.wait()

    db.write_bytes(b"not a database" * 1000)
    wal = db.with_name(f"{DB_NAME}.wal")
    wal.write_bytes(b"a stale write-ahead log")
    assert doctor.check(data) == [Problem(
        db, f'cannot be read: IO Error: The file "{db}" exists, but it is not a valid DuckDB '
        "database file!", None,
        f"{REPAIR} (moves it to {data / 'quarantine'}; the next run rebuilds it from the "
        "published Parquet)")]
    with publish_lock(data):
        moved = doctor.quarantine(data, doctor.check(data))
    assert sorted(p.name for p in moved) == [DB_NAME, f"{DB_NAME}.wal"]
    assert not db.exists() and not wal.exists()
    assert history.rebuild(data).releases == 2
    assert history.database_is_current(data) and doctor.check(data) == []


def test_leftovers_of_killed_writes_are_listed_and_swept(data: Path) -> None:
    paths = DataDir(data)
    aside = paths.releases / ".release=2021-Q1.tmp-k3j2"
    aside.mkdir()
    (aside / "codes.parquet").write_bytes(b"half")
    build = data / f".{DB_NAME}.tmp-4242"
    build.write_bytes(b"half a database")
    scratch = data / ".tmp" / "releases-x1y2"
    scratch.mkdir(parents=True)
    (scratch / "releases.parquet").write_bytes(b"half")
    stale = paths.reports / ".last_run.json.a1b2.tmp"
    young = data / ".waivers.json.c3d4.tmp"  # may be a write in progress: not touched
    kept = data / "quarantine" / "20260101T000000.000000Z" / ".codes.parquet.e5f6.tmp"
    for path in (stale, young, kept):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    hours_ago = time.time() - 2 * 3600
    for path in (stale, kept):
        os.utime(path, (hours_ago, hours_ago))
    download = paths.raw / ".tmp" / "fetch-x9.part"  # a fetch killed mid-download
    download.parent.mkdir()
    download.write_bytes(b"half a zip")
    found = sorted([build, scratch, aside, stale])
    assert doctor.check(data) == [
        Problem(download, "download left by an interrupted fetch (removed at the start of the "
                "next run)", None, f"{REPAIR} (removes it)"),
        *(Problem(p, "leftover of an interrupted write", None, f"{REPAIR} (removes it)")
          for p in found)]
    with publish_lock(data):
        assert doctor.sweep(data) == [*found, download]
    assert not any(p.exists() for p in [*found, download])
    assert young.exists() and kept.exists()
    assert doctor.check(data) == []


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask-022", "umask-027"])
def test_published_files_are_as_readable_as_the_umask_says(tmp_path: Path, umask: int) -> None:
    before = os.umask(umask)
    try:
        data = tmp_path / "data"
        for release_id in ROWS:
            _publish_stored(data, release_id)
        history.rebuild(data)
        atomic_write_bytes(data / "note.json", b"{}")
        made = Path(tempfile.mkdtemp(dir=tmp_path))  # 0700 whatever the umask, until...
        readable_mode(made)
    finally:
        os.umask(before)
    paths = DataDir(data)
    file_mode, dir_mode = 0o666 & ~umask, 0o777 & ~umask
    published = [paths.history_parquet, paths.changes_parquet, paths.database,
                 data / "note.json"]
    for release_id in ROWS:
        folder = paths.release(release_id)
        assert folder.stat().st_mode & 0o777 == dir_mode, folder
        published += list(folder.iterdir())
    assert len(published) == 4 + 2 * 8
    assert made.stat().st_mode & 0o777 == dir_mode
    assert {p.name: p.stat().st_mode & 0o777 for p in published} == {
        p.name: file_mode for p in published}


def test_a_data_dir_whose_path_looks_like_a_glob(tmp_path: Path) -> None:
    data = tmp_path / "x[1]" / "data"
    for release_id in ROWS:
        assert _publish_stored(data, release_id).status == "published"
    assert pub.load_codes(data, "2019-Q1").equals(codes_frame(ROWS["2019-Q1"]))
    summary = history.rebuild(data)
    assert (summary.releases, summary.codes, summary.changes_by_type) == (2, 6, {"added": 1,
                                                                                 "dropped": 1})
    assert doctor.check(data) == []


def test_invalid_json_names_the_file_and_what_to_do(data: Path) -> None:
    paths = DataDir(data)
    validation = paths.release("2020-Q1") / "validation.json"
    validation.write_text("{")
    with pytest.raises(DamagedFileError) as err:
        history.rebuild(data)
    assert str(err.value) == (f"{validation}: cannot be read (Expecting property name enclosed "
                              f"in double quotes: line 1 column 2 (char 1)); {HINT}")

    paths.waivers.write_text("[{")
    with pytest.raises(WaiverError) as err:
        read_waivers(data)
    assert str(err.value) == (
        f"{paths.waivers}: not a readable waivers file (Expecting property name enclosed in "
        "double quotes: line 1 column 3 (char 2)); correct it by hand (a JSON list of waivers "
        "as `hcpcs accept` writes them), or move it away to drop every waiver")

    paths.last_run.parent.mkdir(parents=True, exist_ok=True)
    paths.last_run.write_bytes(b"")
    with pytest.raises(RunReportError) as err:
        last_run(data)
    assert str(err.value) == (
        f"{paths.last_run}: unreadable run report (Expecting value: line 1 column 1 (char 0)); "
        f"the next `hcpcs run` writes a new one (earlier reports are in {paths.runs})")
    paths.last_run.write_text('{"flow": "refresh"}')
    with pytest.raises(RunReportError, match=r"unreadable run report .*missing 3 required"):
        last_run(data)


def test_every_run_heals_and_doctor_repair_heals_on_demand(tmp_path: Path) -> None:
    """The demo, published; a truncated codes.parquet is named by `hcpcs doctor`, and the next
    `hcpcs run` (not "nothing new") quarantines it and publishes the release again from its raw
    file; a missing findings.parquet is healed the same way by `hcpcs doctor --repair`."""
    from flows.cli import app
    from tests.test_flows import hcpcs, query, runner

    data = tmp_path / "data"
    assert hcpcs("run", "--data-dir", str(data))[0] == 0
    folder = DataDir(data).release("2024-Q2")
    codes = folder / "codes.parquet"
    good = codes.read_bytes()
    codes.write_bytes(good[: len(good) // 2])

    found = runner.invoke(app, ["doctor", "--data-dir", str(data)])
    assert found.exit_code == 1
    assert found.stdout.splitlines()[0].startswith(
        f"{codes}: wrong size: manifest {len(good)} bytes, found {len(good) // 2} (fix: {REPAIR}")
    code, run = hcpcs("run", "--data-dir", str(data))
    assert code == 0, run
    assert run["healed"] == [f"{codes}: wrong size: manifest {len(good)} bytes, found "
                             f"{len(good) // 2}; quarantined; derived again from the raw store"]
    assert [(r["release_id"], r["status"]) for r in run["releases"]
            if r["status"] != "unchanged"] == [("2024-Q2", "published")]
    assert codes.read_bytes() == good  # the same bytes as first published
    [kept] = (data / "quarantine").glob("*/release=2024-Q2/codes.parquet")
    assert kept.stat().st_size == len(good) // 2  # never deleted
    assert runner.invoke(app, ["doctor", "--data-dir", str(data)]).exit_code == 0

    (DataDir(data).release("2025-Q1") / "findings.parquet").unlink()
    repaired = runner.invoke(app, ["doctor", "--repair", "--data-dir", str(data)])
    assert repaired.exit_code == 0, repaired.output
    assert "2025-Q1    published" in repaired.stdout
    assert (DataDir(data).release("2025-Q1") / "findings.parquet").exists()
    assert query(data, "SELECT count(*) FROM releases") == [(9,)]
