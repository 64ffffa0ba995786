"""What replaces a discontinued code: its cross references, followed to the code in force.

CMS writes the successor of a terminated code in its cross references (``XREF1``-``XREF5``). A
successor may itself be terminated later and point further on (A -> B -> C), so the chain is
followed, as OHDSI's vocabulary gives "replaced by", until a code that is in force, outside the
Level II set (a CPT code), terminated with no cross reference, or already on the chain (a loop).
Every fact is the latest knowledge: each code's last version in ``code_history``.
"""

from __future__ import annotations

import duckdb

#: What the end of a chain is.
STATUSES: dict[str, str] = {
    "in_force": "in the latest release and not terminated",
    "terminated": "terminated, with no further cross reference to follow",
    "dropped": "known, but absent from the latest release without a termination date",
    "not_level_ii": "never in a loaded release: a CPT or other code outside HCPCS Level II",
}

COLUMNS: dict[str, str] = {
    "code": "The discontinued code.",
    "termination_date": "Its termination date (latest knowledge).",
    "position": "Which of its cross references (1-5) the chain starts from.",
    "replaced_by": "The cross reference: the code CMS points to.",
    "replacement": "The end of the chain from replaced_by: the code to use now.",
    "chain": "The codes from the discontinued one to the replacement, in order.",
    "hops": "Links in the chain (1: replaced_by is the replacement).",
    "replacement_status": "What the replacement is: "
    + "; ".join(f"{k}: {v}" for k, v in STATUSES.items()),
}

SQL = """
CREATE TABLE code_replacements AS
WITH RECURSIVE latest AS (
    SELECT code, termination_date, cross_references, is_current FROM code_history
    QUALIFY version = max(version) OVER (PARTITION BY code)),
edges AS (
    SELECT * FROM (
        SELECT code, unnest(cross_references) AS ref,
               generate_subscripts(cross_references, 1) AS position
        FROM latest WHERE termination_date IS NOT NULL)
    WHERE ref IS NOT NULL AND ref <> code),
walk(code, position, replaced_by, reached, chain) AS (
    SELECT code, position, ref, ref, [code, ref] FROM edges
    UNION ALL
    SELECT w.code, w.position, w.replaced_by, e.ref, list_append(w.chain, e.ref)
    FROM walk w JOIN edges e ON e.code = w.reached
    WHERE NOT list_contains(w.chain, e.ref))
SELECT w.code, l.termination_date, CAST(w.position AS INTEGER) AS position, w.replaced_by,
       w.reached AS replacement, w.chain, CAST(len(w.chain) - 1 AS INTEGER) AS hops,
       CASE WHEN f.code IS NULL THEN 'not_level_ii'
            WHEN f.termination_date IS NOT NULL THEN 'terminated'
            WHEN f.is_current THEN 'in_force'
            ELSE 'dropped' END AS replacement_status
FROM walk w
JOIN latest l ON l.code = w.code
LEFT JOIN latest f ON f.code = w.reached
WHERE NOT EXISTS (SELECT 1 FROM edges e
                  WHERE e.code = w.reached AND NOT list_contains(w.chain, e.ref))
ORDER BY w.code, w.position, w.chain"""


def create_replacements(con: duckdb.DuckDBPyConnection) -> None:
    """``code_replacements`` from ``code_history`` (built first)."""
    con.execute(SQL)
