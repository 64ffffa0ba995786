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
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from contracts.errors import TerminalError
from contracts.files import (
    atomic_write_bytes,
    not_replaceable,
    replacing_folder,
    write_parquet,
)
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


def export(data_dir: Path, out: Path) -> Export:
    """Write every base table of ``data_dir``'s ``hcpcs.duckdb`` into ``out`` as contract
    Parquet, with ``export.json``; ``out`` is replaced whole, or left as it was on any failure."""
    db = DataDir(data_dir).database
    if not db.exists():
        raise ExportError(f"{db}: no database yet; run `hcpcs run` (or `hcpcs backfill`) first")
    out = Path(os.path.abspath(out))
    if problem := not_replaceable(out, EXPORT_JSON, "export"):
        raise ExportError(problem)
    try:
        with replacing_folder(out) as tmp, duckdb.connect(str(db), read_only=True) as con:
            if problem := outdated(con, db):
                raise ExportError(problem)
            done = Export(out, _write_all(con, tmp))
            atomic_write_bytes(tmp / EXPORT_JSON, done.to_json())
    except OSError as exc:
        raise _unwritable(out, exc) from None
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
