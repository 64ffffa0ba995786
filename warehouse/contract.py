"""The Parquet contract: what every Parquet file we hand to another warehouse looks like.

BigQuery, Snowflake and DuckDB load such a file as is (``docs/downstream.md``): every per-release
file carries its ``release_id`` as a column (first), strings are plain ``string`` and lists
``list<element: ...>`` (never ``large_*``), integers 32 or 64 bits (never a decimal), dates
``date32``, timestamps UTC, JSON as text; every field carries its description in its metadata
(``description``), and the schema the table's. The Arrow type of each DuckDB type is one table,
``ARROW_TYPES``; a Polars frame's types are named as DuckDB's first (``POLARS_TYPES``), so the
published files (``warehouse.publish``), the database (``table_schema``) and the export
(``warehouse.export``) agree by construction.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import polars as pl
import pyarrow as pa

from contracts.errors import TerminalError
from warehouse.sql import literal
from warehouse.tables import table as table_spec

#: Metadata key of a field's description (and of the schema's: the table's).
DESCRIPTION = "description"
#: Name of a list's element (Parquet's LIST convention, as pyarrow writes and reads it back).
ELEMENT = "element"

#: DuckDB type -> Arrow type of the contract (a LIST or STRUCT: of its members' types).
ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "BOOLEAN": pa.bool_(),
    "SMALLINT": pa.int32(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DATE": pa.date32(),
    "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
}

#: Polars type -> DuckDB type (a List or Struct: of its members' types).
POLARS_TYPES: dict[type[pl.DataType], str] = {
    pl.String: "VARCHAR",
    pl.Boolean: "BOOLEAN",
    pl.Int16: "SMALLINT",
    pl.Int32: "INTEGER",
    pl.Int64: "BIGINT",
    pl.Date: "DATE",
}


class ContractError(TerminalError):
    """A column the contract cannot carry (a type with no contract type, or no description)."""


def sql_type(dtype: pl.DataType) -> str:
    """The DuckDB type of a Polars type (``List(String)`` -> ``VARCHAR[]``)."""
    if isinstance(dtype, pl.List):
        return f"{sql_type(dtype.inner)}[]"
    if isinstance(dtype, pl.Struct):
        return "STRUCT(" + ", ".join(f'"{f.name}" {sql_type(f.dtype)}' for f in dtype.fields) + ")"
    try:
        return POLARS_TYPES[dtype.base_type()]
    except KeyError:
        raise ContractError(f"Polars type {dtype} has no DuckDB type: add it to "
                            "warehouse.contract.POLARS_TYPES") from None


def arrow_type(duckdb_type: str | duckdb.DuckDBPyType) -> pa.DataType:
    """The contract's Arrow type of a DuckDB type (its name, as ``duckdb_columns()`` gives it)."""
    t = duckdb.sqltype(duckdb_type) if isinstance(duckdb_type, str) else duckdb_type
    if t.id == "list":
        return pa.list_(pa.field(ELEMENT, arrow_type(t.child)))
    if t.id == "struct":
        return pa.struct([(name, arrow_type(child)) for name, child in t.children])
    try:
        return ARROW_TYPES[str(t)]
    except KeyError:
        raise ContractError(f"DuckDB type {t} has no Arrow type in the Parquet contract: add it to "
                            "warehouse.contract.ARROW_TYPES (or give the column a type it has)"
                            ) from None


def schema(table: str, columns: Mapping[str, tuple[str, str | None]],
           comment: str | None) -> pa.Schema:
    """The contract schema of ``table``: column -> (DuckDB type, description), and its comment;
    a column without a description or a type without an Arrow type is a ``ContractError``."""
    fields = []
    for name, (type_name, description) in columns.items():
        if not description:
            raise ContractError(f"{table}.{name}: no description; every column of the Parquet "
                                "contract has one (COMMENT ON COLUMN in warehouse/database.py)")
        try:
            arrow = arrow_type(type_name)
        except ContractError as exc:
            raise ContractError(f"{table}.{name}: {exc}") from None
        fields.append(pa.field(name, arrow, metadata={DESCRIPTION: description}))
    return pa.schema(fields, metadata={DESCRIPTION: comment} if comment else None)


def table_schema(con: duckdb.DuckDBPyConnection, table: str) -> pa.Schema:
    """The contract schema of a base table of the database: its columns, their Arrow types and
    descriptions (column comments) in column order, its comment in the schema metadata."""
    rows = con.execute(
        f"""SELECT c.column_name, c.data_type, c.comment, t.comment
            FROM duckdb_columns() c JOIN duckdb_tables() t USING (database_name, schema_name,
                                                                  table_name)
            WHERE c.table_name = {literal(table)} AND c.schema_name = current_schema()
              AND c.database_name = current_database()
            ORDER BY c.column_index""").fetchall()
    if not rows:
        raise ContractError(f"{table}: not a base table of the database")
    return schema(table, {name: (t, text) for name, t, text, _ in rows}, rows[0][3])


def base_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every base table of the database (lookups included), by name."""
    return [name for (name,) in con.execute(
        """SELECT table_name FROM duckdb_tables()
           WHERE schema_name = current_schema() AND database_name = current_database()
             AND NOT temporary ORDER BY table_name""").fetchall()]


def fetch(con: duckdb.DuckDBPyConnection, table: str, release_id: str | None = None) -> pa.Table:
    """The rows of ``table`` (only ``release_id``'s, when given) in key order, as the contract
    types them: the same database gives the same table, so the same bytes."""
    key = ", ".join(f'"{c}"' for c in table_spec(table).key)
    where = f"WHERE release_id = {literal(release_id)}" if release_id is not None else ""
    rows = con.sql(f'SELECT * FROM "{table}" {where} ORDER BY {key}').arrow().read_all()
    return rows.cast(table_schema(con, table))


def frame_table(frame: pl.DataFrame, target: pa.Schema, release_id: str | None) -> pa.Table:
    """A Polars frame as the contract types it (``target``), ``release_id`` as its first column
    when given."""
    if release_id is not None:
        frame = frame.select(pl.lit(release_id, pl.String).alias("release_id"), pl.all())
    return frame.select(target.names).to_arrow().cast(target)
