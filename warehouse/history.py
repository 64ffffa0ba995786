"""Rebuild history and changes from every published release, atomically.

Only the latest revision of each quarter (an "effective" release) takes part in history; every
revision stays in ``releases`` and ``codes``. The whole database is rebuilt from the Parquet files
into a new file beside ``hcpcs.duckdb`` and renamed over it, so readers never see a half-built
database, a failure or a kill leaves the previous one, and the result depends only on which
releases are published, never on the order they were loaded in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from contracts.files import write_parquet
from contracts.layout import CODES_SCHEMA, TRACKED_FIELDS
from contracts.paths import DB_NAME, DataDir
from contracts.release import Manifest
from warehouse import database
from warehouse.changes import EXPECTED_ACTIONS
from warehouse.lock import publish_lock
from warehouse.publish import published_releases

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
        return (f"CASE WHEN {run} THEN regexp_replace(trim({col}), '\\s+', ' ', 'g') "
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
        SELECT r.history_seq AS seq, c.release_id, c.code, c.kind, c.action_code,
               c.added_date, c.termination_date,
               hash({_cmp("long_description")}) AS long_hash, hash({content}) AS content_hash
        FROM codes c JOIN releases r USING (release_id)
        WHERE r.effective"""
    )
    # Each row with its previous appearance (p_*; null when new) and the event it brings:
    # added, reused (new episode), reactivated, discontinued; and whether a version starts.
    con.execute(
        """CREATE TEMP TABLE flagged AS
        WITH w AS (
            SELECT *,
              lag(seq) OVER win AS prev_seq, lead(seq) OVER win AS next_seq,
              lag(release_id) OVER win AS p_release_id, lag(added_date) OVER win AS p_added,
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
                WHEN p_term IS NULL AND termination_date IS NOT NULL THEN 'discontinued'
              END AS event,
              prev_seq IS NULL OR prev_seq < seq - 1 OR p_content <> content_hash
                AS version_start
            FROM w)
        SELECT *,
          sum(version_start::INT) OVER acc AS version,
          sum((prev_seq IS NULL OR event = 'reused')::INT) OVER acc AS episode
        FROM e WINDOW acc AS (PARTITION BY code ORDER BY seq ROWS UNBOUNDED PRECEDING)"""
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
    con.execute(
        f"""CREATE TABLE code_history AS
        WITH spans AS (
            SELECT code, version, min(seq) AS from_seq, max(seq) AS to_seq, count(*) AS n
            FROM flagged GROUP BY code, version),
        starts AS (SELECT * FROM flagged WHERE version_start),
        ends AS (
            SELECT s.*, v.release_id, v.episode, nx.event AS next_event, nx.seq AS next_seq
            FROM spans s
            JOIN starts v ON v.code = s.code AND v.version = s.version
            LEFT JOIN starts nx ON nx.code = s.code AND nx.version = s.version + 1)
        SELECT e.code, e.episode, e.version,
               rf.release_id AS valid_from_release, rt.release_id AS valid_to_release,
               rn.release_id AS ended_in_release,
               CASE WHEN e.to_seq = {_LAST_SEQ} THEN NULL
                    WHEN e.next_seq = e.to_seq + 1 AND e.next_event = 'reused' THEN 'reused'
                    WHEN e.next_seq = e.to_seq + 1 THEN 'changed'
                    ELSE 'dropped' END AS end_reason,
               e.n AS release_count, e.to_seq = {_LAST_SEQ} AS is_current,
               rf.effective_from AS valid_from_date,
               CAST(rn.effective_from - INTERVAL 1 DAY AS DATE) AS valid_to_date,
               {fields}
        FROM ends e
        JOIN picked c ON c.release_id = e.release_id AND c.code = e.code
        JOIN releases rf ON rf.history_seq = e.from_seq
        JOIN releases rt ON rt.history_seq = e.to_seq
        LEFT JOIN releases rn ON rn.history_seq = e.to_seq + 1
        ORDER BY e.code, e.version"""
    )
    _changes_sql(con)


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
    # Field diffs against the previous appearance, except when a new episode starts (the reused
    # row carries the old and new meaning) and except the termination date when the event itself
    # is about it (discontinued / reactivated).
    diffs = []
    for f in _TRACKED:
        guard = ("AND coalesce(event, '') NOT IN ('discontinued', 'reactivated')"
                 if f == "termination_date" else "")
        diffs.append(
            f"""SELECT seq, code, kind, '{f}_changed' AS change_type, '{f}' AS field,
                   CAST(p_{f} AS VARCHAR) AS old_value, CAST(c_{f} AS VARCHAR) AS new_value,
                   action_code, NULL::BOOLEAN AS dropped_after_termination
            FROM pairs
            WHERE coalesce(event, '') NOT IN ('added', 'reused')
              AND {_cmp(f, "p_")} IS DISTINCT FROM {_cmp(f, "c_")} {guard}"""
        )
    events = """SELECT seq, code, kind, event,
               CASE WHEN event IN ('discontinued', 'reactivated') THEN 'termination_date'
                    ELSE 'long_description' END,
               CASE WHEN event IN ('discontinued', 'reactivated')
                    THEN CAST(p_termination_date AS VARCHAR) ELSE p_long_description END,
               CASE WHEN event IN ('discontinued', 'reactivated')
                    THEN CAST(c_termination_date AS VARCHAR) ELSE c_long_description END,
               action_code, NULL::BOOLEAN
        FROM pairs WHERE event IS NOT NULL"""
    # A code seen for the first time already terminated was added and discontinued in between.
    born_terminated = """SELECT seq, code, kind, 'discontinued', 'termination_date', NULL,
               CAST(c_termination_date AS VARCHAR), action_code, NULL::BOOLEAN
        FROM pairs WHERE event = 'added' AND c_termination_date IS NOT NULL"""
    dropped = f"""SELECT x.seq + 1, x.code, x.kind, 'dropped', NULL, c.long_description, NULL,
               NULL, x.termination_date IS NOT NULL
        FROM flagged x JOIN picked c ON c.release_id = x.release_id AND c.code = x.code
        WHERE {_LEAVES}"""
    expected = ", ".join(f"('{t}', '{a}')" for t, a in sorted(EXPECTED_ACTIONS.items()))
    union = "\nUNION ALL\n".join([*diffs, events, born_terminated, dropped])
    con.execute(
        f"""CREATE TABLE code_changes AS
        WITH expected(change_type, actions) AS (VALUES {expected}),
        raw AS ({union})
        SELECT r.release_id, pr.release_id AS previous_release_id, x.code, x.kind,
               x.change_type, x.field, x.old_value, x.new_value, x.action_code,
               coalesce(x.dropped_after_termination,
                        coalesce(contains(e.actions, x.action_code), false)) AS action_agrees,
               CASE WHEN x.change_type = 'dropped' THEN NULL
                    ELSE coalesce(x.action_code, 'N') = 'N' END AS silent
        FROM raw x
        JOIN releases r ON r.history_seq = x.seq
        JOIN releases pr ON pr.history_seq = x.seq - 1
        LEFT JOIN expected e ON e.change_type = x.change_type
        ORDER BY r.history_seq, x.code, x.change_type, x.field"""
    )


def _build(path: Path, paths: DataDir, manifests: list[Manifest]) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("SET enable_progress_bar = false")  # the caller reports progress
        database.load_base(con, paths.root, manifests)
        database.create_lookups(con)
        _history_sql(con)
        database.create_views(con)
        database.comment_all(con)
        con.execute("CHECKPOINT")
        write_parquet(con.sql("SELECT * FROM code_history").pl(), paths.history_parquet)
        write_parquet(con.sql("SELECT * FROM code_changes").pl(), paths.changes_parquet)
    finally:
        con.close()


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
            os.replace(tmp, paths.database)
        finally:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)
        return summarize(paths.database)


def database_is_current(data_dir: Path) -> bool:
    """True if hcpcs.duckdb exists and holds exactly the published releases (a rebuild that
    failed after a publish leaves it behind; the next run must rebuild)."""
    try:
        with duckdb.connect(str(DataDir(data_dir).database), read_only=True) as con:
            built = {r for (r,) in con.execute("SELECT release_id FROM releases").fetchall()}
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
