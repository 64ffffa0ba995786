"""The raw store trusts nothing it did not write: links, changed bytes and broken sidecars.

Real files in a temporary data directory: a release is fetched into the store, then the store is
damaged the way a mistake or an attacker would (a symbolic link planted in place of a stored ZIP,
bytes overwritten, a sidecar cut short, a download left behind) and the store must refuse to use
the damage, say where it is, and heal when the genuine bytes are fetched again.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.errors import TerminalError
from sources.fetch import fetch
from sources.rawstore import RawStore, RawStoreError
from tests.test_sources_fetch import (
    FAST,
    GOOD,
    GOOD_V2,
    ZIP_PATH,
    respond,
)

SHA = hashlib.sha256(GOOD).hexdigest()
TAMPERED_SHA = hashlib.sha256(GOOD_V2).hexdigest()
REFETCH = "fetch the release again to restore the entry, or restore it from a backup"


@pytest.fixture
def store(tmp_path: Path) -> RawStore:
    return RawStore(tmp_path / "data" / "raw")


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """A release ZIP handed over as a local file."""
    path = tmp_path / "incoming" / "january-2024-alpha-numeric-hcpcs-file.zip"
    path.parent.mkdir()
    path.write_bytes(GOOD)
    return path


@pytest.fixture
def other_release(tmp_path: Path) -> Path:
    path = tmp_path / "incoming" / "july-2023-alpha-numeric-hcpcs-file.zip"
    path.write_bytes(GOOD_V2)
    return path


def test_a_symlink_planted_in_place_of_a_stored_zip_is_never_followed(
    store, release, tmp_path
) -> None:
    stored = fetch(str(release), store)
    forged = tmp_path / "forged.zip"
    forged.write_bytes(GOOD_V2)  # other content, to be published under the genuine sha256
    stored.path.unlink()
    stored.path.symlink_to(forged)
    link = (
        f"{stored.path}: a symbolic link in place of a stored file; not read (remove the link, "
        "then fetch the release again)"
    )
    assert store.list() == []
    assert store.check() == [link]
    with pytest.raises(RawStoreError) as err:
        store.verify(stored)
    assert str(err.value) == link
    assert isinstance(err.value, TerminalError)
    healed = fetch(str(release), store)  # the genuine bytes replace the link
    assert (healed.release_id, healed.path, healed.fetched_at) == (
        "2024-Q1", stored.path, stored.fetched_at
    )  # fmt: skip
    assert not healed.path.is_symlink() and healed.path.read_bytes() == GOOD
    assert forged.read_bytes() == GOOD_V2  # the link's target is left alone
    assert store.check() == []


def test_a_symlinked_quarter_folder_is_not_read(store, release, tmp_path) -> None:
    stored = fetch(str(release), store)
    elsewhere = tmp_path / "elsewhere"
    stored.path.parent.rename(elsewhere)
    stored.path.parent.symlink_to(elsewhere)
    link = (
        f"{stored.path.parent}: a symbolic link in place of a quarter folder; not read (remove "
        "the link, then fetch the release again)"
    )
    assert store.list() == []
    assert store.check() == [link]
    with pytest.raises(RawStoreError) as err:
        store.verify(stored)
    assert str(err.value) == link


def test_bytes_changed_in_place_are_caught_on_read_and_restored_by_a_fetch(
    store, release
) -> None:
    stored = fetch(str(release), store)
    os.chmod(stored.path, 0o644)
    stored.path.write_bytes(GOOD_V2)
    changed = (
        f"{stored.path}: bytes changed since they were stored: sha256 {TAMPERED_SHA}, expected "
        f"{SHA}; {REFETCH}"
    )
    assert [z.sha256 for z in store.list()] == [SHA]  # list() trusts names; verify() does not
    with pytest.raises(RawStoreError) as err:
        store.verify(stored)
    assert str(err.value) == changed
    assert store.check() == [changed]
    assert store.find(SHA) is None  # damaged bytes are never reused
    healed = fetch(str(release), store)
    assert (healed.release_id, healed.fetched_at) == ("2024-Q1", stored.fetched_at)
    assert healed.path.read_bytes() == GOOD
    store.verify(healed)
    assert store.check() == []


SIDECAR_DAMAGE = {
    "invalid-json": (
        b'{"quarter": "2024-Q1", ',
        "sidecar is not valid JSON (Expecting property name enclosed in double quotes: line 1 "
        "column 24 (char 23))",
    ),
    "not-an-object": (b"[]", "sidecar is not a JSON object"),
    "missing-fields": (b'{"quarter": "2024-Q1"}', "sidecar lacks sha256, file, size, source_url, "
                       "member_name, fetched_at"),
    "points-elsewhere": (None, "sidecar describes '../../../etc/passwd' of 2024-Q1, not a file "
                         "beside it"),
}  # fmt: skip


@pytest.mark.parametrize("damage", list(SIDECAR_DAMAGE))
def test_a_broken_sidecar_hides_its_entry_only(store, release, other_release, damage) -> None:
    broken = fetch(str(release), store)
    kept = fetch(str(other_release), store)
    sidecar = broken.path.with_suffix(".json")
    text, what = SIDECAR_DAMAGE[damage]
    if text is None:
        meta = json.loads(sidecar.read_text())
        text = json.dumps({**meta, "file": "../../../etc/passwd"}).encode()
    sidecar.write_bytes(text)
    assert [z.release_id for z in store.list()] == [kept.release_id]  # one bad entry, not all
    assert store.check() == [f"{sidecar}: {what}; {REFETCH}"]
    healed = fetch(str(release), store)  # the genuine bytes again: a fresh sidecar
    assert (healed.release_id, healed.sha256) == ("2024-Q1", SHA)
    assert store.check() == []


def test_a_sidecar_without_its_file_and_a_file_without_its_sidecar(
    store, release, other_release
) -> None:
    lost_file = fetch(str(release), store)
    lost_sidecar = fetch(str(other_release), store)
    lost_file.path.unlink()
    lost_sidecar.path.with_suffix(".json").unlink()
    assert store.list() == []
    assert store.check() == [
        f"{lost_sidecar.path}: stored file without its sidecar; not listed ({REFETCH})",
        f"{lost_file.path.with_suffix('.json')}: sidecar without its file {lost_file.path.name} "
        f"(an interrupted fetch); not listed ({REFETCH})",
    ]


def test_invalid_http_json_is_an_error_naming_it(server, store) -> None:
    server.routes[ZIP_PATH] = [respond("200 OK", GOOD, {"ETag": '"v1"'})]
    fetch(server.url(ZIP_PATH), store, settings=FAST)
    record = store.root / "http.json"
    record.write_text('{"http://x": ')
    expected = (
        f"{record}: the conditional-request record is not valid JSON (Expecting value: line 1 "
        "column 14 (char 13)); delete it: it only remembers ETags for conditional requests, and "
        "is rebuilt"
    )
    with pytest.raises(RawStoreError) as err:
        fetch(server.url(ZIP_PATH), store, settings=FAST)
    assert str(err.value) == expected
    assert store.check() == [expected]
    record.unlink()
    assert fetch(server.url(ZIP_PATH), store, settings=FAST).status == "unchanged"


def test_sweep_removes_interrupted_downloads_but_not_a_running_one(store) -> None:
    stale = store.tmp_dir / "fetch-crashed.part"
    stale.write_bytes(GOOD[:100])
    with store.incoming() as running:
        running.write_bytes(GOOD[:50])
        assert store.check() == [
            f"{stale}: download left by an interrupted fetch (removed at the start of the next run)"
        ]
        assert store.sweep_tmp() == [stale]
        assert not stale.exists() and running.read_bytes() == GOOD[:50]
    assert not running.exists()
    assert store.sweep_tmp() == [] and store.check() == []


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    yield
    os.umask(old)


def test_stored_files_are_readable_like_the_database(server, store, umask_027) -> None:
    server.routes[ZIP_PATH] = [respond("200 OK", GOOD, {"ETag": '"v1"'})]
    stored = fetch(server.url(ZIP_PATH), store, settings=FAST)
    modes = {
        str(p.relative_to(store.root)): stat.S_IMODE(p.stat().st_mode)
        for p in [stored.path, stored.path.with_suffix(".json"), store.root / "http.json",
                  stored.path.parent, store.root / ".tmp"]
    }  # fmt: skip
    assert modes == {
        f"2024-Q1/{SHA}.zip": 0o640,
        f"2024-Q1/{SHA}.json": 0o640,
        "http.json": 0o640,
        "2024-Q1": 0o750,
        ".tmp": 0o750,
    }
