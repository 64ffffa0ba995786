"""The analysts' DuckDB schema: base tables, lookup tables, views, macros and their comments.

Every column comment of ``codes`` comes from ``contracts.layout.column_descriptions()``; every
lookup table comes from ``contracts.domains.DOMAINS``, and each layout field names the domain it
takes its values from, so the decoded views are generated, not written by hand.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import duckdb
import polars as pl

from contracts.domains import DOMAINS
from contracts.layout import CODES_SCHEMA, FIELDS, domain_columns
from contracts.paths import DataDir
from contracts.release import Manifest
from warehouse.announcements import CLASSES
from warehouse.changes import CHANGE_TYPE_DESCRIPTIONS, EXPECTED_ACTIONS, VALUE_TYPES
from warehouse.contract import sql_type
from warehouse.doctor import damaged
from warehouse.publish import EXTRA_TABLES, PUBLISHED, effective_release_ids, release_key
from warehouse.replacements import COLUMNS as REPLACEMENT_COLUMNS
from warehouse.sql import literal
from warehouse.validity import KNOWLEDGE_COLUMNS, VALID_FROM_BASES
from warehouse.waivers import read_waivers

ONE_DAY = dt.timedelta(days=1)

#: A value of a table built from Python rows (see ``values_table``).
Row = str | int | dt.date | None


def quarter_start(year: int, quarter: int) -> dt.date:
    """First day of a quarter (quarter 5 is the next year's first)."""
    return dt.date(year + (quarter - 1) // 4, 3 * ((quarter - 1) % 4) + 1, 1)


RELEASE_COLUMNS: dict[str, str] = {
    "release_id": "Release id: YYYY-Qn, or YYYY-QnrN for CMS's re-issue N of a quarter.",
    "year": "Year of the release.",
    "quarter": "Quarter of the release (annual files before 2020 are Q1).",
    "revision": "Revision within the quarter (1 = first issue).",
    "release_order": "Position of the release in (year, quarter, revision) order, from 1.",
    "effective": "True for the latest revision of its quarter: the one history and current use.",
    "history_seq": "Position among effective releases (1 = oldest); null for superseded revisions.",
    "superseded_by": "The later revision of the same quarter that replaces this one, if any.",
    "effective_from": "First day of the release's quarter.",
    "effective_to": "Last day of the release's quarter: the last day the release can answer "
                    "for (hcpcs_as_of refuses later dates known at it).",
    "in_force_to": "Last day this release was the file in force among the loaded releases: the "
                   "day before the next effective release starts (effective_to for the latest); "
                   "null for superseded revisions.",
    "source_url": "Where the raw ZIP was downloaded from.",
    "raw_sha256": "sha256 of the raw ZIP exactly as downloaded (the release's content identity).",
    "member_name": "Name of the fixed-width data file inside the ZIP.",
    "fetched_at": "When the raw ZIP was first fetched (UTC).",
    "code_count": "Codes (procedures + modifiers) in the release.",
    "procedure_count": "Procedure codes in the release.",
    "modifier_count": "Modifiers in the release.",
    "reject_count": "Lines the parser rejected.",
    "finding_count": "Record-level findings of the gate (one per code, rule and value).",
    "repair_count": "Values repaired from transforms/repairs.csv.",
    "difference_count": "Differences between the TXT and CMS's xlsx copy in the same ZIP.",
    "vanished_count": "Codes of the previous release missing from this one without a termination "
                      "date (CMS keeps terminated codes; a code gone without one is lost or a "
                      "CMS error).",
    "schema_version": "Version of the published Parquet schema.",
    "pipeline_version": "Version of hcpcs-pipeline that published the release.",
}


def _releases_rows(manifests: list[Manifest]) -> list[dict[str, Row]]:
    effective = effective_release_ids(manifests)
    latest = {release_key(r)[:2]: r for r in effective}
    # Each effective release is in force until the next one starts; the latest to its quarter's end.
    nexts = [release_key(r)[:2] for r in effective[1:]]
    if effective:
        year, quarter = release_key(effective[-1])[:2]
        nexts.append((year, quarter + 1))
    in_force_to = {r: quarter_start(*n) - ONE_DAY for r, n in zip(effective, nexts, strict=True)}
    rows = []
    for order, m in enumerate(sorted(manifests, key=lambda m: release_key(m.release_id)), 1):
        rid = m.release_id
        year, quarter, revision = release_key(rid)
        rows.append({
            "release_id": rid, "year": year, "quarter": quarter, "revision": revision,
            "release_order": order, "effective": rid in effective,
            "history_seq": effective.index(rid) + 1 if rid in effective else None,
            "superseded_by": None if rid in effective else latest[(year, quarter)],
            "effective_from": quarter_start(year, quarter),
            "effective_to": quarter_start(year, quarter + 1) - ONE_DAY,
            "in_force_to": in_force_to.get(rid),
            "source_url": m.source_url, "raw_sha256": m.raw_sha256,
            "member_name": m.member_name, "fetched_at": m.fetched_at,
            "code_count": m.counts["codes"], "procedure_count": m.counts["procedures"],
            "modifier_count": m.counts["modifiers"], "reject_count": m.counts["rejects"],
            "finding_count": m.counts.get("findings", 0),
            "repair_count": m.counts.get("repairs", 0),
            "difference_count": m.counts.get("differences", 0),
            "vanished_count": m.counts.get("vanished", 0),
            "schema_version": m.schema_version, "pipeline_version": m.pipeline_version,
        })
    return rows


#: Column -> SQL type of ``releases`` (VARCHAR unless named).
RELEASE_TYPES: dict[str, str] = {c: "VARCHAR" for c in RELEASE_COLUMNS} | {
    "year": "INTEGER", "quarter": "INTEGER", "revision": "INTEGER", "release_order": "INTEGER",
    "effective": "BOOLEAN", "history_seq": "INTEGER", "schema_version": "INTEGER",
    "effective_from": "DATE", "effective_to": "DATE", "in_force_to": "DATE",
    "fetched_at": "TIMESTAMP WITH TIME ZONE",
    **{c: "BIGINT" for c in RELEASE_COLUMNS if c.endswith("_count")},
}


def _validation_rows(data_dir: Path, manifests: list[Manifest]) -> list[dict[str, Row]]:
    """One row per entry of ``results`` in each validation.json (the whole document otherwise)."""
    rows: list[dict[str, Row]] = []
    for m in manifests:
        path = DataDir(data_dir).release(m.release_id) / "validation.json"
        try:
            doc = json.loads(path.read_bytes())
        except ValueError as exc:
            raise damaged(path, exc) from None
        entries = doc.get("results") if isinstance(doc.get("results"), list) else [doc]
        for i, entry in enumerate(entries):
            rows.append({"release_id": m.release_id, "result_index": i,
                         "result": json.dumps(entry, sort_keys=True, default=str)})
    return rows


def _waiver_rows(data_dir: Path, manifests: list[Manifest]) -> list[dict[str, Row]]:
    published = {(m.release_id, m.raw_sha256) for m in manifests}
    return [{**vars(w), "applied": (w.release_id, w.sha256) in published}
            for w in read_waivers(data_dir)]


def _create(table: str, types: Mapping[str, str]) -> str:
    """CREATE ``table``, empty, with its columns (column -> SQL type)."""
    return f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in types.items())})"


def values_table(
    table: str, types: Mapping[str, str], rows: Sequence[Mapping[str, Row]], order: str
) -> list[str]:
    """The statements that create ``table`` (column -> SQL type) holding ``rows`` in ``order``,
    the values written out as literals: DuckDB is handed neither a Python object (through Arrow,
    it imports pandas; see ``literal``) nor a file written for the purpose."""
    if not rows:
        return [_create(table, types)]
    values = ",\n".join(f"({', '.join(literal(r[c]) for c in types)})" for r in rows)
    return [_create(table, types), f"INSERT INTO {table} SELECT * FROM (VALUES {values}) "
                                   f"AS v({', '.join(types)}) ORDER BY {order}"]


def execute_all(con: duckdb.DuckDBPyConnection, statements: Sequence[str]) -> None:
    """Run ``statements`` in one call and one transaction: one commit, not one per statement
    (each commit writes and syncs the WAL; hundreds of COMMENT ONs cost 0.2 s so)."""
    con.execute("BEGIN TRANSACTION;\n" + ";\n".join(statements) + ";\nCOMMIT")


#: The release a published file belongs to, from its folder (``release=<id>/<file>``).
_RELEASE_OF_FILE = "regexp_extract(filename, 'release=([^/]+)/[^/]+$', 1)"

def _read_published(paths: Sequence[Path], columns: str) -> str:
    """SELECT the release id and ``columns`` of the published files ``paths``, read by DuckDB
    straight from the Parquet (rows in file order, files in the order given)."""
    return (f"SELECT {_RELEASE_OF_FILE} AS release_id, {columns} "
            f"FROM read_parquet({literal([str(p) for p in paths])}, filename = true)")


def _release_tables(data_dir: Path, manifests: list[Manifest]) -> list[str]:
    """``findings``, ``repairs``, ``reconciliation``, ``transactions``: every release's rows,
    ``release_id`` first; a release published before a table existed has no rows in it."""
    statements = []
    for table in EXTRA_TABLES:
        schema = PUBLISHED[table].schema
        types = {"release_id": "VARCHAR"} | {c: sql_type(t) for c, t in schema.items()}
        statements.append(_create(table, types))
        paths = [p for m in manifests
                 if (p := DataDir(data_dir).release(m.release_id) / f"{table}.parquet").exists()]
        if paths:
            keys = ", ".join(c for c in ("release_id", "code", "field", "line") if c in types)
            statements.append(f"INSERT INTO {table} {_read_published(paths, ', '.join(schema))} "
                              f"ORDER BY {keys}")
    return statements


def _as_written(column: str, padded: list[str]) -> str:
    """A repeating group of the releases published with schema 1 (padded with NULLs to the
    layout's maximum) cut after its last value, as schema 2 publishes it."""
    if not padded:
        return column
    cut = f"{column}[1:coalesce(list_max(list_filter(range(1, len({column}) + 1), " \
          f"i -> {column}[i] IS NOT NULL)), 0)]"
    return (f"CASE WHEN {_RELEASE_OF_FILE} IN ({', '.join(literal(r) for r in padded)}) "
            f"THEN {cut} ELSE {column} END AS {column}")


def load_base(con: duckdb.DuckDBPyConnection, data_dir: Path, manifests: list[Manifest]) -> None:
    """``codes`` (every code of every release) and the other tables of the published files, read
    by DuckDB; ``releases``, ``validation_results``, ``waivers`` and the reference tables. Each
    table has the same types whatever schema version its files were published with (and with no
    release at all: ``history.empty_database``)."""
    ordered = sorted(manifests, key=lambda m: release_key(m.release_id))
    # Files in release order, rows in file order (DuckDB preserves insertion order for a plain
    # scan), so the table's order is deterministic without sorting 30 wide columns.
    paths = [DataDir(data_dir).release(m.release_id) / "codes.parquet" for m in ordered]
    padded = [m.release_id for m in ordered if m.schema_version < 2]
    columns = ", ".join(_as_written(c, padded) if isinstance(t, pl.List) and c in FIELDS
                        else f'"{c}"' for c, t in CODES_SCHEMA.items())
    types = {"release_id": "VARCHAR"} | {c: sql_type(t) for c, t in CODES_SCHEMA.items()}
    codes = [f"INSERT INTO codes {_read_published(paths, columns)}"] if paths else []
    try:
        execute_all(con, [_create("codes", types), *codes,
                          *_release_tables(data_dir, ordered)])
    except (duckdb.InvalidInputException, duckdb.IOException) as exc:  # its text names the file
        raise damaged(DataDir(data_dir).releases, exc) from None
    change_types = [{"change_type": t, "description": text,
                     "expected_action_codes": EXPECTED_ACTIONS.get(t)}
                    for t, text in CHANGE_TYPE_DESCRIPTIONS.items()]
    reasons = [{"reason": r, "meaning": meaning, "position": i}
               for i, (r, (_, meaning)) in enumerate(CLASSES.items(), 1)]
    execute_all(con, [
        *values_table("releases", RELEASE_TYPES, _releases_rows(ordered), "release_order"),
        *values_table("validation_results", {"release_id": "VARCHAR", "result_index": "INTEGER",
                                             "result": "JSON"},
                      _validation_rows(data_dir, manifests), "release_id, result_index"),
        *values_table("waivers", {c: "VARCHAR" for c in WAIVER_COLUMNS}
                      | {"accepted_at": "TIMESTAMP WITH TIME ZONE", "applied": "BOOLEAN"},
                      _waiver_rows(data_dir, ordered), "accepted_at"),
        *values_table("change_types", {"change_type": "VARCHAR", "description": "VARCHAR",
                                       "expected_action_codes": "VARCHAR"},
                      change_types, "change_type"),
        *values_table("reconciliation_reasons", {"reason": "VARCHAR", "meaning": "VARCHAR",
                                                 "position": "INTEGER"}, reasons, "position"),
    ])


def lookup_table(name: str) -> str:
    return f"lookup_{name}"


def create_lookups(con: duckdb.DuckDBPyConnection) -> None:
    """One table (code, meaning) per code domain, commented with the domain's description."""
    statements = []
    for name, domain in sorted(DOMAINS.items()):
        table = lookup_table(name)
        rows = [{"code": c, "meaning": m} for c, m in domain.values.items()]
        statements += values_table(table, {"code": "VARCHAR", "meaning": "VARCHAR"}, rows, "code")
        decodes = ", ".join(domain_columns(name)) or "the record id (the codes' kind)"
        text = f"{domain.description} Decodes: {decodes}. Source: {domain.source}"
        statements += [
            f"COMMENT ON TABLE {table} IS {literal(text)}",
            f"COMMENT ON COLUMN {table}.code IS 'The code as it appears in the file.'",
            f"COMMENT ON COLUMN {table}.meaning IS 'What CMS says the code means.'"]
    execute_all(con, statements)


def domain_map(name: str) -> str:
    """The name under which ``decoded_columns``' joins bring a domain in as a map."""
    return f"m_{name}"


def decoded_columns() -> tuple[list[str], list[str]]:
    """SELECT items adding ``<column>_meaning`` for every code column a domain decodes, and the
    CROSS JOINs that bring each domain in as one map (code -> meaning)."""
    items, joins = [], []
    for name in sorted(DOMAINS):
        m = domain_map(name)
        joins.append(f"CROSS JOIN (SELECT map(list(code), list(meaning)) AS {m} "
                     f"FROM {lookup_table(name)}) AS j_{name}")
        for col in domain_columns(name):
            if isinstance(CODES_SCHEMA[col], pl.List):
                items.append(f"list_transform(c.{col}, x -> {m}[x]) AS {col}_meaning")
            else:
                items.append(f"{m}[c.{col}] AS {col}_meaning")
    return items, joins


def columns_of(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Table or view -> the columns it has (one query for all of them)."""
    return {table: set(columns) for table, columns in con.execute(
        "SELECT table_name, list(column_name) FROM duckdb_columns() GROUP BY ALL").fetchall()}


def comment_columns(table: str, comments: Mapping[str, str], existing: set[str]) -> list[str]:
    """COMMENT ON each column of ``comments`` that ``table`` has (``existing``: its columns)."""
    return [f'COMMENT ON COLUMN {table}."{col}" IS {literal(text)}'
            for col, text in comments.items() if col in existing]


TABLE_COMMENTS: dict[str, str] = {
    "releases": "Every published release (all revisions), one row each, from its manifest.",
    "codes": PUBLISHED["codes"].comment,
    "validation_results": "The validation gate's results for each release (validation.json).",
    "change_types": "The change types of code_changes, and the CMS action codes that announce "
    "each one (action_agrees compares against these).",
    "code_history": "SCD type 2 with two clocks: one row per version of a code (a run of "
    "consecutive effective releases with identical content), with the releases that carried it "
    "(knowledge time) and the days CMS's dates put it in force (valid time). A new episode "
    "starts when a code comes back after termination or absence with a new add date or "
    "meaning, or is redefined in place (a later add date and a new description).",
    "code_changes": "Change log between consecutive effective releases: one row per observed "
    "change (an event or a field), with old and new values typed, CMS's action code and "
    "reported action, whether they announce it (action_agrees) and whether it is silent.",
    "findings": PUBLISHED["findings"].comment,
    "repairs": PUBLISHED["repairs"].comment,
    "reconciliation": PUBLISHED["reconciliation"].comment,
    "waivers": "Operators' waivers (hcpcs accept): a release-level rule let through for one "
    "release file (sha256), with who, when and why.",
    "version_knowledge": "For each code_history row, the facts hcpcs_versions needs to answer "
    "as any release knew (when each version was first and last seen, what followed it).",
    "reconciliation_reasons": "The reasons of action_reconciliation, in the order they are "
    "tried (the first that holds names a row's reason).",
    "code_replacements": "What replaces each discontinued code: its cross references followed "
    "to the code in force (A -> B -> C), one row per cross reference; latest knowledge.",
    "transactions": PUBLISHED["transactions"].comment,
}

WAIVER_COLUMNS: dict[str, str] = {
    "release_id": "Release the waiver is for.",
    "rule": "The release-level rule let through.",
    "sha256": "The one release file (raw sha256) it applies to.",
    "reason": "Why the operator accepted it.",
    "accepted_by": "Who accepted it.",
    "accepted_at": "When it was accepted (UTC).",
}

HISTORY_COLUMNS: dict[str, str] = {
    "code": "HCPCS code or modifier.",
    "episode": "Episode of the code: 1 for its first meaning, +1 each time CMS gives it a new "
    "one (reused after termination or absence, or redefined in place; see code_episodes).",
    "version": "Version number of the code across all its episodes (1, 2, ...): a run of "
    "consecutive effective releases with identical content.",
    "valid_from_release": "First effective release carrying this version (knowledge time: the "
    "release that said so).",
    "valid_to_release": "Last effective release carrying this version.",
    "ended_in_release": "Release where this version stopped (the next version's, or the first "
    "without the code); null if current.",
    "end_reason": "Why the version ended: changed (a field), discontinued (termination date "
    "set), reused, redefined (a new episode follows) or dropped (absent from the next "
    "release); null if current.",
    "release_count": "Number of effective releases carrying this version.",
    "is_current": "The version is in the latest effective release.",
    "valid_from_date": "First day the version is in force by CMS's dates (valid time; how it is "
    "found: valid_from_basis).",
    "valid_to_date": "Last day the version is in force by CMS's dates, as the latest release "
    "knows: the earliest of its termination date, the day before the next version starts, and "
    "the day before the first release without the code; null while in force.",
    "valid_from_basis": "Where valid_from_date comes from: "
    + "; ".join(f"{k}: {v}" for k, v in VALID_FROM_BASES.items()),
}
CHANGE_COLUMNS: dict[str, str] = {
    "release_id": "Release in which the change is seen.",
    "previous_release_id": "The effective release it is compared with (the one just before).",
    "code": "HCPCS code or modifier.",
    "kind": "procedure or modifier.",
    "change_type": "What changed (the observed change): see the change_types table.",
    "field": "The field that changed: set on <field>_changed rows and on discontinued / "
    "reactivated rows that moved the termination date (termination_date); null on rows about "
    "the whole code (added, dropped, reused, redefined, back in the file), whose old/new value "
    "is the long description.",
    "old_value": "Value before, as text (lists as [a, b], dates as YYYY-MM-DD); the typed "
    "value is in the old_<type> column of the field's type.",
    "new_value": "Value after, as text; typed in new_<type>.",
    **{f"{side}_{fam}": f"Value {'before' if side == 'old' else 'after'} when the field is "
       f"{'a ' if fam != 'list' else 'a repeating group: a '}{fam}"
       f"{' (positional, trailing blanks dropped)' if fam == 'list' else ''}; else null."
       for fam in VALUE_TYPES for side in ("old", "new")},
    "action_code": "CMS's action code on the code's record in this release (null when dropped: "
    "no record).",
    "reported_action": "The action CMS's transaction report gives the code in this release "
    "(null when the release has no report or the report omits the code).",
    "action_agrees": "CMS's action code announces this change (see change_types; dropped: the "
    "code had been terminated before it left the file).",
    "silent": "CMS did not announce the change: the record says N (no change) or, for dropped, "
    "the code left the file without a termination date. Never null.",
}


def codes_columns() -> dict[str, str]:
    """Column -> comment of ``codes`` (and of the views that show its rows)."""
    return dict(PUBLISHED["codes"].columns)


def _column_comments() -> dict[str, dict[str, str]]:
    """Table -> column -> comment, for every table we own."""
    codes_cols = codes_columns()
    return {
        "releases": RELEASE_COLUMNS,
        "codes": codes_cols,
        "validation_results": {
            "release_id": "Release validated.", "result_index": "Position in validation.json.",
            "result": "One validation result as JSON, exactly as the gate wrote it."},
        "change_types": {
            "change_type": "Change type as used in code_changes.change_type.",
            "description": "What the change type means.",
            "expected_action_codes": "CMS action codes that announce this change (one letter "
            "each)."},
        "code_history": {**HISTORY_COLUMNS, **{k: v for k, v in codes_cols.items()
                                                if k not in HISTORY_COLUMNS}},
        "code_changes": CHANGE_COLUMNS,
        **{table: PUBLISHED[table].columns for table in EXTRA_TABLES},
        "code_replacements": REPLACEMENT_COLUMNS,
        "version_knowledge": KNOWLEDGE_COLUMNS,
        "reconciliation_reasons": {
            "reason": "The reason, as in action_reconciliation.reason.",
            "meaning": "What it means.", "position": "Order in which the reasons are tried."},
        "waivers": {**WAIVER_COLUMNS,
                    "applied": "The release is published from that file, under the waiver."},
    }


def comment_all(con: duckdb.DuckDBPyConnection) -> None:
    """COMMENT ON every table we own and its columns (views: ``warehouse.views``)."""
    existing = columns_of(con)
    execute_all(con, [
        *(f"COMMENT ON TABLE {table} IS {literal(text)}" for table, text in TABLE_COMMENTS.items()),
        *(statement for table, comments in _column_comments().items()
          for statement in comment_columns(table, comments, existing[table]))])


def schema_markdown() -> str:
    """Every table's comment and its columns' comments (the docs' copy is generated from this);
    ``code_history`` also carries every ``codes`` column, listed once under ``codes``."""
    parts = []
    for table, comments in _column_comments().items():
        if table == "code_history":
            comments = HISTORY_COLUMNS
        rows = "\n".join(f"| `{c}` | {text} |" for c, text in comments.items())
        parts.append(f"**`{table}`**: {TABLE_COMMENTS[table]}\n\n| column | meaning |\n"
                     f"|---|---|\n{rows}")
    return "\n\n".join(parts)
