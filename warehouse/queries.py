"""Questions analysts (and the ``hcpcs`` CLI) ask of ``hcpcs.duckdb``, as DuckDB relations.

A relation runs when it is read: ``.pl()`` gives an analyst a Polars frame, ``records()`` gives
the query commands plain rows, so ``hcpcs code`` / ``diff`` / ``status`` import neither Polars,
numpy nor pyarrow (a second of a one-row lookup). This module imports only DuckDB.
"""

from __future__ import annotations

from typing import Any

import duckdb

from warehouse.sql import literal


def records(relation: duckdb.DuckDBPyRelation) -> list[dict[str, Any]]:
    """The relation's rows as dicts, column name -> Python value (DATE: ``datetime.date``)."""
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def release_summary(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyRelation:
    """One row per release: announced and observed counts, gate warnings (the view)."""
    return con.sql("SELECT * FROM release_summary")


def release_details(con: duckdb.DuckDBPyConnection) -> dict[str, duckdb.DuckDBPyRelation]:
    """What ``hcpcs status`` lists under the releases: findings by rule, repairs, TXT/xlsx
    differences by field and class, waivers."""
    return {
        "findings (record level: published, codes flagged in code_flags)": con.sql(
            """SELECT release_id AS release, rule, severity, count(*) AS codes,
                      string_agg(code || ' ' || field || '=' || raw_value, '; '
                                 ORDER BY code) FILTER (rn <= 3) AS sample
               FROM (SELECT *, row_number() OVER (PARTITION BY release_id, rule ORDER BY code)
                               AS rn FROM findings)
               GROUP BY ALL ORDER BY release, rule"""),
        "repairs (transforms/repairs.csv)": con.sql(
            """SELECT release_id AS release, code, field, raw_value AS raw,
                      repaired_value AS repaired, applied
               FROM repairs ORDER BY release, code, field"""),
        "TXT vs xlsx differences": con.sql(
            """SELECT release_id AS release, field, difference, count(*) AS codes,
                      string_agg(code, ' ' ORDER BY code) FILTER (rn <= 3) AS sample
               FROM (SELECT *, row_number() OVER (PARTITION BY release_id, field, difference
                                                  ORDER BY code) AS rn FROM reconciliation)
               GROUP BY ALL ORDER BY release, field, difference"""),
        "waivers": con.sql(
            """SELECT release_id AS release, rule, left(sha256, 12) AS sha256, accepted_by,
                      accepted_at, reason, applied FROM waivers ORDER BY accepted_at"""),
    }


def changes_by_type(con: duckdb.DuckDBPyConnection, release_ids: list[str]) -> dict[str, int]:
    """How many changes of each type these releases brought (a run's summary)."""
    rows = con.execute(
        f"""SELECT change_type, count(*) FROM code_changes
            WHERE list_contains({literal(release_ids)}, release_id) GROUP BY 1 ORDER BY 1"""
    ).fetchall()
    return {t: int(n) for t, n in rows}


def _seq(con: duckdb.DuckDBPyConnection, release: str) -> int:
    row = con.execute(
        f"SELECT history_seq, superseded_by FROM releases WHERE release_id = {literal(release)}"
    ).fetchone()
    if row is None:
        raise KeyError(f"release {release} is not in the database")
    if row[0] is None:
        raise KeyError(f"release {release} is superseded by {row[1]}; use that id")
    return int(row[0])


def changes_between(
    con: duckdb.DuckDBPyConnection, release_a: str, release_b: str,
    change_type: str | None = None, silent_only: bool = False,
) -> duckdb.DuckDBPyRelation:
    """Every change after ``release_a`` up to and including ``release_b`` (effective releases),
    optionally only of ``change_type``, or only those CMS did not flag (``silent_only``)."""
    lo, hi = sorted((_seq(con, release_a), _seq(con, release_b)))
    only = (f"AND x.change_type = {literal(change_type)}" if change_type else "") + (
        " AND x.silent" if silent_only else "")
    return con.sql(
        f"""SELECT x.* FROM code_changes_decoded x JOIN releases r USING (release_id)
            WHERE r.history_seq > {lo} AND r.history_seq <= {hi} {only}
            ORDER BY r.history_seq, x.code, x.change_type, x.field"""
    )


def code_timeline(con: duckdb.DuckDBPyConnection, code: str) -> duckdb.DuckDBPyRelation:
    """A code's life: each version (episode, releases, CMS dates) and the changes that ended it."""
    return con.sql(
        f"""SELECT h.episode, h.version, h.valid_from_release, h.valid_to_release,
                  h.valid_from_date, h.valid_to_date, h.valid_from_basis,
                  h.end_reason, h.added_date, h.action_effective_date, h.termination_date,
                  h.action_code, x.change_type, x.field, x.old_value, x.new_value,
                  x.action_code_meaning, x.action_agrees, x.silent, h.long_description
           FROM code_history h
           LEFT JOIN code_changes_decoded x
             ON x.code = h.code AND x.release_id = h.valid_from_release
           WHERE h.code = {literal(code)}
           ORDER BY h.version, x.change_type, x.field"""
    )


def code_page(
    con: duckdb.DuckDBPyConnection, code: str, release: str | None = None
) -> duckdb.DuckDBPyRelation:
    """Every field of one code, decoded, as of ``release`` (default: the latest effective
    release that carries it)."""
    return con.sql(f"SELECT * FROM hcpcs_code({literal(code)}, rel := {literal(release)})")
