"""The raw store: every release exactly as downloaded, kept forever, addressed by its sha256.

Layout under ``data/raw/``::

    <quarter>/<sha256>.zip    the bytes as fetched (``.txt`` / ``.xlsx`` / ``.xls`` for a bare data
                              file: the suffix keeps its format)
    <quarter>/<sha256>.json   provenance: source URL, data member name, first fetch time, size
    http.json                 per URL: ETag / Last-Modified / sha256 of the last 200, for 304s
    .tmp/                     downloads in progress (same filesystem, so the final move is atomic)

The sidecar is written before the ZIP is moved in: a ZIP's presence is the commit point, so a
crash leaves either nothing or a complete entry. Revision ids are not stored but derived on every
``list()`` from the sidecars (data member ``_vN``/``_MMDDYYYY`` rank, then first fetch time), so
the same files always give the same ids whatever order they arrived in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path

from contracts.files import atomic_write_bytes
from contracts.release import ReleaseFile, quarter_of, release_sort_key, revision_id
from sources.archive import DATA_FORMATS, member_rank

SUFFIXES = (".zip", *DATA_FORMATS)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _json_bytes(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


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

    def new_tmp_file(self) -> Path:
        fd, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="fetch-", suffix=".part")
        os.close(fd)
        return Path(name)

    def find(self, sha256: str) -> ReleaseFile | None:
        """The stored file with these bytes, whichever quarter holds it."""
        return next((z for z in self.list() if z.sha256 == sha256), None)

    def add(
        self,
        tmp_path: Path,
        release: str,
        *,
        source_url: str,
        member_name: str,
        suffix: str = ".zip",
    ) -> ReleaseFile:
        """Move ``tmp_path`` into ``<quarter>/<sha256><suffix>``; a no-op if those bytes are stored.

        ``tmp_path`` is consumed (moved or deleted). A file on another filesystem is copied next
        to its destination first, so the final rename is still atomic.
        """
        if suffix not in SUFFIXES:
            raise ValueError(f"raw store keeps {', '.join(SUFFIXES)} files, not {suffix!r}")
        quarter = quarter_of(release)
        sha = sha256_file(tmp_path)
        folder = self.root / quarter
        final = folder / f"{sha}{suffix}"
        if final.exists():
            tmp_path.unlink(missing_ok=True)
            return self._get(final)
        sidecar = {
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
            atomic_write_bytes(folder / f"{sha}.json", _json_bytes(sidecar))
            try:
                os.replace(tmp_path, final)
            except OSError:  # another filesystem: copy beside the target, then rename
                fd, aside = tempfile.mkstemp(dir=folder, prefix=f".{sha}.", suffix=".tmp")
                os.close(fd)
                shutil.copyfile(tmp_path, aside)
                os.replace(aside, final)
                tmp_path.unlink(missing_ok=True)
        except BaseException:
            if not final.exists():
                (folder / f"{sha}.json").unlink(missing_ok=True)
            raise
        return self._get(final)

    def _get(self, final: Path) -> ReleaseFile:
        return next(z for z in self.list() if z.path == final)

    def _entries(self) -> list[dict]:
        entries = []
        for sidecar in sorted(self.root.glob("*-Q*/*.json")):
            meta = json.loads(sidecar.read_text())
            path = sidecar.with_name(meta["file"])
            if path.exists():  # a sidecar without its file is an interrupted add: not stored
                entries.append({**meta, "path": path})
        return entries

    def list(self) -> list[ReleaseFile]:
        """Every stored file (status ``stored``), oldest release first, with its
        revision-qualified id."""

        def order(meta: dict) -> tuple:
            return (member_rank(meta["member_name"]), meta["fetched_at"], meta["sha256"])

        out = []
        by_quarter = sorted(self._entries(), key=lambda m: release_sort_key(m["quarter"]))
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

    # Conditional requests: what the server said about a URL the last time it sent the bytes.

    def _http_path(self) -> Path:
        return self.root / "http.json"

    def validators(self, url: str) -> dict[str, str]:
        """ETag / Last-Modified / sha256 remembered for ``url`` (empty if never fetched)."""
        path = self._http_path()
        return json.loads(path.read_text()).get(url, {}) if path.exists() else {}

    def remember(self, url: str, *, sha256: str, etag: str | None, last_modified: str | None):
        """Record the validators of a successful download of ``url``."""
        path = self._http_path()
        known = json.loads(path.read_text()) if path.exists() else {}
        entry = {"sha256": sha256, "etag": etag, "last_modified": last_modified}
        known[url] = {k: v for k, v in entry.items() if v}
        atomic_write_bytes(path, _json_bytes(known))
