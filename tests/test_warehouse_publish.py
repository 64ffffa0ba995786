"""Publishing: manifest, immutability, revisions, fault injection, kill mid-publish, the lock."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from contracts.paths import DataDir
from contracts.release import ReleaseFile
from tests.warehouse_synth import codes_frame, empty_rejects, no_findings, publish
from warehouse import database, history, views
from warehouse import publish as pub
from warehouse.lock import LockBusyError, publish_lock

ROOT = Path(__file__).resolve().parents[1]
ROWS = [
    {"code": "A1"},
    {"code": "A0001"},
    {"code": "A0002", "pricing_indicators": ["11", "21"]},
]


def _tree(path: Path) -> dict[str, bytes]:
    """Every published file under ``path`` with its bytes (aside ``.*`` entries excluded)."""
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    }


def test_manifest_lists_every_file_with_sha256_and_rows(tmp_path: Path) -> None:
    result = publish(tmp_path, "2019-Q1", codes_frame(ROWS))
    assert result.status == "published"
    assert result.path == tmp_path / "parquet/releases/release=2019-Q1"
    tables = ["codes.parquet", "findings.parquet", "reconciliation.parquet", "rejects.parquet",
              "repairs.parquet", "transactions.parquet"]
    assert sorted(p.name for p in result.path.iterdir()) == sorted(
        [*tables, "manifest.json", "validation.json"])
    m = json.loads((result.path / "manifest.json").read_text())
    assert m["release_id"] == "2019-Q1" and m["quarter"] == "2019-Q1" and m["revision"] == 1
    assert m["source_url"] == "synthetic://2019-Q1"
    assert m["member_name"] == "HCPC_2019-Q1.txt"
    assert len(m["raw_sha256"]) == 64
    assert m["counts"] == {"codes": 3, "procedures": 2, "modifiers": 1, "rejects": 0,
                           "findings": 0, "repairs": 0, "differences": 0, "vanished": 0,
                           "transactions": 0}
    assert m["schema_version"] == pub.SCHEMA_VERSION
    assert m["schema_fingerprint"] == pub.schema_fingerprint()
    assert m["pipeline_version"] == pub.pipeline_version()
    assert sorted(m["files"]) == [*tables, "validation.json"]
    for name, entry in m["files"].items():
        data = (result.path / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
    assert m["files"]["codes.parquet"]["rows"] == 3
    assert m["files"]["rejects.parquet"]["rows"] == 0
    assert pub.load_codes(tmp_path, "2019-Q1").equals(codes_frame(ROWS))


def test_republish_is_byte_identical_and_same_input_is_unchanged(tmp_path: Path) -> None:
    a = publish(tmp_path / "a", "2019-Q1", codes_frame(ROWS))
    b = publish(tmp_path / "b", "2019-Q1", codes_frame(ROWS))
    assert _tree(a.path) == _tree(b.path)  # Parquet, JSON and manifest: every byte
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in a.path.iterdir()}
    again = publish(tmp_path / "a", "2019-Q1", codes_frame(ROWS))
    assert again.status == "unchanged"
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in a.path.iterdir()} == before


def test_different_zip_for_a_published_id_is_refused(tmp_path: Path) -> None:
    publish(tmp_path, "2019-Q1", codes_frame(ROWS))
    with pytest.raises(pub.PublishError, match=r"2019-Q1 is already published .* 2019-Q1r2"):
        publish(tmp_path, "2019-Q1", codes_frame(ROWS[:2]))


def test_bad_release_id_and_wrong_schema_are_refused(tmp_path: Path) -> None:
    with pytest.raises(pub.PublishError, match="invalid release id '2019Q1': expected YYYY-Qn"):
        publish(tmp_path, "2019Q1", codes_frame(ROWS))
    with pytest.raises(pub.PublishError, match=r"missing \['betos'\]"):
        publish(tmp_path, "2019-Q1", codes_frame(ROWS).drop("betos"))
    assert not (tmp_path / "parquet/releases/release=2019-Q1").exists()


def test_release_order_and_previous_release(tmp_path: Path) -> None:
    for rid in ["2026-Q1r2", "2019-Q1", "2026-Q1", "2025-Q4", "2026-Q1r10"]:
        publish(tmp_path, rid, codes_frame(ROWS))
    ids = [m.release_id for m in pub.published_releases(tmp_path)]
    assert ids == ["2019-Q1", "2025-Q4", "2026-Q1", "2026-Q1r2", "2026-Q1r10"]
    assert pub.effective_release_ids(pub.published_releases(tmp_path)) == [
        "2019-Q1", "2025-Q4", "2026-Q1r10"]
    assert pub.previous_release(tmp_path, "2026-Q1") == "2025-Q4"
    assert pub.previous_release(tmp_path, "2026-Q1r2") == "2026-Q1"
    assert pub.previous_release(tmp_path, "2026-Q2") == "2026-Q1r10"
    assert pub.previous_release(tmp_path, "2019-Q1") is None


def test_revision_supersedes_without_deleting(tmp_path: Path) -> None:
    publish(tmp_path, "2025-Q4", codes_frame([{"code": "A0001"}]))
    publish(tmp_path, "2026-Q1", codes_frame([{"code": "A0001"}, {"code": "A0002"}]))
    publish(tmp_path, "2026-Q1r2", codes_frame([{"code": "A0001"}, {"code": "A0003",
                                                 "action_code": "A"}]))
    summary = history.rebuild(tmp_path)
    assert (summary.releases, summary.effective_releases, summary.codes) == (3, 2, 5)
    with duckdb.connect(str(tmp_path / history.DB_NAME), read_only=True) as con:
        assert con.sql("SELECT release_id, effective, history_seq, superseded_by FROM releases "
                       "ORDER BY release_order").fetchall() == [
            ("2025-Q4", True, 1, None), ("2026-Q1", False, None, "2026-Q1r2"),
            ("2026-Q1r2", True, 2, None)]
        assert con.sql("SELECT code FROM codes_current ORDER BY code").fetchall() == [
            ("A0001",), ("A0003",)]
        assert con.sql("SELECT release_id, previous_release_id, code, change_type, action_agrees "
                       "FROM code_changes").fetchall() == [
            ("2026-Q1r2", "2025-Q4", "A0003", "added", True)]
    assert (tmp_path / "parquet/releases/release=2026-Q1/codes.parquet").exists()


def _failing(real, fail_at: int):
    """``real`` failing with an injected OSError on its call number ``fail_at`` (0-based)."""
    calls = []

    def write(*args, **kwargs):
        calls.append(args)
        if len(calls) - 1 == fail_at:
            raise OSError("disk full (injected)")
        return real(*args, **kwargs)

    return write


def test_failure_between_steps_leaves_last_good_state(tmp_path: Path, monkeypatch) -> None:
    good = publish(tmp_path, "2019-Q1", codes_frame(ROWS))
    history.rebuild(tmp_path)
    db = tmp_path / history.DB_NAME
    before, db_before = _tree(tmp_path / "parquet"), db.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full (injected)")

    # codes, rejects (write_parquet); validation.json, manifest.json (atomic_write_bytes)
    for writer, calls in (("write_parquet", 2), ("atomic_write_bytes", 2)):
        for fail_at in range(calls):  # fail at each write of the publish in turn
            with monkeypatch.context() as m:
                m.setattr(pub, writer, _failing(getattr(pub, writer), fail_at))
                with pytest.raises(OSError, match="injected"):
                    publish(tmp_path, "2020-Q1", codes_frame(ROWS[:2]))
            assert _tree(tmp_path / "parquet") == before
            assert sorted(p.name for p in good.path.parent.iterdir()) == ["release=2019-Q1"]
    with monkeypatch.context() as m:  # and inside the manifest write
        m.setattr(pub, "_manifest", boom)
        with pytest.raises(OSError, match="injected"):
            publish(tmp_path, "2020-Q1", codes_frame(ROWS[:2]))
    assert _tree(tmp_path / "parquet") == before

    publish(tmp_path, "2020-Q1", codes_frame(ROWS[:2]))
    parquet_after_publish = _tree(tmp_path / "parquet")
    for module, target in ((views, "create_views"), (database, "comment_all")):
        with monkeypatch.context() as m:  # DuckDB rebuild fails half-way
            m.setattr(module, target, boom)
            with pytest.raises(OSError, match="injected"):
                history.rebuild(tmp_path)
        assert db.read_bytes() == db_before
        assert _tree(tmp_path / "parquet") == parquet_after_publish
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".hcpcs")] == []
    assert history.rebuild(tmp_path).releases == 2


KILL_SCRIPT = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.warehouse_synth import codes_frame, publish
from warehouse import publish as pub, history, database
marker = Path({marker!r})
def pause(*a, **k):
    marker.write_text("paused")
    time.sleep(120)
setattr({module}, {target!r}, pause)
{call}
"""


def _run_and_kill(tmp_path: Path, module: str, target: str, call: str) -> None:
    marker = tmp_path / "marker"
    script = KILL_SCRIPT.format(root=str(ROOT), marker=str(marker), module=module,
                                target=target, call=call)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        for _ in range(600):
            if marker.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert marker.exists(), f"child never reached the pause (exit {proc.poll()})"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_kill_mid_publish_and_mid_rebuild_leaves_last_good_state(tmp_path: Path) -> None:
    data = tmp_path / "data"
    publish(data, "2019-Q1", codes_frame(ROWS))
    history.rebuild(data)
    db = data / history.DB_NAME
    db_before, parquet_before = db.read_bytes(), _tree(data / "parquet")

    _run_and_kill(tmp_path, "pub", "write_parquet",
                  f"publish(Path({str(data)!r}), '2020-Q1', codes_frame([{{'code': 'A0001'}}]))")
    assert [m.release_id for m in pub.published_releases(data)] == ["2019-Q1"]
    leftovers = [p.name for p in DataDir(data).releases.iterdir() if p.name.startswith(".")]
    assert len(leftovers) == 1 and leftovers[0].startswith(".release=2020-Q1.tmp-")
    assert db.read_bytes() == db_before

    (tmp_path / "marker").unlink()
    _run_and_kill(tmp_path, "database", "comment_all",
                  f"history.rebuild(Path({str(data)!r}))")
    assert db.read_bytes() == db_before  # the half-built database never replaced the good one
    assert _tree(data / "parquet") == parquet_before
    aside = {p.name.removesuffix(".wal") for p in data.iterdir()
             if p.name.startswith(f".{history.DB_NAME}.tmp-")}
    assert len(aside) == 1  # the killed build's file (and its WAL), swept by the next rebuild

    # The kernel released the lock with the killed process: the next run just works and sweeps.
    assert publish(data, "2020-Q1", codes_frame([{"code": "A0001"}])).status == "published"
    assert sorted(p.name for p in DataDir(data).releases.iterdir()) == [
        "release=2019-Q1", "release=2020-Q1"]
    assert history.rebuild(data).releases == 2
    assert [p.name for p in data.iterdir() if ".tmp-" in p.name] == []


def _entries(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


def test_a_rebuild_writes_only_its_outputs_even_when_killed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB reads the published Parquet itself and is given every other table as SQL: no
    scratch file anywhere. Killed once every table is built, a rebuild leaves only its database
    file aside (which the next one sweeps); done, it adds only the database and its Parquet."""
    data = tmp_path / "data"
    publish(data, "2019-Q1", codes_frame(ROWS))
    published = _entries(data)
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_tmp))
    _run_and_kill(tmp_path, "database", "comment_all", f"history.rebuild(Path({str(data)!r}))")
    left = _entries(data) - published  # the build's file (and its WAL, if any)
    assert {name.split(".tmp-")[0] for name in left} == {f".{history.DB_NAME}"}
    assert list(system_tmp.iterdir()) == []
    history.rebuild(data)
    assert _entries(data) - published == {
        history.DB_NAME, "parquet/history", "parquet/history/code_history.parquet",
        "parquet/changes", "parquet/changes/code_changes.parquet"}


def test_second_publisher_gets_a_clear_lock_error(tmp_path: Path) -> None:
    marker = tmp_path / "holding"
    script = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r})\n"
              "from pathlib import Path\nfrom warehouse.lock import publish_lock\n"
              f"with publish_lock(Path({str(tmp_path)!r})):\n"
              f"    Path({str(marker)!r}).write_text('x'); time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        for _ in range(600):
            if marker.exists():
                break
            time.sleep(0.05)
        lock_file = (tmp_path / ".publish.lock").resolve()
        with pytest.raises(LockBusyError) as err:
            publish(tmp_path, "2019-Q1", codes_frame(ROWS))
        assert str(err.value) == (f"another publisher holds {lock_file} (pid {proc.pid}); "
                                  "wait for it to finish, then run again")
        with pytest.raises(LockBusyError, match=f"pid {proc.pid}"):
            history.rebuild(tmp_path)
        assert not (tmp_path / "parquet/releases/release=2019-Q1").exists()
    finally:
        proc.kill()
        proc.wait()
    with publish_lock(tmp_path), publish_lock(tmp_path):  # free again; re-entrant in-process
        assert publish(tmp_path, "2019-Q1", codes_frame(ROWS)).status == "published"


def test_rejects_are_published(tmp_path: Path) -> None:
    rejects = pl.DataFrame(
        {"line": [7], "code": ["A0009"], "reason": ["bad sequence"], "text": ["A000900300"]},
        schema=empty_rejects().schema,
    )
    codes = codes_frame(ROWS)
    r = pub.publish_release(tmp_path, file=ReleaseFile("2019-Q1", "", sha256="ab" * 32),
                            codes=codes, rejects=rejects, validation=no_findings("2019-Q1", codes))
    m = json.loads((r.path / "manifest.json").read_text())
    assert m["counts"]["rejects"] == 1 and m["files"]["rejects.parquet"]["rows"] == 1
    assert m["source_url"] is None
