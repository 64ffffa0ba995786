"""The analysts' views and macros of ``hcpcs.duckdb``, each declared with its comment and the
comment of every column, so nothing an analyst can SELECT is undocumented (a test checks)."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from contracts.domains import ACTION_CODE, DOMAINS
from contracts.layout import FIELDS, domain_columns
from warehouse import announcements
from warehouse.changes import EVENTS
from warehouse.database import (
    CHANGE_COLUMNS,
    codes_columns,
    columns_of,
    comment_columns,
    decoded_columns,
    domain_map,
    execute_all,
)
from warehouse.sql import literal
from warehouse.validity import MACROS as VALIDITY_MACROS


@dataclass(frozen=True)
class View:
    name: str
    sql: str
    comment: str
    columns: dict[str, str] = field(default_factory=dict)


def _decoded_value(side: str) -> str:
    """The meaning of a change's old or new value, for the fields a code domain decodes (a list:
    'code: meaning' per occurrence, '; ' between them)."""
    cases = []
    for name in sorted(DOMAINS):
        for col in domain_columns(name):
            m = domain_map(name)
            if FIELDS[col].occurs > 1:
                value = (f"array_to_string(list_transform(x.{side}_list, v -> coalesce(v || ': ' "
                         f"|| coalesce({m}[v], 'unknown'), '(blank)')), '; ')")
            else:
                value = f"{m}[x.{side}_text]"
            cases.append(f"WHEN '{col}' THEN {value}")
    return f"CASE x.field {' '.join(cases)} END" if cases else "NULL::VARCHAR"


_FLAG_COLUMNS = {
    "has_findings": "The gate found something wrong with the code in this release (see "
    "findings).",
    "findings": "Its findings as 'rule field=value'.",
    "repairs": "Repairs applied to it: field, raw_value, repaired_value, evidence.",
}


def _flags() -> View:
    return View("code_flags", """
        WITH fi AS (SELECT release_id, code,
                           list(rule || ' ' || field || '=' || raw_value ORDER BY rule, field)
                               AS findings
                    FROM findings GROUP BY ALL),
             re AS (SELECT release_id, code,
                           list({'field': field, 'raw_value': raw_value,
                                 'repaired_value': repaired_value, 'evidence': evidence}
                                ORDER BY field) AS repairs
                    FROM repairs WHERE applied GROUP BY ALL)
        SELECT release_id, code, fi.findings IS NOT NULL AS has_findings, fi.findings,
               re.repairs
        FROM fi FULL JOIN re USING (release_id, code)""",
        "Codes with findings or repairs, per release: has_findings, findings "
        "('rule field=value'), repairs (field, raw_value, repaired_value, evidence).",
        {"release_id": "Release.", "code": "The code.", **_FLAG_COLUMNS})


_JOIN_FLAGS = "LEFT JOIN code_flags f ON f.release_id = c.release_id AND f.code = c.code"


def _current() -> View:
    return View("codes_current", f"""
        SELECT c.*, (c.termination_date IS NULL OR c.termination_date >= current_date)
                   AS is_active,
               coalesce(f.has_findings, false) AS has_findings
        FROM codes c {_JOIN_FLAGS}
        WHERE c.release_id = (SELECT release_id FROM releases WHERE effective
                              ORDER BY history_seq DESC LIMIT 1)""",
        "Codes of the latest effective release; is_active = not terminated today; "
        "has_findings = the gate found something wrong with the code (see findings).",
        {**codes_columns(), "is_active": "Not terminated today (termination_date null or "
         "today or later).", "has_findings": _FLAG_COLUMNS["has_findings"]})


def _pages() -> View:
    items, joins = decoded_columns()
    decoded = ", ".join(["c.*", *items, "coalesce(f.has_findings, false) AS has_findings",
                         "f.findings", "f.repairs"])
    meanings = {f"{col}_meaning": f"What {col} means (lookup_{name}; a list for a repeating "
                f"group)." for name in DOMAINS for col in domain_columns(name)}
    return View("code_pages", f"SELECT {decoded} FROM codes c {' '.join(joins)} {_JOIN_FLAGS}",
                "Every code of every release decoded like CMS's code pages: each coded field "
                "with its meaning (<field>_meaning), its findings and its repairs (raw and "
                "repaired values). Use hcpcs_code('S2107') for one code.",
                {**codes_columns(), **meanings, **_FLAG_COLUMNS})


def _changes_decoded() -> View:
    action = domain_map("action_code")  # brought in by decoded_columns' joins
    joins = " ".join(decoded_columns()[1])
    return View("code_changes_decoded", f"""
        SELECT x.*, {action}[x.action_code] AS action_code_meaning,
               {action}[x.reported_action] AS reported_action_meaning,
               t.description AS change_type_meaning,
               {_decoded_value("old")} AS old_meaning, {_decoded_value("new")} AS new_meaning
        FROM code_changes x LEFT JOIN change_types t USING (change_type) {joins}""",
        "code_changes with the meaning of the action codes, of the change type, and of old and "
        "new coded values (coverage, pricing, BETOS, type of service ...).",
        {**CHANGE_COLUMNS,
         "action_code_meaning": "What action_code means (lookup_action_code).",
         "reported_action_meaning": "What reported_action means (lookup_action_code).",
         "change_type_meaning": "What change_type means (change_types).",
         "old_meaning": "What the old value means, for a field a code domain decodes; null "
                        "otherwise.",
         "new_meaning": "What the new value means, for a field a code domain decodes."})


def _episodes() -> View:
    return View("code_episodes", """
        WITH e AS (
            SELECT code, episode, count(*) AS versions,
                   arg_min(valid_from_release, version) AS first_release,
                   arg_max(valid_to_release, version) AS last_release,
                   arg_min(valid_from_date, version) AS valid_from_date,
                   arg_max_null(valid_to_date, version) AS valid_to_date,
                   arg_max_null(end_reason, version) AS ended_by,
                   bool_or(is_current) AS is_current,
                   arg_min(added_date, version) AS added_date,
                   arg_min(long_description, version) AS long_description
            FROM code_history GROUP BY code, episode)
        SELECT e.code, e.episode,
               CASE WHEN e.episode > 1 AND lag(e.ended_by) OVER w = 'redefined' THEN 'redefined'
                    WHEN e.episode > 1 THEN 'reused'
                    WHEN r.history_seq = 1 THEN 'in_first_release'
                    ELSE 'added' END AS started_by,
               e.* EXCLUDE (code, episode)
        FROM e JOIN releases r ON r.release_id = e.first_release
        WINDOW w AS (PARTITION BY e.code ORDER BY e.episode)
        ORDER BY e.code, e.episode""",
        "One row per episode of a code: one meaning from its add date to its end, with the "
        "releases that carried it and how it started and ended.",
        {"code": "HCPCS code or modifier.", "episode": "Episode number (1, 2, ...).",
         "started_by": "How the episode started: in_first_release (in the oldest loaded "
         "release), added (first seen later), reused (back after termination or absence with a "
         "new add date or meaning) or redefined (a later add date and a new description in "
         "consecutive releases).",
         "versions": "Versions (code_history rows) in the episode.",
         "first_release": "First effective release of the episode.",
         "last_release": "Last effective release of the episode.",
         "valid_from_date": "First day in force (CMS's add date of the episode).",
         "valid_to_date": "Last day in force as the latest release knows (termination, the "
         "next episode's start, or the day before the release without the code); null while in "
         "force.",
         "ended_by": "How the episode's last version ended (code_history.end_reason); null if "
         "current.",
         "is_current": "The episode is in the latest effective release.",
         "added_date": "CMS's add date of the episode.",
         "long_description": "The meaning (long description) the episode started with."})


def _summary() -> View:
    letters = sorted(ACTION_CODE.values)
    announced = ", ".join(f"count(*) FILTER (action_code = '{a}') AS announced_{a.lower()}"
                          for a in letters)
    observed = ", ".join(f"count(*) FILTER (change_type = '{e}') AS {e}" for e in EVENTS)
    columns = {
        "release_id": "The release.", "effective": "Latest revision of its quarter.",
        "superseded_by": "The later revision of its quarter that replaces it, if any.",
        "history_seq": "Position among effective releases (null if superseded).",
        "previous_release_id": "The effective release the observed counts compare with.",
        "code_count": "Codes in the release.", "procedure_count": "Procedure codes.",
        "modifier_count": "Modifiers.", "reject_count": "Lines the parser rejected.",
        **{f"announced_{a.lower()}": f"Codes whose record carries CMS action {a} "
           f"({ACTION_CODE.values[a]}): what CMS announced." for a in letters},
        **{e: f"Observed, codes {e}: {EVENTS[e].description}" for e in EVENTS},
        "codes_changed": "Observed: codes with at least one change of any type.",
        "field_changes": "Observed: <field>_changed rows (one per code and field).",
        "silent_changes": "Observed changes CMS did not announce (code_changes.silent).",
        "silent_removals": "Codes dropped without a termination date (silent dropped rows).",
        "warnings": "Release-level gate warnings.",
        "finding_count": "Record-level findings of the gate.",
        "repair_count": "Values repaired from transforms/repairs.csv.",
        "difference_count": "Differences between the TXT and CMS's xlsx copy.",
        "vanished_count": "Codes of the previous release missing without termination, as the "
        "gate counted them when the release was published.",
        "waivers": "Waivers applied to the release file.",
    }
    return View("release_summary", f"""
        SELECT r.release_id, r.effective, r.superseded_by, r.history_seq, x.previous_release_id,
               r.code_count, r.procedure_count, r.modifier_count, r.reject_count,
               a.* EXCLUDE (release_id), x.* EXCLUDE (release_id, previous_release_id),
               coalesce(v.warnings, 0) AS warnings, r.finding_count, r.repair_count,
               r.difference_count, r.vanished_count,
               (SELECT count(*) FROM waivers w
                WHERE w.release_id = r.release_id AND w.sha256 = r.raw_sha256) AS waivers
        FROM releases r
        JOIN (SELECT release_id, {announced} FROM codes GROUP BY 1) a USING (release_id)
        LEFT JOIN (SELECT r.release_id, any_value(c.previous_release_id) AS previous_release_id,
                          {observed.replace("count(*)", "count(c.code)")},
                          count(DISTINCT c.code) AS codes_changed,
                          count(c.code) FILTER (c.field IS NOT NULL AND c.change_type
                                                LIKE '%\\_changed' ESCAPE '\\') AS field_changes,
                          count(c.code) FILTER (c.silent) AS silent_changes,
                          count(c.code) FILTER (c.silent AND c.change_type = 'dropped')
                              AS silent_removals
                   FROM releases r LEFT JOIN code_changes c USING (release_id)
                   WHERE r.effective GROUP BY 1) x USING (release_id)
        LEFT JOIN (SELECT release_id,
                          count(*) FILTER (result->>'severity' = 'warning'
                                           AND NOT CAST(result->>'success' AS BOOLEAN))
                              AS warnings
                   FROM validation_results GROUP BY 1) v USING (release_id)
        ORDER BY r.release_order""",
        "Per release, what CMS announced (announced_<action>: the action codes on its records) "
        "beside what the history observed (added = first seen in any loaded release; "
        "discontinued, dropped, reactivated, reused, redefined, field changes, silent ones).",
        columns)


def _reconciliation() -> View:
    return View("action_reconciliation", announcements.reconciliation_sql(),
                "What CMS announced (its transaction report, else the records' action codes) "
                "beside what the history observed, per release and code: agrees, or the reason "
                "they disagree.", announcements.COLUMNS)


def views() -> list[View]:
    """Every view, in creation order (a view only reads the ones before it)."""
    return [_flags(), _current(), _pages(), _changes_decoded(), _episodes(), _summary(),
            _reconciliation()]


#: Macro -> (its definition, its comment): the two-clock ones, and one code's page.
MACROS: dict[str, tuple[str, str]] = {
    **VALIDITY_MACROS,
    "hcpcs_code": (
        """(wanted, rel := NULL) AS TABLE
            SELECT * FROM code_pages
            WHERE code = wanted
              AND release_id = coalesce(rel, (
                  SELECT valid_to_release FROM code_history WHERE code = wanted
                  ORDER BY version DESC LIMIT 1))""",
        "One code's page (code_pages) in release rel, by default in the latest effective "
        "release that carries it (for a code no longer in the file, its last page).",
    ),
}


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """Every view and macro, with its comment and its columns' comments (each set in one
    transaction: see ``execute_all``)."""
    declared = views()
    execute_all(con, [*(f"CREATE VIEW {view.name} AS {view.sql}" for view in declared),
                      *(f"CREATE MACRO {name}{body}" for name, (body, _) in MACROS.items())])
    existing = columns_of(con)
    execute_all(con, [
        *(statement for view in declared for statement in (
            f"COMMENT ON VIEW {view.name} IS {literal(view.comment)}",
            *comment_columns(view.name, view.columns, existing[view.name]))),
        *(f"COMMENT ON {'MACRO TABLE' if _is_table(body) else 'MACRO'} {name} "
          f"IS {literal(comment)}" for name, (body, comment) in MACROS.items())])


def _is_table(body: str) -> bool:
    """The macro returns a table (``(params) AS TABLE ...``)."""
    return body.split("\n")[0].endswith("AS TABLE")



def views_markdown() -> str:
    """Every view with its columns, and every macro, from their comments (the docs' copy)."""
    parts = []
    for view in views():
        rows = "\n".join(f"| `{c}` | {text} |" for c, text in view.columns.items()
                         if view.name not in ("codes_current", "code_pages") or c not in
                         codes_columns())
        parts.append(f"**`{view.name}`** (view): {view.comment}\n\n| column | meaning |\n"
                     f"|---|---|\n{rows}")
    macros = "\n".join(f"| `{name}{_signature(body)}` | {comment} |"
                       for name, (body, comment) in MACROS.items())
    parts.append(f"Reasons of `action_reconciliation` (table `reconciliation_reasons`), in the "
                 f"order they are tried:\n\n{announcements.reasons_markdown()}")
    parts.append(f"**Macros**\n\n| macro | what it gives |\n|---|---|\n{macros}")
    return "\n\n".join(parts)


def _signature(body: str) -> str:
    return body.split(" AS", 1)[0].strip()
