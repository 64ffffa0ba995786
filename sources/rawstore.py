"""The raw store: every release exactly as downloaded, kept forever, addressed by its sha256.

Layout under ``data/raw/``::

    <quarter>/<sha256>.zip    the bytes as fetched (``.txt`` / ``.xlsx`` / ``.xls`` for a bare data
                              file: the suffix keeps its format)
    <quarter>/<sha256>.json   provenance: source URL, data member name, first fetch time, size
                              (and ``report``: the transaction report kept beside a loose file)
    <quarter>/<sha256>.report.<xlsx|xls|txt|prn>
                              CMS's transaction report a bare data file was handed over with
                              (the file beside it in its folder); a ZIP keeps its own inside
    http.json                 per URL: ETag / Last-Modified / sha256 of the last 200, for 304s
    .tmp/                     downloads in progress (same filesystem, so the final move is atomic)

The sidecar is written before the ZIP is moved in: a ZIP's presence is the commit point, so a
crash leaves either nothing or a complete entry. Revision ids are not stored but derived on every
``list()`` from the sidecars (data member ``_vN``/``_MMDDYYYY`` rank, then first fetch time), so
the same files always give the same ids whatever order they arrived in. A kept report is a
companion: it is no part of the release's identity (the data file's sha256), its sidecar entry
names it with its own sha256, and it is re-hashed before it is read. Files are written
readable like any other file of the user (``0o666 & ~umask``), as the database is.

Damage is never followed, and never stops the whole store: ``list()`` leaves out what it cannot
trust (a symbolic link in place of a quarter folder, sidecar or file; a sidecar that is not valid
JSON or does not describe the file beside it; a sidecar without its file), so one bad entry does
not stop every run, and ``check()`` reports each one with its path, plus files without their
sidecar, files whose bytes no longer hash to their name, an unreadable ``http.json`` and stale
downloads. ``list()`` does not re-hash (it runs often); ``verify()`` does, before a file is
parsed, and ``find()`` does before stored bytes are reused. Fetching the genuine bytes again
restores a damaged entry (``add()`` replaces it). An invalid ``http.json`` is an error naming it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import BinaryIO

from contracts.errors import TerminalError
from contracts.files import atomic_write_bytes, fsync_path, readable_mode
from contracts.release import (
    REPORT_FORMATS,
    ReleaseFile,
    quarter_of,
    release_sort_key,
    revision_id,
)
from sources.archive import (
    DATA_FORMATS,
    MAX_MEMBER_BYTES,
    DataMember,
    file_format,
    member_rank,
    read_report_member,
)

SUFFIXES = (".zip", *DATA_FORMATS)
_SIDECAR_FIELDS = {
    "quarter": str, "sha256": str, "file": str, "size": int, "source_url": str,
    "member_name": str, "fetched_at": str,
}  # fmt: skip
#: The sidecar's optional ``report``: a kept report, or why the one handed over was not kept.
_REPORT_FIELDS = {"name": str, "sha256": str, "file": str, "size": int}
_REPORT_INFIX = ".report"  # <sha256>.report.xlsx: the report kept beside <sha256>.txt
_REFETCH = "fetch the release again to restore the entry, or restore it from a backup"
_UNLINK = "remove the link, then fetch the release again"


class RawStoreError(TerminalError):
    """A raw-store file that cannot be trusted or read; the message names it and says what to
    do."""


def _digest(fh: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := fh.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return _digest(fh)


def _json_bytes(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def _read_json(path: Path, what: str, fix: str) -> object:
    try:
        return json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RawStoreError(f"{path}: {what} is not valid JSON ({exc}); {fix}") from None


def _mismatch(path: Path, expected: str, actual: str) -> str:
    return (
        f"{path}: bytes changed since they were stored: sha256 {actual}, expected {expected}; "
        f"{_REFETCH}"
    )


def _link(path: Path, what: str) -> str:
    return f"{path}: a symbolic link in place of a {what}; not read ({_UNLINK})"


def _report_file(item: Path) -> bool:
    """Whether a raw-store file is a kept transaction report (``<sha256>.report.<format>``)."""
    return item.stem.endswith(_REPORT_INFIX) and item.suffix in REPORT_FORMATS


def _in_use(path: Path) -> bool:
    """Whether a running fetch holds ``path`` (its ``flock``, taken by ``RawStore.incoming``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # gone, or a link: not a download of ours
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _read_capped(path: Path, max_bytes: int) -> bytes:
    """A file handed over beside a release, refused past ``max_bytes`` or when unreadable."""
    try:
        if (size := path.stat().st_size) > max_bytes:
            raise RawStoreError(
                f"{path}: not kept: {size:,} bytes, over the {max_bytes:,}-byte cap")
        return path.read_bytes()
    except OSError as exc:
        raise RawStoreError(f"{path}: not kept: cannot be read ({exc.strerror})") from None


def _report_entry_ok(entry: object, sha: str) -> bool:
    """A sidecar's ``report``: a kept file named ``<sha>.report<format>``, or (``name``,
    ``error``) when the one handed over could not be kept."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        return False
    if "error" in entry:
        return isinstance(entry["error"], str)
    typed = all(isinstance(entry.get(k), kind) for k, kind in _REPORT_FIELDS.items())
    return typed and entry["file"] in [sha + _REPORT_INFIX + f for f in REPORT_FORMATS]


class RawStore:
    """Content-addressed, append-only store of release files under ``root`` (``data/raw``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def tmp_dir(self) -> Path:
        """Where downloads are streamed before they are verified and moved in."""
        path = self.root / ".tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @contextmanager
    def incoming(self) -> Iterator[Path]:
        """A new empty file in ``.tmp/`` for one download, locked (``flock``) while the caller
        holds it so ``sweep_tmp`` and ``check`` can tell it from debris; removed on exit unless
        ``add`` moved it in."""
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="fetch-", suffix=".part")
        path = Path(name)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield path
        finally:
            path.unlink(missing_ok=True)
            os.close(fd)

    def _stale(self) -> list[Path]:
        return [p for p in sorted(self.root.glob(".tmp/*.part")) if not _in_use(p)]

    def sweep_tmp(self) -> list[Path]:
        """Remove the downloads interrupted fetches left in ``.tmp/`` (a running fetch's file is
        kept); the files removed."""
        stale = self._stale()
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    def find(self, sha256: str) -> ReleaseFile | None:
        """The stored file with these bytes, whichever quarter holds it, if it is intact
        (re-hashed); None when absent or damaged (fetching it again restores it)."""
        for stored in self.list():
            if stored.sha256 == sha256:
                try:
                    self.verify(stored)
                except RawStoreError:
                    return None
                return stored
        return None

    def verify(self, file: ReleaseFile) -> None:
        """Re-hash a stored file: ``RawStoreError`` naming the path and both hashes when its bytes
        no longer match its sha256, or when it (or its folder) is a symbolic link. Call it
        before parsing: ``list()`` trusts the names."""
        path = Path(file.path or "")
        for place, what in ((path.parent, "quarter folder"), (path, "stored file")):
            if place.is_symlink():
                raise RawStoreError(_link(place, what))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise RawStoreError(f"{path}: cannot read ({exc.strerror}); {_REFETCH}") from None
        with os.fdopen(fd, "rb") as fh:
            actual = _digest(fh)
        if actual != file.sha256:
            raise RawStoreError(_mismatch(path, file.sha256, actual))

    def keep_report(
        self, file: ReleaseFile, report: Path, max_bytes: int = MAX_MEMBER_BYTES
    ) -> None:
        """Keep ``report``, the transaction report a bare data file was handed over with, beside
        the stored ``file`` and name it in its sidecar; a no-op when an intact one is kept (the
        first one kept stays). The release's identity does not change. A report that cannot be
        read is not kept: the sidecar says why (``transaction_report`` raises it), so the release
        still publishes, and fetching again tries again."""
        path = Path(file.path or "")
        sidecar_path = path.with_suffix(".json")
        meta = self._sidecar(sidecar_path)
        old = meta.get("report", {})
        if old.get("file") and self._intact(path.parent / old["file"], old["sha256"]):
            return
        name = f"{meta['sha256']}{_REPORT_INFIX}{report.suffix.lower()}"
        try:
            data = _read_capped(report, max_bytes)
        except RawStoreError as exc:
            meta["report"] = {"name": report.name, "error": str(exc)}
        else:
            atomic_write_bytes(path.parent / name, data)
            meta["report"] = {"name": report.name, "sha256": hashlib.sha256(data).hexdigest(),
                              "file": name, "size": len(data)}
        if old.get("file") and old["file"] != name:  # a damaged copy of another format
            (path.parent / old["file"]).unlink(missing_ok=True)
        atomic_write_bytes(sidecar_path, _json_bytes(meta))

    @staticmethod
    def _intact(path: Path, sha256: str) -> bool:
        return path.is_file() and not path.is_symlink() and sha256_file(path) == sha256

    def transaction_report(
        self, file: ReleaseFile, max_bytes: int = MAX_MEMBER_BYTES
    ) -> DataMember | None:
        """CMS's transaction report of a stored release: the member of its ZIP
        (``sources.archive.select_report``), else the report kept beside a bare data file
        (re-hashed); None when it has none. ``RawStoreError`` (or ``ArchiveError``) names a report
        that is damaged, missing, or was not kept."""
        path = Path(file.path or "")
        if file_format(path) == ".zip":
            return read_report_member(path, max_bytes)
        entry = self._sidecar(path.with_suffix(".json")).get("report")
        if entry is None:
            return None
        if "error" in entry:
            raise RawStoreError(entry["error"])
        kept = path.parent / entry["file"]
        if kept.is_symlink():
            raise RawStoreError(_link(kept, "transaction report"))
        try:
            data = kept.read_bytes()
        except OSError as exc:
            raise RawStoreError(f"{kept}: transaction report {entry['name']} cannot be read "
                                f"({exc.strerror}); {_REFETCH}") from None
        if (actual := hashlib.sha256(data).hexdigest()) != entry["sha256"]:
            raise RawStoreError(_mismatch(kept, entry["sha256"], actual))
        return DataMember(entry["name"], data)

    def add(
        self,
        tmp_path: Path,
        release: str,
        *,
        source_url: str,
        member_name: str,
        suffix: str = ".zip",
    ) -> ReleaseFile:
        """Move ``tmp_path`` into ``<quarter>/<sha256><suffix>``; a no-op if those bytes are
        stored there intact. A damaged entry (a link, other bytes or an unreadable sidecar) is
        replaced: the bytes in hand are the ones its name promises.

        ``tmp_path`` is consumed (moved or deleted). A file on another filesystem is copied next
        to its destination first, so the final rename is still atomic.
        """
        if suffix not in SUFFIXES:
            raise ValueError(f"raw store keeps {', '.join(SUFFIXES)} files, not {suffix!r}")
        quarter = quarter_of(release)
        sha = sha256_file(tmp_path)
        folder = self.root / quarter
        final = folder / f"{sha}{suffix}"
        kept = self.find(sha)
        if kept is not None and kept.path == final:
            tmp_path.unlink(missing_ok=True)
            return kept
        sidecar_path = folder / f"{sha}.json"
        sidecar = self._old_sidecar(sidecar_path, final) or {
            "quarter": quarter,
            "sha256": sha,
            "file": final.name,
            "size": tmp_path.stat().st_size,
            "source_url": source_url,
            "member_name": member_name,
            "fetched_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        }
        folder.mkdir(parents=True, exist_ok=True)
        try:
            atomic_write_bytes(sidecar_path, _json_bytes(sidecar))
            readable_mode(tmp_path)
            fsync_path(tmp_path)
            try:
                os.replace(tmp_path, final)
            except OSError:  # another filesystem: copy beside the target, then rename
                fd, aside = tempfile.mkstemp(dir=folder, prefix=f".{sha}.", suffix=".tmp")
                os.close(fd)
                shutil.copyfile(tmp_path, aside)
                fsync_path(aside)
                readable_mode(Path(aside))
                os.replace(aside, final)
                tmp_path.unlink(missing_ok=True)
            fsync_path(folder)  # the rename itself survives a power loss
        except BaseException:
            if not final.exists():
                sidecar_path.unlink(missing_ok=True)
            raise
        return next(z for z in self.list() if z.path == final)

    def _old_sidecar(self, path: Path, final: Path) -> dict | None:
        """The sidecar of a damaged entry, when it is sound: restoring the bytes keeps their
        first fetch time (and so their revision id)."""
        try:
            meta = self._sidecar(path)
        except (RawStoreError, OSError):
            return None
        return meta if meta["file"] == final.name else None

    def _sidecar(self, path: Path) -> dict:
        """The provenance in sidecar ``path``, checked against where it lies."""
        if path.is_symlink():
            raise RawStoreError(_link(path, "sidecar"))
        meta = _read_json(path, "sidecar", _REFETCH)
        if not isinstance(meta, dict):
            raise RawStoreError(f"{path}: sidecar is not a JSON object; {_REFETCH}")
        wrong = [k for k, kind in _SIDECAR_FIELDS.items() if not isinstance(meta.get(k), kind)]
        if wrong:
            raise RawStoreError(f"{path}: sidecar lacks {', '.join(wrong)}; {_REFETCH}")
        sha = path.stem
        if (meta["sha256"], meta["quarter"]) != (sha, path.parent.name) or meta["file"] not in [
            sha + s for s in SUFFIXES
        ]:
            raise RawStoreError(
                f"{path}: sidecar describes {meta['file']!r} of {meta['quarter']}, not a file "
                f"beside it; {_REFETCH}"
            )
        if "report" in meta and not _report_entry_ok(meta["report"], sha):
            raise RawStoreError(f"{path}: sidecar's report entry is malformed; {_REFETCH}")
        return meta

    def _scan(self) -> tuple[list[dict], list[str]]:
        """The entries ``list()`` trusts, and a line for each thing it left out."""
        entries: list[dict] = []
        problems: list[str] = []
        for folder in sorted(self.root.glob("*-Q*")):
            if folder.is_symlink():
                problems.append(_link(folder, "quarter folder"))
                continue
            if not folder.is_dir():
                continue
            for sidecar in sorted(folder.glob("*.json")):
                try:
                    meta = self._sidecar(sidecar)
                except RawStoreError as exc:
                    problems.append(str(exc))
                    continue
                path = folder / meta["file"]
                if path.is_file() and not path.is_symlink():
                    entries.append({**meta, "path": path})
                elif not path.is_symlink():  # links are reported below
                    problems.append(
                        f"{sidecar}: sidecar without its file {path.name} (an interrupted fetch); "
                        f"not listed ({_REFETCH})"
                    )
                report = folder / meta.get("report", {}).get("file", "")
                if report != folder and not report.exists() and not report.is_symlink():
                    problems.append(f"{report}: the transaction report the sidecar names is "
                                    f"missing; not read ({_REFETCH})")
            kept = {e.get("report", {}).get("file") for e in entries}
            for item in sorted(folder.iterdir()):
                if item.is_symlink() and item.suffix != ".json":
                    problems.append(_link(item, "stored file"))
                elif _report_file(item):
                    if item.name not in kept:
                        problems.append(f"{item}: transaction report no sidecar names; not read "
                                        f"({_REFETCH})")
                elif item.suffix in SUFFIXES and not item.with_suffix(".json").exists():
                    problems.append(f"{item}: stored file without its sidecar; not listed "
                                    f"({_REFETCH})")
        return entries, problems

    def list(self) -> list[ReleaseFile]:
        """Every stored file (status ``stored``), oldest release first, with its
        revision-qualified id; damaged entries are left out (``check()`` names them)."""

        def order(meta: dict) -> tuple:
            return (member_rank(meta["member_name"]), meta["fetched_at"], meta["sha256"])

        out = []
        entries, _ = self._scan()
        by_quarter = sorted(entries, key=lambda m: release_sort_key(m["quarter"]))
        for quarter, group in groupby(by_quarter, key=lambda m: m["quarter"]):
            for revision, meta in enumerate(sorted(group, key=order), start=1):
                out.append(
                    ReleaseFile(
                        release_id=revision_id(quarter, revision),
                        source_url=meta["source_url"],
                        sha256=meta["sha256"],
                        path=meta["path"],
                        member_name=meta["member_name"],
                        size=meta["size"],
                        fetched_at=meta["fetched_at"],
                        status="stored",
                    )
                )
        return out

    def check(self) -> list[str]:
        """Every problem of the store, one line each naming its path and what to do: what
        ``list()`` leaves out, files without their sidecar, stored bytes that no longer hash to
        their name (everything is re-hashed), an unreadable ``http.json``, stale downloads."""
        entries, problems = self._scan()
        for meta in entries:
            stored = [(meta["path"], meta["sha256"])]
            if (report := meta.get("report", {})).get("file"):
                stored.append((meta["path"].parent / report["file"], report["sha256"]))
            for path, expected in stored:
                if path.is_file() and not path.is_symlink():
                    actual = sha256_file(path)
                    if actual != expected:
                        problems.append(_mismatch(path, expected, actual))
        try:
            self._known()
        except RawStoreError as exc:
            problems.append(str(exc))
        problems += [
            f"{path}: download left by an interrupted fetch (removed at the start of the next run)"
            for path in self._stale()
        ]
        return problems

    # Conditional requests: what the server said about a URL the last time it sent the bytes.

    def _http_path(self) -> Path:
        return self.root / "http.json"

    def _known(self) -> dict[str, dict[str, str]]:
        path = self._http_path()
        if not path.exists():
            return {}
        fix = "delete it: it only remembers ETags for conditional requests, and is rebuilt"
        known = _read_json(path, "the conditional-request record", fix)
        if not isinstance(known, dict):
            raise RawStoreError(f"{path}: not a JSON object; {fix}")
        return known

    def validators(self, url: str) -> dict[str, str]:
        """ETag / Last-Modified / sha256 remembered for ``url`` (empty if never fetched)."""
        return self._known().get(url, {})

    def remember(self, url: str, *, sha256: str, etag: str | None, last_modified: str | None):
        """Record the validators of a successful download of ``url``."""
        known = self._known()
        entry = {"sha256": sha256, "etag": etag, "last_modified": last_modified}
        known[url] = {k: v for k, v in entry.items() if v}
        atomic_write_bytes(self._http_path(), _json_bytes(known))
