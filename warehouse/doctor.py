"""Check the data directory against its own records, and heal it without losing anything.

``check`` compares every published release folder with its ``manifest.json`` (each file's size and
sha256), opens ``hcpcs.duckdb``, adds the raw store's own ``RawStore.check``, and lists the
leftovers of killed writes. ``quarantine`` moves damaged release folders and a damaged database to
``data/quarantine/<UTC time>/`` (never deleted: an operator decides): the release is then no longer
published, so the next run derives it again from the raw store, whose file (the manifest's
``raw_sha256``) is the source of truth, and the database is rebuilt from the Parquet. ``sweep``
removes the leftovers, and the raw store's interrupted downloads.

What counts as a leftover: an aside folder of a publish (``.release=<id>.tmp-*``), a rebuild's
database (``.hcpcs.duckdb.tmp-*``) and scratch files (``.tmp/``) are only made under the publish
lock, so while the caller holds it they belong to a dead process; so are the raw store's and the
release folders' atomic-write aside files (``.<name>.<random>.tmp``). Elsewhere such a file may be
written without the lock (run reports, waivers), so it counts only once it is older than
``STALE_AFTER``.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from contracts.errors import TerminalError
from contracts.paths import DB_NAME, MANIFEST, DataDir
from contracts.release import Manifest, ManifestError, ReleaseFile
from sources.rawstore import RawStore, RawStoreError, sha256_file

REPAIR = "hcpcs doctor --repair"
#: Age after which an atomic write's aside file is taken for a dead writer's leftover.
STALE_AFTER = 3600.0  # seconds


class DamagedFileError(TerminalError):
    """A published file cannot be read; the message names it and says how to heal."""


def damaged(path: Path, exc: BaseException) -> DamagedFileError:
    """The error for the published file ``path`` failing to read with ``exc``."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DamagedFileError(
        f"{path}: cannot be read ({reason}); `hcpcs doctor` checks every published file against "
        f"its manifest, `{REPAIR}` quarantines what is damaged so the next run derives it again"
    )


def read_published(path: Path) -> pl.DataFrame:
    """A published Parquet file; its path is taken literally (a data directory under ``x[1]/``
    is not a glob pattern), and a damaged file is an error naming it."""
    try:
        return pl.read_parquet(path, glob=False)
    except (pl.exceptions.ComputeError, OSError) as exc:
        raise damaged(path, exc) from None


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a data directory, and the command that fixes it."""

    path: Path
    what: str  # one line: what was expected, what was found
    release_id: str | None  # the published release it damages, if any
    fix: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what} (fix: {self.fix})"


def check(data_dir: Path) -> list[Problem]:
    """Everything wrong in ``data_dir``: damaged releases, an unopenable database, leftovers."""
    paths = DataDir(data_dir)
    problems = [p for folder in sorted(paths.releases.glob("release=*")) if folder.is_dir()
                for p in _check_release(paths, folder)]
    problems += _check_database(paths)
    problems += _raw_problems(paths)
    problems += [Problem(p, "leftover of an interrupted write", None,
                         f"{REPAIR} (removes it)") for p in _leftovers(paths.root)]
    return problems


@dataclass(frozen=True)
class Healing:
    """What ``heal`` found and did."""

    problems: list[Problem]
    moved: list[Path]  # quarantined, under ``DataDir.quarantine``
    removed: list[Path]  # leftovers swept
    rederive: list[ReleaseFile]  # raw files of quarantined releases, with their published ids

    def lines(self) -> list[str]:
        """One line per problem, saying what was done about it."""
        again = {f.release_id for f in self.rederive}
        out = []
        for p in self.problems:
            if p.release_id in again:
                done = "quarantined; derived again from the raw store"
            elif p.path in self.removed:
                done = "removed"
            elif p.release_id or p.path.name == DB_NAME:
                done = f"quarantined (fix: {p.fix})"
            else:
                done = f"fix: {p.fix}"
            out.append(f"{p.path}: {p.what}; {done}")
        return out


def heal(data_dir: Path) -> Healing:
    """``check``, then quarantine what is damaged and sweep leftovers; the raw files to derive the
    quarantined releases from again. Call it holding the publish lock."""
    problems = check(data_dir)
    moved = quarantine(data_dir, problems)
    return Healing(problems, moved, sweep(data_dir), pending(data_dir))


def pending(data_dir: Path) -> list[ReleaseFile]:
    """Quarantined releases that are not published again yet, as the intact raw files to derive
    them from, under the ids they had (a release whose raw file is gone is not among them: its
    problem's fix says how to fetch it again)."""
    paths = DataDir(data_dir)
    published = {p.name for p in paths.releases.glob("release=*")}
    latest: dict[str, Path] = {}  # release folder name -> its newest quarantined copy
    for folder in sorted(paths.quarantine.glob("*/release=*")):
        if folder.name not in published:
            latest[folder.name] = folder
    found = []
    for name, folder in sorted(latest.items()):
        release_id = name.removeprefix("release=")
        try:
            manifest = Manifest.from_json((folder / MANIFEST).read_bytes(), str(folder))
        except (OSError, ManifestError):
            manifest = None
        raw = _raw_file(paths, release_id, manifest)
        if raw is not None:
            found.append(replace(raw, release_id=release_id))
    return found


def quarantine(data_dir: Path, problems: list[Problem]) -> list[Path]:
    """Move each damaged release folder, and a damaged database (with its WAL), to
    ``quarantine/<UTC time>/``; returns where they went. Call it holding the publish lock."""
    paths = DataDir(data_dir)
    targets = {paths.release(p.release_id) for p in problems if p.release_id}
    if any(p.path == paths.database for p in problems):
        targets |= {paths.database, paths.database.with_name(f"{DB_NAME}.wal")}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    moved = []
    for source in sorted(p for p in targets if p.exists()):
        target = paths.quarantine / stamp / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(source, target)
        moved.append(target)
    return moved


def sweep(data_dir: Path) -> list[Path]:
    """Remove the leftovers of killed writes, and the raw store's interrupted downloads; returns
    what was removed. Call it holding the publish lock (``warehouse.lock``), or a running publish
    loses its files."""
    paths = DataDir(data_dir)
    removed = _leftovers(paths.root)
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return [*removed, *RawStore(paths.raw).sweep_tmp()]


def _leftovers(data_dir: Path) -> list[Path]:
    """Files and folders that only a killed write leaves behind (see the module docstring)."""
    paths = DataDir(data_dir)
    locked = [*paths.releases.glob(".release=*.tmp-*"), *paths.root.glob(f".{DB_NAME}.tmp-*")]
    scratch = paths.scratch
    locked += scratch.iterdir() if scratch.is_dir() else []
    skip = (paths.quarantine, scratch, *locked)
    old = time.time() - STALE_AFTER
    under_lock = (paths.raw, paths.releases)  # written only by a run holding the lock
    aside = [p for p in paths.root.rglob(".*.tmp")
             if p.is_file() and not any(p.is_relative_to(s) for s in skip)
             and (any(p.is_relative_to(d) for d in under_lock) or p.stat().st_mtime < old)]
    return sorted([*locked, *aside])


def _check_release(paths: DataDir, folder: Path) -> list[Problem]:
    """The folder's files against its manifest: missing, wrong size, wrong sha256."""
    release_id = folder.name.removeprefix("release=")
    where = folder / MANIFEST
    try:
        manifest = Manifest.from_json(where.read_bytes(), str(where))
    except FileNotFoundError:
        return [Problem(where, "missing: every published release folder has one", release_id,
                        _release_fix(paths, release_id, None))]
    except ManifestError as exc:  # "<where>: <what>; <what to do>": the fix says what to do
        what = str(exc).removeprefix(f"{where}: ").rsplit("; ", 1)[0]
        return [Problem(where, what, release_id, _release_fix(paths, release_id, None))]
    except OSError as exc:
        return [Problem(where, f"cannot be read ({exc.strerror})", release_id,
                        _release_fix(paths, release_id, None))]
    found = [(folder / name, what) for name, entry in sorted(manifest.files.items())
             if (what := _file_fault(folder / name, entry.bytes, entry.sha256))]
    if not found:
        return []
    fix = _release_fix(paths, release_id, manifest)
    return [Problem(path, what, release_id, fix) for path, what in found]


def _file_fault(path: Path, size: int, sha256: str) -> str | None:
    """How ``path`` differs from its manifest entry (None: it matches); reads the file once."""
    if not path.is_file():
        return f"missing: the manifest lists it ({size} bytes)"
    found = path.stat().st_size
    if found != size:
        return f"wrong size: manifest {size} bytes, found {found}"
    digest = sha256_file(path)
    return None if digest == sha256 else f"wrong sha256: manifest {sha256}, found {digest}"


def _release_fix(paths: DataDir, release_id: str, manifest: Manifest | None) -> str:
    """Quarantine it; and if the raw store cannot give its file back, re-fetch it."""
    then = f"{REPAIR} (moves release={release_id} to {paths.quarantine})"
    raw = _raw_file(paths, release_id, manifest)
    if raw is not None:
        return f"{then}; the next run derives it again from {raw.path}"
    source = (manifest.source_url if manifest else None) or "<its URL or file>"
    return f"{then}, then hcpcs run --source {source} (its raw file is not in the raw store)"


def _raw_file(paths: DataDir, release_id: str, manifest: Manifest | None) -> ReleaseFile | None:
    """The intact raw store file the release was published from (by the manifest's
    ``raw_sha256``, or by id when the manifest is unreadable), or None."""
    store = RawStore(paths.raw)
    for z in store.list():
        if (z.sha256 == manifest.raw_sha256) if manifest else (z.release_id == release_id):
            try:
                store.verify(z)
            except RawStoreError:
                continue
            return z
    return None


def _raw_problems(paths: DataDir) -> list[Problem]:
    """The raw store's own check (``RawStore.check``: lines "<path>: <what>; <what to do>"), with
    the command that fetches a damaged file again when its sidecar names the URL."""
    store = RawStore(paths.raw)
    urls = {z.sha256: z.source_url for z in store.list()}
    root = str(paths.raw)
    problems = []
    for line in store.check():
        head, _, rest = line.removeprefix(root).partition(": ")
        what, _, todo = rest.rpartition("; ")
        path = Path(root + head)
        url = urls.get(path.name.split(".")[0])
        if not what:  # an interrupted download: "(removed at the start of the next run)"
            what, fix = rest, f"{REPAIR} (removes it)"
        else:
            fix = f"hcpcs run --source {url} (fetches it again)" if url else todo
        problems.append(Problem(path, what, None, fix))
    return problems


def _check_database(paths: DataDir) -> list[Problem]:
    """``hcpcs.duckdb`` opens and its ``releases`` table reads (absent: nothing to check; held
    by a writer elsewhere: not checked now)."""
    if not paths.database.exists():
        return []
    try:
        with duckdb.connect(str(paths.database), read_only=True) as con:
            con.execute("SELECT count(*) FROM releases").fetchall()
    except duckdb.Error as exc:
        if "Could not set lock" in str(exc):
            return []
        what = f"cannot be read: {str(exc).splitlines()[0]}"
        return [Problem(paths.database, what, None,
                        f"{REPAIR} (moves it to {paths.quarantine}; the next run "
                        "rebuilds it from the published Parquet)")]
    return []
