"""Rebuild history and changes from every published release, atomically.

Only the latest revision of each quarter (an "effective" release) takes part in history; every
revision stays in ``releases`` and ``codes``. The whole database is rebuilt from the Parquet files
into a new file beside ``hcpcs.duckdb`` and renamed over it, so readers never see a half-built
database, a failure or a kill leaves the previous one, and the result depends only on which
releases are published, never on the order they were loaded in.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from contracts.files import durable_replace, fsync_path, write_parquet
from contracts.layout import CODES_SCHEMA, TRACKED_FIELDS
from contracts.paths import DB_NAME, DataDir
from contracts.release import Manifest
from warehouse import contract, database, views
from warehouse.changes import EXPECTED_ACTIONS, VALUE_TYPES, value_type
from warehouse.lock import publish_lock
from warehouse.publish import published_releases
from warehouse.replacements import create_replacements
from warehouse.tables import outdated
from warehouse.validity import (
    VALID_FROM_BASIS,
    knowledge_sql,
    valid_from_date,
    versions_known_at,
)

_TRACKED = tuple(f.name for f in TRACKED_FIELDS)
_WHITESPACE_INSENSITIVE = frozenset(f.name for f in TRACKED_FIELDS if f.compare == "whitespace")


@dataclass(frozen=True)
class RebuildSummary:
    releases: int
    effective_releases: int
    codes: int
    versions: int
    changes: int
    changes_by_type: dict[str, int] = field(default_factory=dict)
    database: Path | None = None


# What RE2's ``\s`` matches besides a single space; without these and without two spaces in a row,
# collapsing white space changes nothing, and the regex (most of the hashing time) is skipped.
_RUN_OF_WHITE_SPACE = ("'  '", "chr(9)", "chr(10)", "chr(12)", "chr(13)")


def _cmp(name: str, prefix: str = "") -> str:
    """The compared form of a field: descriptions with whitespace collapsed, others as stored."""
    col = f"{prefix}{name}"
    if name in _WHITESPACE_INSENSITIVE:
        run = " OR ".join(f"contains({col}, {s})" for s in _RUN_OF_WHITE_SPACE)
        return (f"CASE WHEN {run} THEN trim(regexp_replace({col}, '\\s+', ' ', 'g')) "
                f"ELSE trim({col}) END")
    return col


# Rows of ``flagged`` that bring a change (compared with their previous appearance), and rows
# after which the code leaves the file (absent from the next effective release).
_PAIRED = "(event IS NOT NULL OR (prev_seq IS NOT NULL AND version_start))"
_LAST_SEQ = "(SELECT max(history_seq) FROM releases)"  # the latest effective release
_LEAVES = f"((next_seq IS NULL OR next_seq > seq + 1) AND seq < {_LAST_SEQ})"


def _history_sql(con: duckdb.DuckDBPyConnection) -> None:
    content = ", ".join(_cmp(f) for f in _TRACKED)
    # Narrow: one row per code per effective release, content reduced to two hashes; the wide
    # rows are only fetched back from ``codes`` for the few rows that changed.
    con.execute(
        f"""CREATE TEMP TABLE snap AS
        SELECT r.history_seq AS seq, r.effective_from, c.release_id, c.code, c.kind,
               c.action_code, c.added_date, c.action_effective_date, c.termination_date,
               hash({_cmp("long_description")}) AS long_hash, hash({content}) AS content_hash
        FROM codes c JOIN releases r USING (release_id)
        WHERE r.effective"""
    )
    # Each row with its previous appearance (p_*; null when new) and the event it brings:
    # added, reused / redefined (a new episode), reactivated, discontinued; whether a version
    # starts, and on what CMS's dates say it is in force from (valid time; VALID_FROM_BASIS).
    con.execute(
        f"""CREATE TEMP TABLE flagged AS
        WITH w AS (
            SELECT *,
              lag(seq) OVER win AS prev_seq, lead(seq) OVER win AS next_seq,
              lag(release_id) OVER win AS p_release_id, lag(added_date) OVER win AS p_added,
              lag(action_effective_date) OVER win AS p_action_effective,
              lag(termination_date) OVER win AS p_term, lag(long_hash) OVER win AS p_long,
              lag(content_hash) OVER win AS p_content
            FROM snap WINDOW win AS (PARTITION BY code ORDER BY seq)),
        e AS (
            SELECT *,
              CASE
                WHEN prev_seq IS NULL THEN CASE WHEN seq > 1 THEN 'added' END
                WHEN prev_seq < seq - 1 OR (p_term IS NOT NULL AND termination_date IS NULL) THEN
                  CASE WHEN added_date IS DISTINCT FROM p_added OR long_hash <> p_long
                       THEN 'reused' ELSE 'reactivated' END
                WHEN added_date > p_added AND long_hash <> p_long THEN 'redefined'
                WHEN p_term IS NULL AND termination_date IS NOT NULL THEN 'discontinued'
              END AS event,
              prev_seq IS NULL OR prev_seq < seq - 1 OR p_content <> content_hash
                AS version_start
            FROM w)
        SELECT *, {VALID_FROM_BASIS} AS valid_from_basis,
          -- a sum is a HUGEINT: an INTEGER, a 32-bit integer in any warehouse
          CAST(sum(version_start::INT) OVER acc AS INTEGER) AS version,
          CAST(sum((prev_seq IS NULL OR event IN ('reused', 'redefined'))::INT) OVER acc
               AS INTEGER) AS episode
        FROM e WINDOW acc AS (PARTITION BY code ORDER BY seq ROWS UNBOUNDED PRECEDING);
        DROP TABLE snap"""  # each scratch table dropped once read: 10-15 MiB less at the peak
    )
    # The few wide rows the tables below show, fetched from ``codes`` in one scan: each version's
    # first row, both sides of each change, and each code's last row before it left the file.
    con.execute(
        f"""CREATE TEMP TABLE picked AS
        WITH wanted AS (
            SELECT release_id, code FROM flagged
            WHERE version_start OR {_PAIRED} OR {_LEAVES}
            UNION SELECT p_release_id, code FROM flagged WHERE {_PAIRED})
        SELECT c.* FROM codes c SEMI JOIN wanted w USING (release_id, code)"""
    )
    skip = {"source_line", "line_count", "code"}
    fields = ", ".join(f"c.{col}" for col in CODES_SCHEMA if col not in skip)
    ends_with = "('reused', 'redefined', 'discontinued')"
    con.execute(
        f"""CREATE TEMP TABLE versions AS
        WITH spans AS (
            SELECT code, version, min(seq) AS from_seq, max(seq) AS to_seq
            FROM flagged GROUP BY code, version),
        starts AS (SELECT * FROM flagged WHERE version_start),
        ends AS (
            SELECT s.*, v.release_id, v.episode, v.valid_from_basis,
                   {valid_from_date("v")} AS valid_from,
                   nx.event AS next_event, nx.seq AS next_seq
            FROM spans s
            JOIN starts v ON v.code = s.code AND v.version = s.version
            LEFT JOIN starts nx ON nx.code = s.code AND nx.version = s.version + 1)
        SELECT e.code, e.episode, e.version,
               rf.release_id AS valid_from_release, rt.release_id AS valid_to_release,
               rn.release_id AS ended_in_release,
               CASE WHEN e.next_seq = e.to_seq + 1 AND e.next_event IN {ends_with}
                      THEN e.next_event
                    WHEN e.next_seq = e.to_seq + 1 THEN 'changed'
                    ELSE 'dropped' END AS end_reason,
               -- what depends on the release it is known at: versions_known_at, below
               NULL::BIGINT AS release_count, NULL::BOOLEAN AS is_current,
               -- never before an earlier version's start (CMS's dates are not always ordered)
               greatest(e.valid_from, max(e.valid_from) OVER (
                   PARTITION BY e.code ORDER BY e.version
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)) AS valid_from_date,
               NULL::DATE AS valid_to_date, e.valid_from_basis,
               {fields}
        FROM ends e
        JOIN picked c ON c.release_id = e.release_id AND c.code = e.code
        JOIN releases rf ON rf.history_seq = e.from_seq
        JOIN releases rt ON rt.history_seq = e.to_seq
        LEFT JOIN releases rn ON rn.history_seq = e.to_seq + 1"""
    )
    con.execute(knowledge_sql("versions"))
    con.execute(f"CREATE TABLE code_history AS {versions_known_at('versions', _LAST_SEQ)} "
                "ORDER BY code, version; DROP TABLE versions")
    _changes_sql(con)


def _values(family: str, old: str, new: str) -> str:
    """The typed value columns of one kind of change row: ``old``/``new`` in ``family``'s pair,
    NULL in every other."""
    cols = []
    for fam, sql_type in VALUE_TYPES.items():
        o, n = (old, new) if fam == family else ("NULL", "NULL")
        cols += [f"CAST({o} AS {sql_type}) AS old_{fam}", f"CAST({n} AS {sql_type}) AS new_{fam}"]
    return ", ".join(cols)


def _as_text(side: str) -> str:
    return "coalesce(" + ", ".join(
        f"CAST({side}_{fam} AS VARCHAR)" for fam in VALUE_TYPES) + ")"


def _changes_sql(con: duckdb.DuckDBPyConnection) -> None:
    wide = ", ".join(f"c.{f} AS c_{f}, p.{f} AS p_{f}" for f in _TRACKED)
    # The rows that changed (or bring an event), side by side with their previous appearance.
    con.execute(
        f"""CREATE TEMP TABLE pairs AS
        SELECT x.seq, x.code, x.kind, x.action_code, x.event, {wide}
        FROM flagged x
        JOIN picked c ON c.release_id = x.release_id AND c.code = x.code
        LEFT JOIN picked p ON p.release_id = x.p_release_id AND p.code = x.code
        WHERE {_PAIRED}"""
    )
    # Field diffs against the previous appearance, except when a new episode starts (the row of
    # the event carries the old and new meaning) and except the termination date when the event
    # itself is about it (discontinued / reactivated).
    diffs = []
    for f in _TRACKED:
        guard = ("AND coalesce(event, '') NOT IN ('discontinued', 'reactivated')"
                 if f == "termination_date" else "")
        diffs.append(
            f"""SELECT seq, code, kind, '{f}_changed' AS change_type, '{f}' AS field,
                   {_values(value_type(f), f"p_{f}", f"c_{f}")},
                   action_code, NULL::BOOLEAN AS dropped_after_termination
            FROM pairs
            WHERE coalesce(event, '') NOT IN ('added', 'reused', 'redefined')
              AND {_cmp(f, "p_")} IS DISTINCT FROM {_cmp(f, "c_")} {guard}"""
        )
    # Events that moved the termination date carry it; the others (added, reused, redefined, back
    # in the file) are about the whole code and carry its meaning.
    about_term = ("event IN ('discontinued', 'reactivated') "
                  "AND p_termination_date IS DISTINCT FROM c_termination_date")
    events = [
        f"""SELECT seq, code, kind, event, 'termination_date',
                   {_values("date", "p_termination_date", "c_termination_date")},
                   action_code, NULL::BOOLEAN
            FROM pairs WHERE {about_term}""",
        f"""SELECT seq, code, kind, event, NULL,
                   {_values("text", "p_long_description", "c_long_description")},
                   action_code, NULL::BOOLEAN
            FROM pairs WHERE event IS NOT NULL AND NOT ({about_term})""",
        # A code seen for the first time already terminated was added and discontinued between.
        f"""SELECT seq, code, kind, 'discontinued', 'termination_date',
                   {_values("date", "NULL", "c_termination_date")}, action_code, NULL::BOOLEAN
            FROM pairs WHERE event = 'added' AND c_termination_date IS NOT NULL""",
        f"""SELECT x.seq + 1, x.code, x.kind, 'dropped', NULL,
                   {_values("text", "c.long_description", "NULL")},
                   NULL, x.termination_date IS NOT NULL
            FROM flagged x JOIN picked c ON c.release_id = x.release_id AND c.code = x.code
            WHERE {_LEAVES}""",
    ]
    expected = ", ".join(f"('{t}', '{a}')" for t, a in sorted(EXPECTED_ACTIONS.items()))
    union = "\nUNION ALL\n".join([*diffs, *events])
    typed = ", ".join(f"x.old_{fam}, x.new_{fam}" for fam in VALUE_TYPES)
    con.execute(
        f"""CREATE TABLE code_changes AS
        WITH expected(change_type, actions) AS (VALUES {expected}),
        raw AS ({union})
        SELECT r.release_id, pr.release_id AS previous_release_id, x.code, x.kind,
               x.change_type, x.field, {_as_text("x.old")} AS old_value,
               {_as_text("x.new")} AS new_value, {typed}, x.action_code,
               t.action AS reported_action,
               coalesce(x.dropped_after_termination,
                        coalesce(contains(e.actions, x.action_code), false)) AS action_agrees,
               CASE WHEN x.change_type = 'dropped' THEN NOT x.dropped_after_termination
                    ELSE coalesce(x.action_code, 'N') = 'N' END AS silent
        FROM raw x
        JOIN releases r ON r.history_seq = x.seq
        JOIN releases pr ON pr.history_seq = x.seq - 1
        LEFT JOIN expected e ON e.change_type = x.change_type
        LEFT JOIN (SELECT release_id, code,
                          string_agg(DISTINCT action, '' ORDER BY action) AS action
                   FROM transactions GROUP BY ALL) t
          ON t.release_id = r.release_id AND t.code = x.code
        ORDER BY r.history_seq, x.code, x.change_type, x.field;
        DROP TABLE pairs; DROP TABLE picked; DROP TABLE flagged"""
    )


#: Rows of a DuckDB row group: the unit a scan hands to a thread.
ROW_GROUP_ROWS = 122_880


def _configure(con: duckdb.DuckDBPyConnection, manifests: list[Manifest]) -> None:
    """Settings of the build (measured on the three real releases; ``tests/bench``):

    - no progress bar: the caller reports progress;
    - each commit writes its tables into the file at once (a checkpoint) instead of into the WAL
      first and into the file again at the end: once written, a table's memory is freed (16 MiB
      less at the peak);
    - no more threads than ``codes`` has row groups: the history of a few releases is one row
      group, and each more thread only adds its own state (a quarter of the CPU time, 14 MiB);
    - memory freed in bulk goes back to the system at once, not past 512 MiB (26 MiB less at
      the peak, for a few % more time).
    """
    codes = sum(m.counts["codes"] for m in manifests)
    threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
    con.execute(f"""SET enable_progress_bar = false;
        SET checkpoint_threshold = '1 KiB';
        SET threads = {max(1, min(threads, -(-codes // ROW_GROUP_ROWS)))};
        SET allocator_bulk_deallocation_flush_threshold = '1 MiB'""")


def _create_all(con: duckdb.DuckDBPyConnection, root: Path, manifests: list[Manifest]) -> None:
    """Every table, view, macro and comment of ``hcpcs.duckdb``, from the releases published in
    ``root``."""
    _configure(con, manifests)
    database.load_base(con, root, manifests)
    database.create_lookups(con)
    _history_sql(con)
    create_replacements(con)
    database.comment_all(con)
    views.create_views(con)


def _build(path: Path, paths: DataDir, manifests: list[Manifest]) -> None:
    con = duckdb.connect(str(path))
    try:
        _create_all(con, paths.root, manifests)
        # Closing checkpoints too, but ignores a failure and leaves the data in the WAL, which
        # is not renamed with the file: here, a failure raises.
        con.execute("CHECKPOINT")
        published = {paths.history_parquet: contract.fetch(con, "code_history"),
                     paths.changes_parquet: contract.fetch(con, "code_changes")}
    finally:
        con.close()
    for target, table in published.items():  # once DuckDB's memory is freed
        write_parquet(table, target)


def empty_database() -> duckdb.DuckDBPyConnection:
    """``hcpcs.duckdb`` as a data directory with no release builds it, in memory: every table,
    view, macro and comment, no row. The schema the docs show (``warehouse.export``) is read
    from it, and the tests check every real database has that same schema."""
    con = duckdb.connect()
    with tempfile.TemporaryDirectory(prefix="hcpcs-empty-") as empty:
        _create_all(con, Path(empty), [])
    return con


def rebuild(data_dir: Path) -> RebuildSummary:
    """Rebuild ``hcpcs.duckdb`` and the history/changes Parquet from every published release."""
    paths = DataDir(data_dir)
    with publish_lock(paths.root):
        manifests = published_releases(paths.root)
        if not manifests:
            raise ValueError(f"{paths.root}: no published release to build history from")
        tmp = paths.root / f".{DB_NAME}.tmp-{os.getpid()}"
        for leftover in paths.root.glob(f".{DB_NAME}.tmp-*"):
            leftover.unlink()  # a killed rebuild's file (we hold the lock, so it is dead)
        try:
            _build(tmp, paths, manifests)
            fsync_path(tmp)
            durable_replace(tmp, paths.database)
        finally:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)
        return summarize(paths.database)


def database_is_current(data_dir: Path) -> bool:
    """True if hcpcs.duckdb exists, has this version's layout and holds exactly the published
    releases (a rebuild that failed after a publish leaves it behind, and a new version of the
    pipeline may build other tables: the next run must rebuild)."""
    try:
        with duckdb.connect(str(DataDir(data_dir).database), read_only=True) as con:
            built = {r for (r,) in con.execute("SELECT release_id FROM releases").fetchall()}
            if outdated(con, DataDir(data_dir).database):
                return False
    except duckdb.Error:  # missing, unreadable or not ours
        return False
    return built == {m.release_id for m in published_releases(data_dir)}


def summarize(db: Path) -> RebuildSummary:
    with duckdb.connect(str(db), read_only=True) as con:
        one = con.execute(
            """SELECT (SELECT count(*) FROM releases), (SELECT count(*) FROM releases
               WHERE effective), (SELECT count(*) FROM codes), (SELECT count(*) FROM code_history),
               (SELECT count(*) FROM code_changes)"""
        ).fetchone()
        by_type = dict(con.execute(
            "SELECT change_type, count(*) FROM code_changes GROUP BY 1 ORDER BY 1").fetchall())
    assert one is not None
    return RebuildSummary(*one, changes_by_type=by_type, database=db)
