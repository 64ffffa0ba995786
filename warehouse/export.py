"""``hcpcs export DIR``: every base table of ``hcpcs.duckdb`` as Parquet any warehouse loads as is.

Layout (``docs/downstream.md``)::

    DIR/<table>/<release_id>.parquet   a table whose rows belong to one release (codes, findings,
                                       ...): one file per release, never changed once written, so
                                       a downstream load takes only the files it has not seen
    DIR/<table>.parquet                a table rebuilt from all releases (history, changes,
                                       releases, lookups): replaced whole
    DIR/export.json                    every file: table, release, rows, sha256, bytes

Every file follows the Parquet contract (``warehouse.contract``), its rows in key order
(``warehouse.tables``): the same database gives the same bytes. The export is written beside DIR
and renamed into place, so DIR is the previous export or the new one, never half of either.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from contracts.errors import TerminalError
from contracts.files import atomic_write_bytes, readable_mode, write_parquet
from contracts.paths import DataDir
from sources.rawstore import sha256_file
from warehouse import contract
from warehouse.history import empty_database
from warehouse.publish import SCHEMA_VERSION
from warehouse.tables import outdated
from warehouse.tables import table as table_spec

#: The file that lists an export's files (and marks a folder as an export).
EXPORT_JSON = "export.json"


class ExportError(TerminalError):
    """The export cannot be written as asked; the message names the folder and what to do."""


@dataclass(frozen=True)
class ExportedFile:
    """One file of an export (``path`` relative to the export folder)."""

    path: str
    table: str
    release_id: str | None
    rows: int
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Export:
    """What ``export`` wrote: where, and every file."""

    out: Path
    files: list[ExportedFile]

    def tables(self) -> dict[str, tuple[int, int]]:
        """Table -> (files, rows), by table name."""
        out: dict[str, tuple[int, int]] = {}
        for f in self.files:
            files, rows = out.get(f.table, (0, 0))
            out[f.table] = (files + 1, rows + f.rows)
        return dict(sorted(out.items()))

    def to_json(self) -> bytes:
        """``export.json``: deterministic (no time stamp), so the same database gives the same
        bytes here too."""
        doc = {"schema_version": SCHEMA_VERSION, "files": [asdict(f) for f in self.files]}
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def file_path(table: str, release_id: str | None) -> str:
    """Where a table's file goes in the export (relative)."""
    return f"{table}/{release_id}.parquet" if release_id else f"{table}.parquet"


def _write(con: duckdb.DuckDBPyConnection, root: Path, table: str,
           release_id: str | None) -> ExportedFile:
    rows = contract.fetch(con, table, release_id)
    rel = file_path(table, release_id)
    write_parquet(rows, root / rel)
    return ExportedFile(rel, table, release_id, rows.num_rows, sha256_file(root / rel),
                        (root / rel).stat().st_size)


def _write_all(con: duckdb.DuckDBPyConnection, root: Path) -> list[ExportedFile]:
    """Every base table into ``root``: per-release tables one file per release (an empty file
    for a release with no rows, so every release is in every table), the others one file."""
    releases = [r for (r,) in con.execute(
        "SELECT release_id FROM releases ORDER BY release_order").fetchall()]
    files = []
    for table in contract.base_tables(con):
        ids = releases if table_spec(table).per_release else [None]
        files += [_write(con, root, table, rid) for rid in ids]
    return files


def _check_target(out: Path) -> None:
    """Refuse to replace a folder that is not an earlier export: it would be deleted whole."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: is a file; give a folder to export into")
    if out.is_dir() and any(out.iterdir()) and not (out / EXPORT_JSON).is_file():
        raise ExportError(f"{out}: not empty and not an earlier export (no {EXPORT_JSON}); "
                          "an export replaces its folder whole: give a new or empty folder")


def _aside(out: Path, kind: str) -> str:
    """The name prefix of ``out``'s aside folders: ``.<name>.<kind>-<pid>-`` (kind: ``tmp`` a
    new export being written, ``old`` the previous one being removed)."""
    return f".{out.name}.{kind}-{os.getpid()}-"


def _sweep(out: Path) -> None:
    """Remove the aside folders of exports into ``out`` whose process is gone (killed)."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(?:tmp|old)-(\d+)-[a-z0-9_]+")
    for stale in out.parent.iterdir():
        if (m := pattern.fullmatch(stale.name)) and not _alive(int(m.group(1))):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        pass
    return True


def _swap(tmp: Path, out: Path) -> None:
    """Rename the finished export ``tmp`` into place; an earlier export at ``out`` is moved
    aside first (and back, should the second rename fail), then removed."""
    if not out.exists():
        os.rename(tmp, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=_aside(out, "old")))
    os.rename(out, old / out.name)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old / out.name, out)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def export(data_dir: Path, out: Path) -> Export:
    """Write every base table of ``data_dir``'s ``hcpcs.duckdb`` into ``out`` as contract
    Parquet, with ``export.json``; ``out`` is replaced whole, or left as it was on any failure."""
    db = DataDir(data_dir).database
    if not db.exists():
        raise ExportError(f"{db}: no database yet; run `hcpcs run` (or `hcpcs backfill`) first")
    out = Path(os.path.abspath(out))
    _check_target(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _sweep(out)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=_aside(out, "tmp")))
    except OSError as exc:
        raise _unwritable(out, exc) from None
    try:
        readable_mode(tmp)
        with duckdb.connect(str(db), read_only=True) as con:
            if problem := outdated(con, db):
                raise ExportError(problem)
            files = _write_all(con, tmp)
        done = Export(out, files)
        atomic_write_bytes(tmp / EXPORT_JSON, done.to_json())
        _swap(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _unwritable(out, exc) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return done


def _unwritable(out: Path, exc: OSError) -> ExportError:
    where = f"{exc.filename}: " if exc.filename and Path(exc.filename) != out else ""
    return ExportError(f"{out}: cannot write the export ({where}{exc.strerror or exc}); choose "
                       "a folder you can write to, on a disk with room")


def _description(metadata: dict[bytes, bytes] | None) -> str:
    """A field's or schema's description, as a Markdown table cell holds it."""
    return (metadata or {})[contract.DESCRIPTION.encode()].decode().replace("|", "\\|")


def contract_markdown() -> str:
    """Every exported table: its file(s), key, comment, and each column's Arrow type and
    description, as the database built from no release has them (the docs' copy)."""
    con = empty_database()
    try:
        parts = []
        for table in contract.base_tables(con):
            spec = table_spec(table)
            schema = contract.table_schema(con, table)
            where = file_path(table, "<release_id>" if spec.per_release else None)
            rows = "\n".join(f"| `{f.name}` | `{f.type}` | {_description(f.metadata)} |"
                             for f in schema)
            parts.append(f"**`{table}`** (`{where}`; key: {', '.join(spec.key)}): "
                         f"{_description(schema.metadata)}\n\n"
                         f"| column | Arrow type | description |\n|---|---|---|\n{rows}")
        return "\n\n".join(parts)
    finally:
        con.close()
