"""What the report shows, read from ``hcpcs.duckdb`` and the run reports: plain rows, no HTML.

Every question is one SQL query over the analysts' own tables and views (``docs/warehouse.md``),
so the report never says anything the database does not; codes are read in bulk (one query per
table for every code), not one query per page.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

import duckdb

from contracts.domains import BETOS_FAMILIES
from contracts.paths import DataDir
from warehouse.queries import records
from warehouse.sql import literal

Row = dict[str, Any]

#: How a release's gate verdict reads (``status`` of the release pages and the overview): every
#: check passed; some record-level check failed (kept as findings, the release published); an
#: operator let the file through a release-level rule (``hcpcs accept``). A refused file is not
#: in the database: its pages come from the run reports (``refused``).
PUBLISHED, WITH_WARNINGS, WAIVED = "published", "published with warnings", "published, waived"


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[Row]:
    return records(con.sql(sql))


def _by(rows: list[Row], key: str) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        out[row[key]].append(row)
    return out


def releases(con: duckdb.DuckDBPyConnection) -> list[Row]:
    """Every published release, oldest first: its counts (``release_summary``), provenance,
    how many of the gate's checks failed and the verdict."""
    return _rows(con, f"""
        WITH failed AS (
            SELECT release_id, count(*) AS failed_checks FROM validation_results
            WHERE NOT CAST(result->>'success' AS BOOLEAN) GROUP BY 1)
        SELECT s.*, r.release_order, r.raw_sha256, r.source_url, r.member_name, r.fetched_at,
               r.schema_version, r.effective_from, r.effective_to,
               coalesce(f.failed_checks, 0) AS failed_checks,
               CASE WHEN s.waivers > 0 THEN '{WAIVED}'
                    WHEN f.failed_checks > 0 THEN '{WITH_WARNINGS}'
                    ELSE '{PUBLISHED}' END AS status
        FROM release_summary s JOIN releases r USING (release_id)
        LEFT JOIN failed f USING (release_id) ORDER BY r.release_order""")


def codes_by_kind(con: duckdb.DuckDBPyConnection) -> list[Row]:
    """Codes of each kind in each effective release (a chart's rows)."""
    return _rows(con, """
        SELECT release_id AS release, kind, count(*) AS codes
        FROM codes JOIN releases r USING (release_id) WHERE r.effective
        GROUP BY ALL ORDER BY min(r.history_seq), kind""")


def codes_by_betos_family(con: duckdb.DuckDBPyConnection) -> list[Row]:
    """Codes of each BETOS family in each effective release; no BETOS (modifiers) is a family."""
    families = ", ".join(f"({literal(k)}, {literal(f'{k}: {v}')})"
                         for k, v in BETOS_FAMILIES.items())
    return _rows(con, f"""
        SELECT c.release_id AS release, coalesce(f.name, 'no BETOS (modifiers)') AS family,
               count(*) AS codes
        FROM codes c JOIN releases r USING (release_id)
        LEFT JOIN (VALUES {families}) f(letter, name) ON f.letter = left(c.betos, 1)
        WHERE r.effective GROUP BY ALL ORDER BY min(r.history_seq), family""")


def change_counts(rels: list[Row]) -> list[Row]:
    """Additions, discontinuations and changes per release after the first (a chart's rows)."""
    kinds = {"added": "added", "discontinued": "discontinued", "dropped": "dropped",
             "codes_changed": "changed", "reactivated": "reactivated", "reused": "reused",
             "redefined": "redefined"}
    return [{"release": r["release_id"], "change": name, "codes": r[col]}
            for r in rels if r["effective"] and r["previous_release_id"]
            for col, name in kinds.items()]


def silent_counts(rels: list[Row]) -> list[Row]:
    """Changes and removals CMS did not announce, per release (a chart's rows)."""
    return [{"release": r["release_id"], "kind": kind, "changes": n}
            for r in rels if r["effective"] and r["previous_release_id"]
            for kind, n in (
                ("changes under action N", r["silent_changes"] - r["silent_removals"]),
                ("codes gone without a termination date", r["silent_removals"]))]


@dataclass
class ReleaseDetail:
    """Everything one release page lists."""

    changes: dict[str, list[Row]]  # change type -> its changes, decoded
    change_types: dict[str, str]  # change type -> what it means
    findings: list[Row]
    repairs: list[Row]
    waivers: list[Row]
    differences: list[Row]  # TXT vs xlsx
    disagreements: list[Row]  # CMS's announcements that do not match what changed, with why
    checks: list[Row]  # the gate's every result (validation.json)


def release_details(con: duckdb.DuckDBPyConnection) -> dict[str, ReleaseDetail]:
    """Every release's page contents, by release id (each table read once, for all releases)."""
    def by_release(sql: str) -> dict[str, list[Row]]:
        return _by(_rows(con, sql), "release_id")

    changes = by_release("SELECT * FROM code_changes_decoded ORDER BY change_type, code, field")
    checks = by_release("SELECT release_id, result FROM validation_results ORDER BY result_index")
    findings = by_release("SELECT * FROM findings ORDER BY rule, code, field")
    repairs = by_release("SELECT * FROM repairs ORDER BY code, field")
    waivers = by_release("SELECT * FROM waivers ORDER BY accepted_at")
    differences = by_release("SELECT * FROM reconciliation ORDER BY field, code")
    disagreements = by_release(
        "SELECT * FROM action_reconciliation WHERE NOT agrees ORDER BY reason, code")
    change_types = {r["change_type"]: r["description"]
                    for r in _rows(con, "SELECT * FROM change_types")}
    return {rid: ReleaseDetail(
        changes=dict(_by(changes.get(rid, []), "change_type")),
        change_types=change_types,
        findings=findings.get(rid, []),
        repairs=repairs.get(rid, []),
        waivers=waivers.get(rid, []),
        differences=differences.get(rid, []),
        disagreements=disagreements.get(rid, []),
        checks=sorted((json.loads(c["result"]) for c in checks.get(rid, [])),
                      key=lambda c: (c["success"], c["scope"], c["name"])),
    ) for (rid,) in con.execute("SELECT release_id FROM releases").fetchall()}


@dataclass
class CodeDetail:
    """Everything one code page shows."""

    page: Row  # code_pages in the latest effective release that carries the code
    versions: list[Row] = field(default_factory=list)  # code_history, by version
    episodes: list[Row] = field(default_factory=list)
    changes: list[Row] = field(default_factory=list)  # code_changes_decoded, oldest first
    replacements: list[Row] = field(default_factory=list)  # what replaces it, if discontinued
    replaces: list[str] = field(default_factory=list)  # discontinued codes it replaces


#: The latest page of every code, then each table a code page lists: all in code order, so the
#: code pages stream (``codes``) instead of holding 7,401 codes' rows at once.
_PAGES = """
    SELECT p.* FROM code_pages p JOIN releases r USING (release_id) WHERE r.effective
    QUALIFY row_number() OVER (PARTITION BY p.code ORDER BY r.history_seq DESC) = 1
    ORDER BY p.code"""
_PER_CODE = {
    "versions": "SELECT * FROM code_history ORDER BY code, version",
    "episodes": "SELECT * FROM code_episodes ORDER BY code, episode",
    "changes": """SELECT x.* FROM code_changes_decoded x JOIN releases r USING (release_id)
                  ORDER BY x.code, r.history_seq, x.change_type, x.field""",
    "replacements": "SELECT * FROM code_replacements ORDER BY code, position",
}
BATCH = 2048


def _stream(con: duckdb.DuckDBPyConnection, sql: str) -> Iterator[Row]:
    """The rows of ``sql``, fetched ``BATCH`` at a time on a cursor of their own."""
    cursor = con.cursor()
    try:
        result = cursor.execute(sql)
        columns = [d[0] for d in result.description]
        while batch := result.fetchmany(BATCH):
            yield from (dict(zip(columns, row, strict=True)) for row in batch)
    finally:
        cursor.close()


def code_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every code that has a page (the links a page may make to another code)."""
    return {c for (c,) in con.execute("SELECT DISTINCT code FROM code_history").fetchall()}


def codes(con: duckdb.DuckDBPyConnection) -> Iterator[CodeDetail]:
    """Every code ever published, in code order, with its page, history, changes and
    replacements: the tables are read side by side, in code order, one batch at a time."""
    replaces: dict[str, list[str]] = defaultdict(list)
    for old, new in con.execute("""SELECT DISTINCT code, replacement FROM code_replacements
                                   WHERE replacement IS NOT NULL ORDER BY ALL""").fetchall():
        replaces[new].append(old)
    groups = {name: groupby(_stream(con, sql), key=itemgetter("code"))
              for name, sql in _PER_CODE.items()}
    ahead: dict[str, tuple[str, list[Row]] | None] = {
        name: _next_group(group) for name, group in groups.items()}
    for page in _stream(con, _PAGES):
        code = page["code"]
        detail = CodeDetail(page, replaces=replaces.get(code, []))
        for name, group in groups.items():
            while ahead[name] is not None and ahead[name][0] < code:  # a code with no page
                ahead[name] = _next_group(group)
            if ahead[name] is not None and ahead[name][0] == code:
                setattr(detail, name, ahead[name][1])
                ahead[name] = _next_group(group)
        yield detail


def _next_group(group: Iterator[tuple[str, Iterator[Row]]]) -> tuple[str, list[Row]] | None:
    found = next(group, None)
    return None if found is None else (found[0], list(found[1]))


def effective_release_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT release_id FROM releases WHERE effective ORDER BY history_seq").fetchall()]


def runs(data_dir: Path) -> list[Row]:
    """Every run report in ``reports/runs``, newest first; an unreadable one is skipped (the
    report shows what it can: runs are a log, not the data)."""
    out = []
    for path in sorted(DataDir(data_dir).runs.glob("*.json"), reverse=True):
        try:
            doc = json.loads(path.read_bytes())
        except ValueError:
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out


def refused(all_runs: list[Row], published: set[str]) -> list[Row]:
    """Every release file a gate refused and that is not published since (by sha256), newest
    refusal of each file first: the run's outcome with the run's start time."""
    seen: dict[str, Row] = {}
    for run in all_runs:
        for r in run.get("releases", []):
            sha = r.get("sha256") or ""
            if r.get("refused_by") and sha not in published and sha not in seen:
                seen[sha] = {**r, "run_started_at": run.get("started_at", "")}
    return sorted(seen.values(), key=lambda r: (r["release_id"], r["run_started_at"]))
