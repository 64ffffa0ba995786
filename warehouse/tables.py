"""Every base table of ``hcpcs.duckdb`` as a downstream warehouse sees it: its key, the indexes an
analyst wants, and whether it grows by release or is rebuilt whole.

Column names, types and comments are not repeated here: they are read from the DuckDB catalog
itself (``duckdb_columns()``), so a load or an export always matches the database it reads. A
test fails when a base table has no entry here, or a key is not unique on real releases.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from warehouse.sql import literal

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True)
class Table:
    """One base table, as loaded into a target."""

    key: tuple[str, ...]
    """Columns that identify a row (a primary key in PostgreSQL)."""
    per_release: bool = False
    """Rows belong to one release (a ``release_id`` column) and never change once published: a
    load adds the rows of new releases only. Otherwise the table is derived from all releases
    (history, changes, reference tables) and replaced whole when its content changed."""
    nullable_key: tuple[str, ...] = ()
    """Key columns that may be null (a unique constraint with NULLS NOT DISTINCT instead of a
    primary key, which forbids nulls)."""
    indexes: tuple[tuple[str, ...], ...] = ()
    """Further indexes: the columns analysts filter on (code, release, valid dates)."""


_LOOKUP = Table(key=("code",))

#: Table name -> how it is loaded; ``lookup_*`` tables (one per code domain) are ``_LOOKUP``.
TABLES: dict[str, Table] = {
    "releases": Table(key=("release_id",)),
    "codes": Table(key=("release_id", "code"), per_release=True, indexes=(("code",),)),
    "findings": Table(key=("release_id", "rule", "code", "field", "raw_value"), per_release=True,
                      nullable_key=("code", "field", "raw_value"), indexes=(("code",),)),
    "repairs": Table(key=("release_id", "code", "field"), per_release=True),
    "reconciliation": Table(key=("release_id", "code", "field"), per_release=True),
    "transactions": Table(key=("release_id", "line"), per_release=True, indexes=(("code",),)),
    "validation_results": Table(key=("release_id", "result_index"), per_release=True),
    "waivers": Table(key=("release_id", "rule", "sha256", "accepted_at")),
    "change_types": Table(key=("change_type",)),
    "reconciliation_reasons": Table(key=("reason",)),
    "code_history": Table(key=("code", "version"),
                          indexes=(("valid_from_date", "valid_to_date"),
                                   ("valid_from_release",))),
    "version_knowledge": Table(key=("code", "version")),
    "code_changes": Table(key=("release_id", "code", "change_type", "field"),
                          nullable_key=("field",), indexes=(("code",),)),
    "code_replacements": Table(key=("code", "position")),
}


def table(name: str) -> Table:
    """How ``name`` is loaded; a table with no entry is an error naming it (declare it above)."""
    if name.startswith("lookup_"):
        return _LOOKUP
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"{name}: a base table of hcpcs.duckdb with no entry in "
                       "warehouse.tables.TABLES (declare its key there)") from None


#: sha256 of the database's layout (``layout_sha256``) as this version of the pipeline builds it.
#: A database of another layout was built by another version: runs rebuild it, and ``hcpcs load``
#: and ``hcpcs export`` refuse it until then. ``tests/test_tables.py`` fails, naming the new value,
#: when the layout changes and this is not updated.
DATABASE_LAYOUT = "1ecf51a6e57359ca2b18824d019fc7017c1ef648407b45003833a5adf4b8c983"


def layout_sha256(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> str:
    """sha256 of every table's and view's columns and types in ``catalog`` of ``con`` (default:
    its current database), what downstream loads and queries rely on (comments and macros
    aside): one catalog query."""
    where = literal(catalog) if catalog else "current_database()"
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        f"WHERE database_name = {where} ORDER BY ALL").fetchall()
    return hashlib.sha256("\n".join(" ".join(r) for r in rows).encode()).hexdigest()


def outdated(con: duckdb.DuckDBPyConnection, database: Path,
             catalog: str | None = None) -> str | None:
    """Why ``database`` (open in ``con``, as ``catalog``) cannot be loaded or exported as it is,
    or None when its layout is this version's."""
    if layout_sha256(con, catalog) == DATABASE_LAYOUT:
        return None
    return (f"{database} was built by another version of hcpcs-pipeline (its tables differ from "
            "this version's); `hcpcs doctor --repair` rebuilds it from the published releases")
