"""Every published file survives a power loss: its bytes are flushed before it is renamed into
place, and its folder after, so the rename itself is on the disk.

The calls are recorded, not replaced: ``os.fsync``, ``os.replace`` and ``os.rename`` run as
always, and each call is logged with the path its descriptor names (``/proc/self/fd``), in order.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from contracts.files import atomic_write_bytes, replacing_folder, write_parquet
from sources.rawstore import RawStore
from tests.warehouse_synth import codes_frame, publish
from warehouse import history

Event = tuple[str, ...]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    """The fsyncs and renames of the test, in order: ``("fsync", path)``, ``("rename", src,
    dst)`` (``os.replace`` and ``os.rename`` alike)."""
    log: list[Event] = []
    fsync, replace, rename = os.fsync, os.replace, os.rename

    def logged_fsync(fd: int) -> None:
        log.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    def logged(real):
        def move(src, dst, *args, **kwargs):
            log.append(("rename", str(src), str(dst)))
            return real(src, dst, *args, **kwargs)
        return move

    monkeypatch.setattr(os, "fsync", logged_fsync)
    monkeypatch.setattr(os, "replace", logged(replace))
    monkeypatch.setattr(os, "rename", logged(rename))
    return log


def assert_durable(calls: list[Event], final: Path) -> None:
    """``final`` was renamed into place from an aside name whose bytes were flushed before the
    rename, and its folder was flushed after it."""
    renames = [i for i, e in enumerate(calls) if e[0] == "rename" and e[2] == str(final)]
    assert renames, f"{final} was not renamed into place: {calls}"
    at = renames[-1]
    aside = calls[at][1]
    assert ("fsync", aside) in calls[:at], f"{aside} renamed to {final} unflushed: {calls}"
    assert ("fsync", str(final.parent)) in calls[at + 1:], (
        f"{final.parent} not flushed after the rename: {calls}")


@pytest.mark.parametrize("kind", ["polars", "arrow"])
def test_write_parquet_flushes_the_file_then_its_folder(tmp_path: Path, calls, kind) -> None:
    frame = pl.DataFrame({"code": ["S2107", "A4720"]})
    target = tmp_path / "out" / "codes.parquet"
    write_parquet(frame if kind == "polars" else frame.to_arrow(), target)
    assert_durable(calls, target)
    assert calls[0][1].startswith(str(target.parent / ".codes.parquet."))  # written aside
    assert pl.read_parquet(target)["code"].to_list() == ["S2107", "A4720"]


def test_atomic_write_bytes_flushes_the_file_then_its_folder(tmp_path: Path, calls) -> None:
    atomic_write_bytes(tmp_path / "manifest.json", b"{}\n")
    assert_durable(calls, tmp_path / "manifest.json")


def test_a_published_release_and_the_history_database_are_durable(tmp_path: Path,
                                                                    calls) -> None:
    result = publish(tmp_path, "2019-Q1", codes_frame([{"code": "S2107"}]))
    for table in ("codes", "rejects", "findings", "repairs", "reconciliation", "transactions"):
        aside = next(e[2] for e in calls if e[0] == "rename" and e[2].endswith(f"/{table}.parquet"))
        assert_durable(calls, Path(aside))
    assert_durable(calls, result.path)  # the release folder, flushed whole before its rename
    calls.clear()
    history.rebuild(tmp_path)
    assert_durable(calls, tmp_path / "hcpcs.duckdb")
    assert_durable(calls, tmp_path / "parquet" / "history" / "code_history.parquet")
    assert_durable(calls, tmp_path / "parquet" / "changes" / "code_changes.parquet")


def test_a_raw_file_kept_in_the_store_is_durable(tmp_path: Path, calls) -> None:
    download = tmp_path / "download.part"
    download.write_bytes(b"S2107 raw bytes")
    kept = RawStore(tmp_path / "raw").add(download, "2019-Q1", suffix=".txt",
                                          source_url="http://127.0.0.1/x.txt",
                                          member_name="x.txt")
    assert_durable(calls, kept.path)
    assert kept.path.read_bytes() == b"S2107 raw bytes"


def test_a_replaced_folder_is_flushed_after_its_rename(tmp_path: Path, calls) -> None:
    out = tmp_path / "export"
    for text in ("first", "second"):
        with replacing_folder(out) as tmp:
            (tmp / "a.txt").write_text(text)
        assert ("fsync", str(tmp_path)) in calls[-2:]
    assert (out / "a.txt").read_text() == "second"
