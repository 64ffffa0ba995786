"""Load ``hcpcs.duckdb`` into a PostgreSQL schema: incremental, idempotent, one transaction.

DuckDB's own postgres extension (the ``duckdb-extension-postgres`` wheel, the same version as
duckdb, loaded from site-packages: no download) copies the rows with PostgreSQL's binary COPY. The
whole load is one DuckDB transaction, which the extension runs as one PostgreSQL transaction on
one connection: a reader of the target sees the previous load or this one, never half; a load
killed, cut off or refused leaves the target as it was, and the next load completes it.

What is copied: every base table of the database (``warehouse.tables`` gives each its key,
indexes and whether it grows by release), with the database's comments. The target records what
it holds: ``loaded_releases`` (release id and raw sha256) and ``loaded_slices`` (a fingerprint of
each table's rows, per release for tables that grow by release), so a load copies only the slices
whose rows changed, and a second load with nothing new changes nothing. ``load_state`` holds the
target's schema version and the fingerprint of its DDL: a target of another version is refused
with the command that rebuilds it (``--migrate``), never altered silently.

Credentials come from the URL or libpq's ``PG*`` variables (``PGHOST``, ``PGUSER``,
``PGPASSWORD``, ``PGPASSFILE``, ...). A password in the URL is handed to DuckDB as a secret, not in
the connection string, so no error message, log line or table ever holds it.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import duckdb

from contracts.errors import TerminalError, TransientError
from contracts.paths import DataDir
from contracts.urls import without_password
from warehouse.publish import pipeline_version
from warehouse.sql import literal
from warehouse.tables import outdated, table

#: Version of the target's layout; bump it when the DDL below changes shape (a target of another
#: version is refused until ``--migrate`` rebuilds it).
LOAD_SCHEMA_VERSION = 1

#: PostgreSQL type of each DuckDB type of the database; a STRUCT (or a list of them) becomes
#: ``jsonb`` (PostgreSQL has no anonymous row type), written with ``to_json``.
PG_TYPES: dict[str, str] = {
    "VARCHAR": "text", "VARCHAR[]": "text[]", "JSON": "jsonb", "BOOLEAN": "boolean",
    "SMALLINT": "smallint", "INTEGER": "integer", "BIGINT": "bigint", "DATE": "date",
    "TIMESTAMP WITH TIME ZONE": "timestamptz", "TIMESTAMP": "timestamp",
    "DOUBLE": "double precision",
}

#: Words of libpq's messages when the connection (not the SQL) failed: worth another try.
_CONNECTION_LOST = ("server closed the connection", "terminating connection", "no connection to",
                    "connection to server", "could not receive data", "could not send data",
                    "SSL SYSCALL error", "Unable to connect", "the database system is")

#: The target's own tables: what it holds, and of which layout.
_STATE_DDL = """
CREATE TABLE {s}.load_state (schema_version integer NOT NULL, ddl_sha256 text NOT NULL,
    pipeline_version text NOT NULL, loaded_at timestamptz NOT NULL);
CREATE TABLE {s}.loaded_releases (release_id text PRIMARY KEY, raw_sha256 text NOT NULL,
    loaded_at timestamptz NOT NULL);
CREATE TABLE {s}.loaded_slices (table_name text NOT NULL, release_id text NOT NULL,
    fingerprint text NOT NULL, row_count bigint NOT NULL, loaded_at timestamptz NOT NULL,
    PRIMARY KEY (table_name, release_id));
COMMENT ON TABLE {s}.load_state IS 'The layout of this schema (hcpcs load), one row.';
COMMENT ON TABLE {s}.loaded_releases IS 'Releases this schema holds, each with the sha256 of '
    'the raw file it was published from.';
COMMENT ON TABLE {s}.loaded_slices IS 'A fingerprint of the rows of each table (per release '
    'for tables that grow by release; release_id '''' for the whole table), so a load copies '
    'only what changed.'"""


class LoadError(TerminalError):
    """The load is refused or failed for a reason that trying again will not change."""


class LoadConnectionError(TransientError):
    """PostgreSQL could not be reached, or the connection was lost mid-load (rolled back)."""


@dataclass(frozen=True)
class Target:
    """A PostgreSQL target: the libpq connection string without its password, the password
    apart, and the URL as shown (no password)."""

    conninfo: str
    password: str | None
    shown: str
    schema: str

    @classmethod
    def parse(cls, url: str, schema: str = "hcpcs") -> Target:
        """``postgresql://[user[:password]@][host][:port][/dbname][?param=value...]``; what the URL
        leaves out, libpq takes from the ``PG*`` variables. ``schema``: where the tables go."""
        parts, shown = urlsplit(url), without_password(url, "***")
        if parts.scheme not in ("postgresql", "postgres"):
            raise LoadError(f"{shown}: not a PostgreSQL URL (postgresql://user@host/db)")
        if not schema.replace("_", "").isalnum() or schema[0].isdigit():
            raise LoadError(f"schema {schema!r}: use letters, digits and _ only")
        try:
            port = parts.port
        except ValueError:
            raise LoadError(f"{shown}: the port is not a number") from None
        words = {"host": unquote(parts.hostname or ""), "port": str(port or ""),
                 "user": unquote(parts.username or ""), "dbname": unquote(parts.path[1:]),
                 **dict(parse_qsl(parts.query))}
        words.setdefault("application_name", "hcpcs load")
        conninfo = " ".join(f"{k}={_conn_value(v)}" for k, v in words.items() if v)
        password = unquote(parts.password) if parts.password is not None else None
        return cls(conninfo, password, shown, schema)


def _conn_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Column:
    table: str
    name: str
    duckdb_type: str
    comment: str | None

    @property
    def nested(self) -> bool:
        """A STRUCT, a list of them or a MAP: no PostgreSQL type, so JSON (``jsonb``)."""
        return "STRUCT(" in self.duckdb_type or self.duckdb_type.startswith("MAP(")

    @property
    def pg_type(self) -> str:
        if self.nested:
            return "jsonb"
        try:
            return PG_TYPES[self.duckdb_type]
        except KeyError:
            raise LoadError(f"{self.table}.{self.name}: no PostgreSQL type for DuckDB's "
                            f"{self.duckdb_type} (add it to warehouse.postgres.PG_TYPES)") from None

    @property
    def select(self) -> str:
        """The column as read from DuckDB for the copy."""
        return f"to_json({_q(self.name)})" if self.nested else _q(self.name)


@dataclass(frozen=True)
class SourceTable:
    name: str
    comment: str | None
    columns: tuple[Column, ...]


def _q(name: str) -> str:
    return f'"{name}"'


def create_table(schema: str, t: SourceTable) -> str:
    """CREATE TABLE, bare: its key and indexes come after the first copy (``keys``)."""
    cols = ", ".join(f"{_q(c.name)} {c.pg_type}" for c in t.columns)
    return f"CREATE TABLE {_q(schema)}.{_q(t.name)} ({cols})"


def keys(schema: str, t: SourceTable) -> list[str]:
    """The table's key and indexes, built once over the first load's rows (the 100-release
    benchmark's first load: 3.1 s instead of 6.0 s with them kept up to date row by row)."""
    spec = table(t.name)
    name = f"{_q(schema)}.{_q(t.name)}"
    key = ", ".join(_q(c) for c in spec.key)
    constraint = (f"UNIQUE NULLS NOT DISTINCT ({key})" if spec.nullable_key
                  else f"PRIMARY KEY ({key})")
    return [f"ALTER TABLE {name} ADD {constraint}",
            *(f"CREATE INDEX {_q('_'.join((t.name, *index, 'idx')))} ON {name} "
              f"({', '.join(_q(c) for c in index)})" for index in spec.indexes)]


def comments(schema: str, t: SourceTable) -> list[str]:
    """COMMENT ON the table and each column, as in DuckDB."""
    name = f"{_q(schema)}.{_q(t.name)}"
    out = [f"COMMENT ON TABLE {name} IS {literal(t.comment)}"] if t.comment else []
    return out + [f"COMMENT ON COLUMN {name}.{_q(c.name)} IS {literal(c.comment)}"
                  for c in t.columns if c.comment]


def ddl_sha256(tables: Sequence[SourceTable]) -> str:
    """Fingerprint of the target's layout: tables, columns, types, keys, indexes (not comments)."""
    text = ";\n".join(s for t in tables for s in (create_table("_", t), *keys("_", t)))
    return hashlib.sha256(f"{LOAD_SCHEMA_VERSION}\n{text}".encode()).hexdigest()


@dataclass
class LoadResult:
    """What a load did; ``status`` is ``loaded`` or ``unchanged``."""

    target: str
    schema: str
    status: str = "unchanged"
    created: bool = False
    added_releases: list[str] = field(default_factory=list)
    slices: dict[str, int] = field(default_factory=dict)  # "table[/release]" -> rows written
    releases: int = 0
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(self.slices.values())

    def lines(self) -> list[str]:
        where = f"{self.target} (schema {self.schema})"
        if self.status == "unchanged":
            return [f"nothing new: {where} already holds the {self.releases} release(s) of this "
                    f"database ({self.seconds:.1f} s)"]
        tables = sorted({s.partition("/")[0] for s in self.slices})
        return [f"loaded {self.rows:,} rows into {where} in {self.seconds:.1f} s"
                + (" (schema created)" if self.created else ""),
                f"  new releases: {', '.join(self.added_releases) or 'none'}",
                f"  tables written: {', '.join(tables)}"]


def _extension() -> Path:
    """The postgres extension file of the installed wheel (same version as duckdb)."""
    try:
        import duckdb_extension_postgres
    except ImportError:
        raise LoadError(f"the DuckDB postgres extension is not installed: pip install "
                        f"duckdb-extension-postgres=={version('duckdb')}") from None
    root = Path(duckdb_extension_postgres.__file__).parent / "extensions"
    found = sorted(root.glob("*/postgres.duckdb_extension"))
    if not found:
        raise LoadError(f"{root}: no postgres.duckdb_extension in duckdb-extension-postgres")
    return found[-1]


def load_extension(con: duckdb.DuckDBPyConnection) -> None:
    """LOAD the wheel's file; DuckDB wants it under the extension's own name (postgres_scanner),
    so it is linked under that name in a temporary folder (nothing written to ~/.duckdb)."""
    with tempfile.TemporaryDirectory(prefix="hcpcs-duckdb-ext-") as tmp:
        link = Path(tmp) / "postgres_scanner.duckdb_extension"
        link.symlink_to(_extension())
        con.execute(f"LOAD {literal(str(link))}")


def _error(exc: duckdb.Error, target: Target) -> Exception:
    """A DuckDB error as the load's own: the connection's (transient) or the load's (terminal),
    with nothing of the password in its text."""
    text = str(exc)
    if target.password:
        text = text.replace(target.password, "***")
    if any(word in text for word in _CONNECTION_LOST):
        return LoadConnectionError(
            f"{target.shown}: PostgreSQL could not be reached or the connection was lost "
            f"({text.strip()}); the target is as it was before this load: run it again")
    return LoadError(f"{target.shown}: the load failed and was rolled back ({text.strip()})")


def _execute(con: duckdb.DuckDBPyConnection, statements: Sequence[str]) -> None:
    """Run ``statements`` on PostgreSQL in the load's transaction (one round trip)."""
    if statements:
        con.execute(f"CALL postgres_execute('pg', {literal(';'.join(statements))})")


def _query(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(f"SELECT * FROM postgres_query('pg', {literal(sql)})").fetchall()


def source_tables(con: duckdb.DuckDBPyConnection) -> list[SourceTable]:
    """Every base table of the attached database ``src``, its comment and columns, in order."""
    rows = con.execute("""
        SELECT t.table_name, t.comment, list((c.column_name, c.data_type, c.comment)
                                             ORDER BY c.column_index)
        FROM duckdb_tables() t JOIN duckdb_columns() c USING (database_name, table_oid)
        WHERE t.database_name = 'src' GROUP BY ALL ORDER BY t.table_name""").fetchall()
    return [SourceTable(name, comment, tuple(Column(name, *c) for c in cols))
            for name, comment, cols in rows]


def _fingerprints(con: duckdb.DuckDBPyConnection, t: SourceTable) -> dict[str, tuple[str, int]]:
    """Slice -> (fingerprint, rows): per release for a table that grows by release, else one
    slice ''. Order-free (a xor of row hashes) and cheap; a changed DuckDB version may change
    every hash, which costs one full copy, never a wrong one."""
    group = "release_id" if table(t.name).per_release else "''"
    return {s: (f"{n}:{h}", n) for s, n, h in con.execute(
        f"SELECT {group}, count(*), bit_xor(hash(t)) FROM src.{_q(t.name)} t GROUP BY ALL"
    ).fetchall()}


def _copy(con: duckdb.DuckDBPyConnection, schema: str, t: SourceTable, slices: Sequence[str],
          fresh: bool) -> None:
    """Replace ``slices`` of ``t`` in the target (delete what is there, copy DuckDB's rows)."""
    name = f"pg.{_q(schema)}.{_q(t.name)}"
    per_release = table(t.name).per_release
    where = f" WHERE release_id IN ({', '.join(literal(s) for s in slices)})" if per_release \
        else ""
    if not fresh:
        _execute(con, [f"DELETE FROM {_q(schema)}.{_q(t.name)}{where}"])
    columns = ", ".join(c.select for c in t.columns)
    con.execute(f"INSERT INTO {name} ({', '.join(_q(c.name) for c in t.columns)}) "
                f"SELECT {columns} FROM src.{_q(t.name)}{where}")


def _prepare(con: duckdb.DuckDBPyConnection, target: Target, tables: Sequence[SourceTable],
             migrate: bool) -> bool:
    """Make sure the target schema has this layout: create it (True) or check it (False)."""
    s = _q(target.schema)
    exists = _query(con, f"SELECT count(*) FROM pg_namespace WHERE nspname = "
                         f"{literal(target.schema)}")[0][0]
    sha = ddl_sha256(tables)
    if exists:
        has_state = _query(con, f"SELECT count(*) FROM pg_tables WHERE schemaname = "
                                f"{literal(target.schema)} AND tablename = 'load_state'")[0][0]
        state = _query(con, f"SELECT schema_version, ddl_sha256 FROM {s}.load_state") \
            if has_state else []
        if state == [(LOAD_SCHEMA_VERSION, sha)]:
            return False
        if not migrate:
            held = (f"schema version {state[0][0]} (layout {state[0][1][:12]})" if state
                    else "no hcpcs load state (not made by hcpcs load)")
            raise LoadError(
                f"{target.shown}: schema {target.schema} holds {held}; this hcpcs writes schema "
                f"version {LOAD_SCHEMA_VERSION} (layout {sha[:12]}). Nothing was changed. To "
                f"rebuild it (drops schema {target.schema} and everything in it, then loads "
                f"every release, in one transaction): hcpcs load '{target.shown}' "
                f"--schema {target.schema} --migrate")
        _execute(con, [f"DROP SCHEMA {s} CASCADE"])
    _execute(con, [f"CREATE SCHEMA {s}", _STATE_DDL.format(s=s),
                   *(create_table(target.schema, t) for t in tables),
                   f"INSERT INTO {s}.load_state VALUES ({LOAD_SCHEMA_VERSION}, {literal(sha)}, "
                   f"{literal(pipeline_version())}, now())"])
    con.execute("CALL pg_clear_cache()")  # DuckDB's view of the target's tables: read it again
    return True


def _check_releases(con: duckdb.DuckDBPyConnection, target: Target) -> list[tuple[str, str]]:
    """Source releases not yet in the target; a target holding other bytes under a release id,
    or releases this database lacks, was loaded from another data directory: refused."""
    held = dict(_query(con, f"SELECT release_id, raw_sha256 FROM {_q(target.schema)}"
                            ".loaded_releases"))
    source = con.execute("SELECT release_id, raw_sha256 FROM src.releases "
                         "ORDER BY release_order").fetchall()
    ours = dict(source)
    other = sorted(r for r, sha in held.items() if ours.get(r) != sha)
    if other:
        raise LoadError(
            f"{target.shown}: schema {target.schema} holds release(s) {', '.join(other)} from "
            "other raw files than this database (or that it does not have): it was loaded from "
            "another data directory. Nothing was changed. Load into another --schema, or rebuild "
            f"it from this database with --migrate")
    return [(r, sha) for r, sha in source if r not in held]


def _record(schema: str, writes: Sequence[tuple[str, str, str | None, int]],
            new: Sequence[tuple[str, str]]) -> list[str]:
    """The statements that record in the target what this load wrote."""
    s = _q(schema)
    return [
        *(f"DELETE FROM {s}.loaded_slices WHERE table_name = {literal(n)} AND release_id = "
          f"{literal(r)}" for n, r, f, _ in writes if f is None),
        *(f"INSERT INTO {s}.loaded_slices VALUES ({literal(n)}, {literal(r)}, {literal(f)}, "
          f"{rows}, now()) ON CONFLICT (table_name, release_id) DO UPDATE SET fingerprint = "
          "EXCLUDED.fingerprint, row_count = EXCLUDED.row_count, loaded_at = EXCLUDED.loaded_at"
          for n, r, f, rows in writes if f is not None),
        *(f"INSERT INTO {s}.loaded_releases VALUES ({literal(r)}, {literal(sha)}, now())"
          for r, sha in new),
        f"UPDATE {s}.load_state SET pipeline_version = {literal(pipeline_version())}, "
        "loaded_at = now()"]


def _write(con: duckdb.DuckDBPyConnection, target: Target, tables: Sequence[SourceTable],
           migrate: bool, say: Callable[[str], None], result: LoadResult) -> bool:
    """The load's statements, inside its transaction; False when there was nothing to write."""
    schema = target.schema
    # Two loads into one schema take turns, and the second then finds nothing new: it must see
    # what the first committed while it waited, so READ COMMITTED (the extension begins every
    # transaction REPEATABLE READ, whose snapshot would predate the wait).
    _execute(con, ["SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
                   f"SELECT pg_advisory_xact_lock(hashtext({literal('hcpcs load ' + schema)}))"])
    result.created = _prepare(con, target, tables, migrate)
    new = _check_releases(con, target)
    held = {(t, r): f for t, r, f in _query(
        con, f"SELECT table_name, release_id, fingerprint FROM {_q(schema)}.loaded_slices")}
    writes: list[tuple[str, str, str | None, int]] = []  # table, slice, fingerprint, rows
    for t in tables:
        slices = _fingerprints(con, t)
        stale = sorted(s for s, (f, _) in slices.items() if held.get((t.name, s)) != f)
        gone = sorted(s for (name, s) in held if name == t.name and s not in slices)
        if stale or gone:
            say(f"copying {t.name}" + (f" ({len(stale) + len(gone)} release(s))"
                                       if table(t.name).per_release else ""))
            _copy(con, schema, t, [*stale, *gone], fresh=result.created)
            writes += [(t.name, s, *slices[s]) for s in stale]
            writes += [(t.name, s, None, 0) for s in gone]
    if result.created:
        _execute(con, [stmt for t in tables for stmt in keys(schema, t)])
    result.slices = {f"{n}/{s}" if s else n: rows for n, s, f, rows in writes if f}
    result.added_releases = [r for r, _ in new]
    if not writes and not new:
        return False
    _execute(con, [*_record(schema, writes, new),
                   *(c for t in tables for c in comments(schema, t))])
    return True


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back explicitly: left to ``close``, a rollback over a lost connection throws inside
    the postgres extension, which aborts the whole process (std::terminate)."""
    with contextlib.suppress(duckdb.Error):  # then the server rolled back when it ended
        con.execute("ROLLBACK")


def load(data_dir: Path, url: str, *, schema: str = "hcpcs", migrate: bool = False,
         say: Callable[[str], None] = lambda _: None) -> LoadResult:
    """Load the database of ``data_dir`` into ``schema`` of the PostgreSQL ``url``, in one
    transaction; ``migrate`` rebuilds a schema of another layout instead of refusing it."""
    started = time.monotonic()
    target = Target.parse(url, schema)
    db = DataDir(data_dir).database
    if not db.exists():
        raise LoadError(f"{db}: no database to load; run `hcpcs run` or `hcpcs backfill` first")
    result = LoadResult(target.shown, schema)
    con = duckdb.connect()
    try:
        load_extension(con)
        con.execute(f"ATTACH {literal(str(db))} AS src (READ_ONLY)")
        if problem := outdated(con, db, "src"):
            raise LoadError(problem)
        secret = ""
        if target.password is not None:
            con.execute(f"CREATE TEMPORARY SECRET hcpcs_target (TYPE postgres, "
                        f"PASSWORD {literal(target.password)})")
            secret = ", SECRET hcpcs_target"
        con.execute(f"ATTACH {literal(target.conninfo)} AS pg (TYPE postgres{secret})")
        tables = source_tables(con)
        result.releases = con.execute("SELECT count(*) FROM src.releases").fetchone()[0]
        con.execute("BEGIN")
        try:
            wrote = _write(con, target, tables, migrate, say, result)
        except BaseException:
            _rollback(con)
            raise
        con.execute("COMMIT" if wrote else "ROLLBACK")
        result.status = "loaded" if wrote else "unchanged"
    except duckdb.Error as exc:
        raise _error(exc, target) from None
    finally:
        con.close()
    result.seconds = time.monotonic() - started
    return result
