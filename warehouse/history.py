"""Rebuild history and changes from every published release, atomically.

Only the latest revision of each quarter (an "effective" release) takes part in history; every
revision stays in ``releases`` and ``codes``. The whole database is rebuilt from the Parquet files
into a new file beside ``hcpcs.duckdb`` and renamed over it, so readers never see a half-built
database, a failure or a kill leaves the previous one, and the result depends only on which
releases are published, never on the order they were loaded in.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from warehouse import database
from warehouse.changes import EXPECTED_ACTIONS, TRACKED_FIELDS, WHITESPACE_INSENSITIVE
from warehouse.files import write_parquet
from warehouse.lock import publish_lock
from warehouse.publish import published_releases

DB_NAME = "hcpcs.duckdb"
HISTORY_PARQUET = Path("parquet") / "history" / "code_history.parquet"
CHANGES_PARQUET = Path("parquet") / "changes" / "code_changes.parquet"


@dataclass(frozen=True)
class RebuildSummary:
    releases: int
    effective_releases: int
    codes: int
    versions: int
    changes: int
    changes_by_type: dict[str, int] = field(default_factory=dict)
    database: Path | None = None


def _cmp(name: str, alias: str = "") -> str:
    """The compared form of a field: descriptions with whitespace collapsed, others as stored."""
    col = f"{alias}.{name}" if alias else name
    if name in WHITESPACE_INSENSITIVE:
        return f"regexp_replace(trim({col}), '\\s+', ' ', 'g')"
    return col


HISTORY_COLUMNS: dict[str, str] = {
    "code": "HCPCS code or modifier.",
    "episode": "Episode of the code (1 = first life; +1 each time a retired code is reused).",
    "version": "Version number of the code across all its episodes (1, 2, ...).",
    "valid_from_release": "First effective release carrying this version.",
    "valid_to_release": "Last effective release carrying this version.",
    "ended_in_release": "Release where this version stopped (changed or dropped); null if current.",
    "end_reason": "Why the version ended: changed, dropped or reused; null if current.",
    "release_count": "Number of effective releases carrying this version.",
    "is_current": "The version is in the latest effective release.",
    "valid_from_date": "First day of the quarter of valid_from_release.",
    "valid_to_date": "Day before ended_in_release's quarter starts; null if not ended.",
}
CHANGE_COLUMNS: dict[str, str] = {
    "release_id": "Release in which the change is seen.",
    "previous_release_id": "The effective release it is compared with (the one just before).",
    "code": "HCPCS code or modifier.",
    "kind": "procedure or modifier.",
    "change_type": "What changed: see the change_types table.",
    "field": "The field that changed (null for added / dropped).",
    "old_value": "Value before (as text; lists as [a, b, ...]).",
    "new_value": "Value after (as text).",
    "action_code": "CMS action code on the code in this release (null when dropped).",
    "action_agrees": "CMS's action code announces this change (dropped: the code had been "
    "terminated before it left the file).",
    "silent": "CMS changed the code but flagged it N (no maintenance): a silent change.",
}


def _history_sql(con: duckdb.DuckDBPyConnection) -> None:
    n_long = _cmp("long_description")
    content = ", ".join(_cmp(f) for f in TRACKED_FIELDS)
    con.execute(
        f"""CREATE TEMP TABLE snap AS
        SELECT r.history_seq AS seq, c.*,
               {n_long} AS n_long,
               hash({content}) AS content_hash
        FROM codes c JOIN releases r USING (release_id)
        WHERE r.effective"""
    )
    # One row per code per effective release, with its previous appearance p (null when new) and
    # the event that release brings: added, reused (new episode), reactivated, discontinued.
    con.execute(
        """CREATE TEMP TABLE flagged AS
        WITH w AS (
            SELECT *, lag(seq) OVER (PARTITION BY code ORDER BY seq) AS prev_seq,
                      lead(seq) OVER (PARTITION BY code ORDER BY seq) AS next_seq
            FROM snap)
        SELECT c.*,
            CASE
              WHEN c.prev_seq IS NULL THEN CASE WHEN c.seq > 1 THEN 'added' END
              WHEN c.prev_seq < c.seq - 1
                OR (p.termination_date IS NOT NULL AND c.termination_date IS NULL) THEN
                CASE WHEN c.added_date IS DISTINCT FROM p.added_date
                       OR c.n_long IS DISTINCT FROM p.n_long THEN 'reused'
                     ELSE 'reactivated' END
              WHEN p.termination_date IS NULL AND c.termination_date IS NOT NULL
                THEN 'discontinued'
            END AS event,
            p.seq IS NULL OR c.prev_seq < c.seq - 1 OR p.content_hash <> c.content_hash
                AS version_start
        FROM w c LEFT JOIN w p ON p.code = c.code AND p.seq = c.prev_seq"""
    )
    con.execute(
        """CREATE TEMP TABLE versioned AS
        SELECT *,
          sum(version_start::INT) OVER (PARTITION BY code ORDER BY seq
                                        ROWS UNBOUNDED PRECEDING) AS version,
          sum((prev_seq IS NULL OR event = 'reused')::INT) OVER (PARTITION BY code ORDER BY seq
                                        ROWS UNBOUNDED PRECEDING) AS episode
        FROM flagged"""
    )
    last = "(SELECT max(history_seq) FROM releases)"
    skip = {"source_line", "line_count"}
    fields = ", ".join(f"v.{c}" for c in database.CODES_SCHEMA if c not in skip | {"code"})
    con.execute(
        f"""CREATE TABLE code_history AS
        WITH spans AS (
            SELECT code, version, min(seq) AS from_seq, max(seq) AS to_seq, count(*) AS n
            FROM versioned GROUP BY code, version),
        ends AS (
            SELECT s.*, nx.event AS next_event, nx.seq AS next_seq
            FROM spans s LEFT JOIN versioned nx
              ON nx.code = s.code AND nx.version = s.version + 1 AND nx.version_start)
        SELECT v.code, v.episode, v.version,
               rf.release_id AS valid_from_release, rt.release_id AS valid_to_release,
               rn.release_id AS ended_in_release,
               CASE WHEN e.to_seq = {last} THEN NULL
                    WHEN e.next_seq = e.to_seq + 1 AND e.next_event = 'reused' THEN 'reused'
                    WHEN e.next_seq = e.to_seq + 1 THEN 'changed'
                    ELSE 'dropped' END AS end_reason,
               e.n AS release_count, e.to_seq = {last} AS is_current,
               rf.effective_from AS valid_from_date,
               rn.effective_from - INTERVAL 1 DAY AS valid_to_date,
               {fields}
        FROM ends e
        JOIN versioned v ON v.code = e.code AND v.seq = e.from_seq
        JOIN releases rf ON rf.history_seq = e.from_seq
        JOIN releases rt ON rt.history_seq = e.to_seq
        LEFT JOIN releases rn ON rn.history_seq = e.to_seq + 1
        ORDER BY v.code, v.version"""
    )
    con.execute("ALTER TABLE code_history ALTER valid_to_date TYPE DATE")
    _changes_sql(con)


def _changes_sql(con: duckdb.DuckDBPyConnection) -> None:
    # Field diffs against the previous appearance, except when a new episode starts (the reused
    # row carries the old and new meaning) and except the termination date when the event itself
    # is about it (discontinued / reactivated).
    diffs = []
    for f in TRACKED_FIELDS:
        guard = ("AND coalesce(c.event, '') NOT IN ('discontinued', 'reactivated')"
                 if f == "termination_date" else "")
        diffs.append(
            f"""SELECT c.seq, c.code, c.kind, '{f}_changed' AS change_type, '{f}' AS field,
                   CAST(p.{f} AS VARCHAR) AS old_value, CAST(c.{f} AS VARCHAR) AS new_value,
                   c.action_code, NULL::BOOLEAN AS dropped_after_termination
            FROM flagged c JOIN snap p ON p.code = c.code AND p.seq = c.prev_seq
            WHERE coalesce(c.event, '') <> 'reused'
              AND p.content_hash <> c.content_hash
              AND {_cmp(f, 'p')} IS DISTINCT FROM {_cmp(f, 'c')} {guard}"""
        )
    events = """SELECT c.seq, c.code, c.kind, c.event,
               CASE WHEN c.event IN ('discontinued', 'reactivated') THEN 'termination_date'
                    ELSE 'long_description' END,
               CASE WHEN c.event IN ('discontinued', 'reactivated')
                    THEN CAST(p.termination_date AS VARCHAR) ELSE p.long_description END,
               CASE WHEN c.event IN ('discontinued', 'reactivated')
                    THEN CAST(c.termination_date AS VARCHAR) ELSE c.long_description END,
               c.action_code, NULL::BOOLEAN
        FROM flagged c LEFT JOIN snap p ON p.code = c.code AND p.seq = c.prev_seq
        WHERE c.event IS NOT NULL"""
    # A code seen for the first time already terminated was added and discontinued in between.
    born_terminated = """SELECT c.seq, c.code, c.kind, 'discontinued', 'termination_date', NULL,
               CAST(c.termination_date AS VARCHAR), c.action_code, NULL::BOOLEAN
        FROM flagged c
        WHERE c.event = 'added' AND c.termination_date IS NOT NULL"""
    dropped = """SELECT p.seq + 1, p.code, p.kind, 'dropped', NULL, p.long_description, NULL,
               NULL, p.termination_date IS NOT NULL
        FROM flagged p
        WHERE (p.next_seq IS NULL OR p.next_seq > p.seq + 1)
          AND p.seq < (SELECT max(history_seq) FROM releases)"""
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


def _build(path: Path, data_dir: Path, manifests: list[dict], domains: Mapping[str, Any]) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("BEGIN")
        database.load_base(con, data_dir, manifests)
        database.create_lookups(con, domains)
        _history_sql(con)
        database.create_views(con, domains)
        database.comment_all(con, {"code_history": HISTORY_COLUMNS,
                                   "code_changes": CHANGE_COLUMNS})
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
        write_parquet(con.sql("SELECT * FROM code_history").pl(), data_dir / HISTORY_PARQUET)
        write_parquet(con.sql("SELECT * FROM code_changes").pl(), data_dir / CHANGES_PARQUET)
    finally:
        con.close()


def rebuild(data_dir: Path, domains: Mapping[str, Any] | None = None) -> RebuildSummary:
    """Rebuild ``hcpcs.duckdb`` and the history/changes Parquet from every published release."""
    data_dir = Path(data_dir)
    domains = database._domains() if domains is None else domains
    with publish_lock(data_dir):
        manifests = published_releases(data_dir)
        if not manifests:
            raise ValueError(f"{data_dir}: no published release to build history from")
        final = data_dir / DB_NAME
        tmp = data_dir / f".{DB_NAME}.tmp-{os.getpid()}"
        for leftover in data_dir.glob(f".{DB_NAME}.tmp-*"):
            leftover.unlink()  # a killed rebuild's file (we hold the lock, so it is dead)
        try:
            _build(tmp, data_dir, manifests, domains)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
            Path(f"{tmp}.wal").unlink(missing_ok=True)
        return summarize(final)


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
