"""The ``hcpcs`` command line.

Heavy libraries (Polars, DuckDB, Prefect, Great Expectations) are imported inside each command, so
``hcpcs --help`` stays instant. Commands that run flows set Prefect's offline settings first.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from numbers import Number
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from contracts.settings import ALLOCATOR_ENV, Settings, apply_offline_env
from sources.registry import sources_help

if TYPE_CHECKING:
    import duckdb

    from flows.summary import RunSummary
    from transforms.fixed_width import ParseResult

app = typer.Typer(
    help="Keep a validated, fully historized copy of the CMS HCPCS Level II code set.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DATA_DIR = typer.Option(
    Path("data"), "--data-dir", "-d", envvar="HCPCS_DATA_DIR",
    help="Data directory: raw ZIPs, Parquet releases, hcpcs.duckdb, reports.",
)
JSON = typer.Option(False, "--json", help="Print JSON on stdout instead of text (for scripts).")
VERBOSE = typer.Option(False, "--verbose", "-v",
                       help="Show the run's log lines on stderr (and tracebacks of failures).")
EXAMPLE_QUERIES = """\
Next: hcpcs status | hcpcs code {code} | hcpcs diff {first} {last}{data}
Query the database (read-only) from Python, e.g.
  python -c "import duckdb; duckdb.connect('{db}', read_only=True).sql('FROM releases').show()"
Queries to try:
  SELECT code, short_description FROM hcpcs_as_of(DATE '{day}') WHERE code LIKE 'J%';
  SELECT * FROM hcpcs_code('{code}');
  SELECT release_id, code, change_type, old_value, new_value FROM code_changes WHERE silent;
  SELECT * FROM code_history WHERE code = '{code}' ORDER BY version;"""


@app.callback()
def _root() -> None:
    """Keep a validated, fully historized copy of the CMS HCPCS Level II code set.

    Data lives in ./data (or --data-dir / HCPCS_DATA_DIR): raw ZIPs, Parquet releases, hcpcs.duckdb.

    Exit status of run and backfill: 0 published something, 3 nothing new, 1 a release failed
    (the others were still published), 2 bad arguments, unknown source, or a data directory that
    cannot be written.
    """


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a one-line error to stderr and return the exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _parse_file(path: Path) -> tuple[str, ParseResult]:
    """(data member name, parse) of a release ZIP or .txt; unreadable input exits with 2."""
    from contracts.errors import TerminalError
    from sources.archive import read_release_file
    from transforms import parse_member

    if not path.is_file():
        raise fail(f"{path}: no such file")
    try:
        member = read_release_file(path)
        result = parse_member(member.name, member.data)
    except TerminalError as exc:
        raise fail(str(exc)) from None
    if result.codes.is_empty():
        raise fail(f"{path}: no HCPCS record found (not a CMS Alpha-Numeric release?)")
    return member.name, result


@app.command()
def parse(
    path: Path = typer.Argument(
        ..., help="A CMS release ZIP, the extracted fixed-width .txt, or CMS's ANWEB .xlsx/.xls."),
    out: Path = typer.Option(..., "--out", "-o", help="Parquet file to write the codes to."),
    rejects: Path | None = typer.Option(
        None, help="Also write rejected lines (line, code, reason, text) to this Parquet file."
    ),
) -> None:
    """Parse one release into one row per code (every field, repeating groups as lists).

    Exit status: 0 parsed with no rejects, 1 some lines were rejected, 2 unreadable input.
    """
    from contracts.files import write_parquet

    for target in (out, rejects):
        if target is not None and target.is_dir():
            raise fail(f"{target}: is a folder; give the Parquet file to write, e.g. "
                       f"{target / 'codes.parquet'}")
    member_name, result = _parse_file(path)
    try:
        write_parquet(result.codes, out)
        if rejects is not None:
            write_parquet(result.rejects, rejects)
    except OSError as exc:
        raise fail(f"{exc.filename or out}: cannot write ({exc.strerror or exc})") from None
    kinds = dict(result.codes.group_by("kind").len().iter_rows())
    typer.echo(
        f"{member_name}: {result.codes.height:,} codes ({kinds.get('procedure', 0):,} procedures, "
        f"{kinds.get('modifier', 0):,} modifiers) from {result.line_count:,} lines -> {out}"
    )
    for line, code, reason, _ in result.rejects.head(20).iter_rows():
        typer.echo(f"  rejected line {line} ({code or '-'}): {reason}", err=True)
    if result.rejects.height:
        typer.echo(f"{result.rejects.height:,} lines rejected", err=True)
        raise typer.Exit(1)


def _offline_prefect(verbose: bool) -> None:
    """Prefect and GX stay offline and keep their state in the project, whoever starts us."""
    apply_offline_env(Path.cwd())
    if not verbose:  # the run's own summary says what failed and why; Prefect's lines (and its
        # tracebacks of failed tasks) still reach its API, and --verbose shows them here
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def _finish_run(summary: RunSummary, as_json: bool) -> None:
    """Print the run's outcome (and what to try next) and exit with its status."""
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
    else:
        for line in summary.lines():
            typer.echo(line)
        if summary.database:
            typer.echo("")
            typer.echo(_examples(Path(summary.database)))
    raise typer.Exit(summary.exit_code)


def _examples(db: Path) -> str:
    """Example commands and queries, filled in with this database's own releases."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        first, last, day = con.execute(
            """SELECT min_by(release_id, history_seq), max_by(release_id, history_seq),
                      max(effective_from) + INTERVAL 14 DAY FROM releases WHERE effective"""
        ).fetchone()
    where = "" if db.parent == Path("data") else f"   (add --data-dir {db.parent})"
    return EXAMPLE_QUERIES.format(code="J0135", first=first, last=last, day=day.date(),
                                  db=db, data=where)


def _usable_source(source: str) -> str:
    """``source`` with any credentials taken out (kept in this process for the download only, never
    in Prefect's parameters, reports or the data dir); an unknown source exits with 2."""
    from contracts.urls import strip_credentials
    from sources.catalog import CatalogError
    from sources.registry import source_kind

    try:
        source_kind(source)
    except CatalogError as exc:
        raise fail(str(exc)) from None
    return strip_credentials(source)


def _writable(data_dir: Path) -> None:
    """A data directory the run cannot write to (read-only, full) exits with 2 before it starts."""
    from contracts.files import WriteCheckError, check_writable

    try:
        check_writable(data_dir)
    except WriteCheckError as exc:
        raise fail(str(exc)) from None


def _run_flow(
    flow_name: str, data_dir: Path, verbose: bool, quiet: bool, **params: Any
) -> RunSummary:
    """Run a flow: tracked by the Prefect API when one is configured, else locally (the same
    body, each step a plain call: no server to start, nothing to record the run but its report).
    """
    _offline_prefect(verbose)
    from flows.server import configured_api
    from flows.summary import EXIT_FAILED, RunSummary

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise fail(str(exc)) from None
    _writable(data_dir)
    api = configured_api(Path(os.environ["PREFECT_HOME"]))
    if verbose:
        _log_to_stderr()
    if api and not quiet:
        from contracts.urls import redact_url

        typer.echo(f"{flow_name}: a Prefect flow run, tracked at {redact_url(api)}", err=True)
    from flows.progress import Reporter, RichReporter, reporting

    show = not quiet and sys.stderr.isatty()
    try:
        with reporting(RichReporter() if show else Reporter()):
            if not api:
                from flows.pipeline import run_local

                return run_local(flow_name, data_dir, settings, **params)
            from flows.refresh import backfill, refresh

            flow = {"refresh": refresh, "backfill": backfill}[flow_name]
            return RunSummary.from_dict(flow(data_dir=str(data_dir), settings=settings, **params))
    except Exception as exc:  # the run itself failed (a lock held, Prefect's API): not a release
        if verbose:
            raise
        raise fail(f"the {flow_name} flow could not run: {type(exc).__name__}: {exc} "
                   "(--verbose shows the traceback)", EXIT_FAILED) from None


def _log_to_stderr() -> None:
    """--verbose: the run's log lines on stderr (Prefect shows its own when tracked)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("hcpcs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


@app.command()
def run(
    source: str = typer.Option("demo", "--source", "-s", help=f"Where from: {sources_help()}."),
    data_dir: Path = DATA_DIR,
    as_json: bool = JSON,
    verbose: bool = VERBOSE,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Fetch what is new at SOURCE, validate and publish it, rebuild history (the refresh flow).

    Releases already published with the same sha256 are skipped, so a second run is a no-op.
    Runs locally, or as a tracked Prefect flow run when PREFECT_API_URL is set.
    Exit status: 0 published, 3 nothing new (also: only superseded or duplicate files), 1 a
    release failed (the others were published), 2 unknown source, or a data directory that is
    read-only or full.
    """
    source = _usable_source(source)
    _finish_run(_run_flow("refresh", data_dir, verbose, quiet, source=source), as_json)


@app.command()
def backfill(
    source: str = typer.Option("cms", "--source", "-s", help=f"Where from: {sources_help()}."),
    first: str | None = typer.Option(None, help="First release to load, e.g. 2019-Q1."),
    last: str | None = typer.Option(None, help="Last release to load, e.g. 2024-Q4."),
    data_dir: Path = DATA_DIR,
    as_json: bool = JSON,
    verbose: bool = VERBOSE,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Load every release of a catalog (in any order), then rebuild history from all of them.

    Same exit status as run.
    """
    from contracts.release import ReleaseIdError, validate_release_id

    try:
        for rid in (first, last):
            if rid:
                validate_release_id(rid)
    except ReleaseIdError as exc:
        raise fail(str(exc)) from None
    source = _usable_source(source)
    _finish_run(
        _run_flow("backfill", data_dir, verbose, quiet, source=source, first=first, last=last),
        as_json,
    )


def _connect(data_dir: Path) -> duckdb.DuckDBPyConnection:
    """The analysts' database, read-only, or a clear error saying how to create it."""
    import duckdb

    from contracts.paths import DataDir

    db = DataDir(data_dir).database
    if not db.exists():
        raise fail(f"{db}: no database yet; run `hcpcs run` (or `hcpcs backfill`) first")
    return duckdb.connect(str(db), read_only=True)


#: Text longer than CELL_WIDTH wraps within its column; longer than TEXT_CUT it is cut with "…"
#: (--json and the database hold the whole value).
CELL_WIDTH, TEXT_CUT = 42, 70
#: The release_summary columns ``hcpcs status`` shows, and their headers.
STATUS_COLUMNS = {
    "release_id": "release", "code_count": "codes", "reject_count": "rejects", "added": "added",
    "discontinued": "discontinued", "dropped": "dropped", "reactivated": "reactivated",
    "reused": "reused", "redefined": "redefined", "field_changes": "changed",
    "silent_changes": "silent", "finding_count": "findings", "repair_count": "repairs",
    "difference_count": "txt/xlsx", "vanished_count": "vanished", "waivers": "waivers",
    "superseded_by": "superseded by",
}
#: The code_changes_decoded columns ``hcpcs diff`` shows (--json gives every column).
DIFF_COLUMNS = ("release_id", "code", "change_type", "field", "old_value", "new_value",
                "action_code", "silent")


def _cell_lines(value: Any) -> list[str]:
    """A value as the lines of its table cell: null blank, booleans as SQL writes them."""
    if value is None:
        return [""]
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if len(text) > TEXT_CUT:
        text = text[:TEXT_CUT - 1] + "…"
    return textwrap.wrap(text, CELL_WIDTH) or [""]


def _table_lines(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                 headers: Mapping[str, str] | None = None) -> list[str]:
    """``columns`` of ``rows`` as an aligned text table (numbers to the right, long text wrapped
    in its column), under a header line and a rule: readable, and one grep away from a row."""
    cells = [[_cell_lines(row[c]) for c in columns] for row in rows]
    titles = [(headers or {}).get(c, c) for c in columns]
    widths = [max([len(t), *(len(line) for row in cells for line in row[i])])
              for i, t in enumerate(titles)]
    numeric = [any(isinstance(row[c], Number) and not isinstance(row[c], bool) for row in rows)
               for c in columns]

    def line(parts: Sequence[str]) -> str:
        return "  ".join(p.rjust(w) if n else p.ljust(w)
                         for p, w, n in zip(parts, widths, numeric, strict=True)).rstrip()

    out = [line(titles), line(["-" * w for w in widths])]
    for row in cells:
        out += [line([c[k] if k < len(c) else "" for c in row])
                for k in range(max(len(c) for c in row))]
    return out


def _echo_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                headers: Mapping[str, str] | None = None) -> None:
    typer.echo("\n".join(_table_lines(rows, columns, headers)))


@app.command()
def status(data_dir: Path = DATA_DIR, as_json: bool = JSON) -> None:
    """Published releases (counts, changes, findings, repairs, TXT/xlsx differences, waivers)
    and what the last run did."""
    from flows.summary import RunReportError, last_run
    from warehouse.queries import records, release_details, release_summary

    with _connect(data_dir) as con:
        releases = records(release_summary(con))
        details = {title: records(rel) for title, rel in release_details(con).items()}
    try:
        last, unreadable = last_run(data_dir), ""
    except RunReportError as exc:
        last, unreadable = None, str(exc)
    if as_json:
        doc = {"releases": releases, "details": details,
               "last_run": last.to_dict() if last else None}
        if unreadable:
            doc["last_run_error"] = unreadable
        typer.echo(json.dumps(doc, indent=2, default=str))
        return
    _echo_table(releases, list(STATUS_COLUMNS), STATUS_COLUMNS)
    for title, rows in details.items():
        if rows:
            typer.echo(f"{title}:")
            _echo_table(rows, list(rows[0]))
    if last is None:
        typer.echo(f"last run: unreadable: {unreadable}" if unreadable else
                   "last run: none recorded")
        return
    typer.echo(f"last run: {last.started_at} ({last.flow}, {last.seconds:.1f} s)")
    for line in last.lines():
        typer.echo(f"  {line}")


@app.command()
def report(
    out: Path = typer.Option(
        None, "--out", metavar="DIR", help="Folder of the site (default: reports/site in the "
        "data directory); replaced whole (an earlier report or an empty folder only)."),
    data_dir: Path = DATA_DIR,
) -> None:
    """Write the release report: a static HTML site to look at, offline, from file://.

    An overview with charts of every release (codes by kind and BETOS family, additions,
    discontinuations, changes, silent changes), a page per release (changes by type with values
    decoded, the gate's checks, findings, repairs, waivers, CMS's announcements against what
    changed, the manifest and raw sha256), a page per code (every field with its meaning, its
    versions, episodes and replacements), and search by code or words. Every publishing run
    rewrites it. Exit status: 0 written, 2 no database, or the folder cannot be written.
    """
    from report.site import ReportError, build

    try:
        done = build(data_dir, out)
    except ReportError as exc:
        raise fail(str(exc)) from None
    for line in done.lines():
        typer.echo(line)


@app.command()
def export(
    folder: Path = typer.Argument(
        ..., metavar="DIR", help="Folder to write into: created if missing, replaced whole "
        "(an earlier export or an empty folder only)."),
    data_dir: Path = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Export every table of hcpcs.duckdb as Parquet that BigQuery, Snowflake and DuckDB load as is.

    Tables that grow by release get one file per release (DIR/codes/2026-Q1.parquet: a load
    takes only the new ones), the others one file (DIR/code_history.parquet); DIR/export.json
    lists every file with its rows and sha256. Every file carries its release_id, plain types
    and a description per column (docs/downstream.md). DIR is never left half-written.
    Exit status: 0 exported, 2 no database, or DIR cannot be written.
    """
    from warehouse.export import ExportError
    from warehouse.export import export as export_to

    try:
        done = export_to(data_dir, folder)
    except ExportError as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps({"out": str(done.out), **json.loads(done.to_json())}, indent=2))
        return
    tables = done.tables()
    _echo_table([{"table": t, "files": f, "rows": r} for t, (f, r) in tables.items()],
                ["table", "files", "rows"])
    typer.echo(f"{len(tables)} tables, {len(done.files)} files, "
               f"{sum(r for _, r in tables.values()):,} rows -> {done.out}")


@app.command()
def diff(
    release_a: str = typer.Argument(..., help="Older release, e.g. 2024-Q1."),
    release_b: str = typer.Argument(..., help="Newer release, e.g. 2025-Q1."),
    change_type: str | None = typer.Option(
        None, "--type", help="Only this change type (added, discontinued, ..., "
        "long_description_changed: the code_changes table's change_type)."),
    silent: bool = typer.Option(False, help="Only changes CMS did not flag with an action code."),
    data_dir: Path = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Every change after RELEASE_A up to RELEASE_B: code, change type, field, old and new value."""
    from warehouse.queries import changes_between, records

    if change_type:  # only a --type pays for the layout's Polars import, to check it
        from warehouse.changes import CHANGE_TYPE_DESCRIPTIONS

        if change_type not in CHANGE_TYPE_DESCRIPTIONS:
            raise fail(f"--type {change_type!r} is not a change type; those are: "
                       f"{', '.join(CHANGE_TYPE_DESCRIPTIONS)}")
    with _connect(data_dir) as con:
        try:
            changes = records(changes_between(con, release_a, release_b, change_type, silent))
        except KeyError as exc:
            raise fail(exc.args[0]) from None
    if as_json:
        typer.echo(json.dumps(changes, default=str, ensure_ascii=False, separators=(",", ":")))
        return
    _echo_table(changes, DIFF_COLUMNS)
    counts = sorted(Counter(c["change_type"] for c in changes).items())
    typer.echo(f"{len(changes):,} change(s): " + ", ".join(f"{t} {n:,}" for t, n in counts))


#: The code_pages columns that are not one of the code's fields: the heading names the release,
#: the findings and repairs follow the fields, and each ``<field>_meaning`` goes beside its field.
PAGE_EXTRAS = ("release_id", "has_findings", "findings", "repairs")


def _page_lines(page: dict[str, Any]) -> list[str]:
    """A code page as CMS's readers know it: each field, its value, and what the value means."""
    lines = []
    for col, value in page.items():
        if col in PAGE_EXTRAS or col.endswith("_meaning"):
            continue
        meaning = page.get(f"{col}_meaning")
        if isinstance(value, list):
            for i, v in enumerate(value, 1):
                if v is not None:
                    m = meaning[i - 1] if meaning else None
                    lines.append(f"{f'{col} #{i}':<26} {v!s:<12} {m or ''}".rstrip())
            continue
        if value is None or value == "":
            continue
        lines.append(f"{col:<26} {value!s:<12} {meaning}" if meaning else f"{col:<26} {value}")
    lines += [f"{'finding':<26} {f}" for f in page.get("findings") or []]
    lines += [f"{'repaired ' + r['field']:<26} {r['raw_value']} -> {r['repaired_value']} "
              f"({r['evidence']})" for r in page.get("repairs") or []]
    return lines


def _history_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Each version of a code (days in force, releases, action) and the changes that opened it."""
    lines: list[str] = []
    shown = None
    for r in rows:
        if r["version"] != shown:
            shown = r["version"]
            never = r["valid_to_date"] and r["valid_to_date"] < r["valid_from_date"]
            days = ("never in force" if never else
                    f"in force {r['valid_from_date']} .. {r['valid_to_date'] or 'now'}")
            lines.append(
                f"v{r['version']} (episode {r['episode']}) {days} "
                f"(from {r['valid_from_basis']}); releases "
                f"{r['valid_from_release']} .. {r['valid_to_release']}; action {r['action_code']}"
                + (f"; ended: {r['end_reason']}" if r["end_reason"] else "; latest version"))
        if r["change_type"]:
            flag = "silent: CMS did not announce it" if r["silent"] else (
                f"CMS action {r['action_code']}")
            what = (f"{r['field']} {r['old_value']!s} -> {r['new_value']!s}" if r["field"]
                    else (r["new_value"] or r["old_value"] or ""))
            lines.append(f"    {r['change_type']}: {what} ({flag})")
    return lines


@app.command()
def code(
    code_: str = typer.Argument(..., metavar="CODE", help="A HCPCS code (J0131) or modifier (25)."),
    release: str | None = typer.Option(None, help="Show the code as of this release."),
    data_dir: Path = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """A code's page (every field, with what each coded value means) and its full history."""
    from warehouse.queries import code_page, code_timeline, records

    wanted = code_.strip().upper()
    with _connect(data_dir) as con:  # by default its latest page, even if gone from the file
        pages = records(code_page(con, wanted, release))
        timeline = records(code_timeline(con, wanted))
    if not pages:
        raise fail(f"{wanted}: not in release {release}" if release else
                   f"{wanted}: not in any published release", 1)
    doc = pages[0]
    if as_json:
        typer.echo(json.dumps({"page": doc, "history": timeline}, indent=2, default=str))
        return
    typer.echo(f"{wanted} in release {doc['release_id']}")
    for line in _page_lines(doc):
        typer.echo(f"  {line}")
    typer.echo("history (one line per version, then the changes that started it):")
    for line in _history_lines(timeline):
        typer.echo(f"  {line}")


@app.command()
def validate(
    path: Path = typer.Argument(
        ..., help="A CMS release ZIP, the extracted fixed-width .txt, or CMS's ANWEB .xlsx/.xls."),
    previous: Path | None = typer.Option(
        None, help="The release before it (ZIP, .txt or workbook), for the drift checks."
    ),
    reports: Path | None = typer.Option(
        None, help="Write Great Expectations Data Docs here (e.g. data/reports)."
    ),
    as_json: bool = JSON,
) -> None:
    """Parse a release and run the validation gate on it, without publishing anything.

    Prints each rule with its severity, failure count and sample codes. Exit status: 0 no
    release-level error (record-level findings allowed: they never stop a release), 1 a
    release-level error (the release would not be published), 2 unreadable input.
    """
    _offline_prefect(True)
    from contracts.release import release_from_name
    from expectations.docs import build_data_docs
    from expectations.gate import run_gate

    parsed = _parse_file(path)[1]
    before = _parse_file(previous)[1].codes if previous else None
    result = run_gate(parsed.codes, rejects=parsed.rejects, previous=before,
                      release_id=release_from_name(path.name) or path.name,
                      previous_release_id=release_from_name(previous.name) if previous else None)
    if reports is not None:
        build_data_docs([result], reports)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        typer.echo(result.summary_text())
    raise typer.Exit(0 if result.passed else 1)


@app.command()
def accept(
    release: str = typer.Argument(..., help="The refused release, e.g. 2026-Q1."),
    rule: str = typer.Option(..., "--rule", help="The release-level rule to let through, as the "
                             "refusal names it (e.g. code_count_drift)."),
    reason: str = typer.Option(..., "--reason", help="Why: kept with the waiver."),
    sha256: str | None = typer.Option(
        None, help="The file to accept (default: the file of RELEASE the last run refused)."),
    by: str | None = typer.Option(None, "--by", help="Who accepts (default: your login name)."),
    data_dir: Path = DATA_DIR,
) -> None:
    """Publish a refused release anyway, on purpose and on record (a waiver).

    The waiver names the exact file (sha256), so it never lets another file through. The next
    `hcpcs run` / `hcpcs backfill` publishes it; `hcpcs status` and the database's `waivers`
    table show who accepted what, when and why. Exit status: 0 recorded, 2 bad arguments.
    """
    from contracts.settings import GateSettings
    from expectations.suite import all_checks
    from flows.summary import RunReportError, last_run
    from warehouse.waivers import add_waiver

    rules = [c.name for c in all_checks(GateSettings(), previous_count=0)
             if c.scope == "release" and c.severity == "error"]
    if rule not in rules:
        raise fail(f"{rule!r} is not a release-level rule; those are: {', '.join(rules)}")
    if sha256 is None:
        try:
            last = last_run(data_dir)
        except RunReportError as exc:
            raise fail(f"{exc}; give the file's --sha256") from None
        refused = [r for r in (last.releases if last else [])
                   if r.release_id == release and r.sha256 and rule in r.refused_by]
        if not refused:
            raise fail(f"the last run did not refuse {release} for {rule}; give the file's "
                       f"--sha256 (hcpcs status shows the last run)")
        sha256 = refused[-1].sha256
    waiver = add_waiver(data_dir, release_id=release, rule=rule, sha256=sha256, reason=reason,
                        accepted_by=by)
    typer.echo(f"waiver recorded: {release} {rule} for sha256 {sha256[:12]}... by "
               f"{waiver.accepted_by} ({waiver.reason}); the next run publishes it")


@app.command()
def doctor(
    repair: bool = typer.Option(
        False, "--repair", help="Quarantine what is damaged, remove leftovers, and derive the "
        "quarantined releases again from the raw store (then rebuild the database)."),
    data_dir: Path = DATA_DIR,
    as_json: bool = JSON,
    verbose: bool = VERBOSE,
) -> None:
    """Check the data directory against its own records, and heal it with --repair.

    Checks every published file against its manifest (size, sha256), that hcpcs.duckdb opens,
    the raw store (symbolic links, bytes that no longer match their sha256, broken sidecars) and
    the leftovers of killed runs. Every run does the same at its start. --repair never deletes a
    published file: it moves it to data/quarantine/<time>/ and publishes the release again from
    its raw file, the source of truth. Exit status: 0 nothing wrong (or all repaired), 1 problems
    remain (each printed with the command that fixes it), 2 bad arguments.
    """
    from warehouse.doctor import check

    if repair:
        _writable(data_dir)
        summary = _run_flow("refresh", data_dir, verbose, True, source=None)
        problems = check(data_dir)
        if as_json:
            typer.echo(json.dumps({"repaired": summary.healed, "run": summary.to_dict(),
                                   "problems": [str(p) for p in problems]}, indent=2))
        else:
            for line in summary.lines():
                typer.echo(line)
            for p in problems:
                typer.echo(f"still wrong: {p}")
        raise typer.Exit(1 if problems or summary.count("failed") else 0)
    problems = check(data_dir)
    if as_json:
        typer.echo(json.dumps([{"path": str(p.path), "what": p.what, "release_id": p.release_id,
                                "fix": p.fix} for p in problems], indent=2))
    else:
        for p in problems:
            typer.echo(str(p))
        typer.echo(f"{len(problems)} problem(s) in {data_dir}" if problems else
                   f"{data_dir}: every published file matches its manifest; nothing to repair")
    raise typer.Exit(1 if problems else 0)


@app.command()
def load(
    target: str = typer.Argument(
        "", help="PostgreSQL URL, postgresql://user[:password]@host[:port]/db; what it leaves "
        "out comes from PGHOST, PGUSER, PGPASSWORD, ~/.pgpass... Default: HCPCS_LOAD_TARGET."),
    schema: str = typer.Option("", help="Schema that holds the tables (created by the first "
                               "load). Default: HCPCS_LOAD_SCHEMA, else hcpcs."),
    migrate: bool = typer.Option(
        False, "--migrate", help="Rebuild a schema written by another version of hcpcs (or "
        "from another data directory): drop it and load everything, in one transaction."),
    data_dir: Path = DATA_DIR,
    as_json: bool = JSON,
) -> None:
    """Load the database into PostgreSQL: what is new only, in one transaction.

    Copies every table of hcpcs.duckdb (releases, codes, history, changes, findings, repairs,
    lookups...) with keys, indexes and comments. The first load creates the schema; later loads
    add new releases and replace the tables whose content changed, and with nothing new change
    nothing. A reader of the target never sees half a load; a load that is killed or cut off
    leaves the target as it was, and the next completes it. No password is printed or stored.
    Exit status: 0 loaded, 3 nothing new, 1 refused or failed (the target unchanged), 2 no
    database or bad arguments.
    """
    from dataclasses import asdict

    from contracts.paths import DataDir
    from warehouse.postgres import LoadConnectionError, LoadError
    from warehouse.postgres import load as load_into

    try:
        settings = Settings.from_env().load
    except ValueError as exc:
        raise fail(str(exc)) from None
    target, schema = target or settings.target, schema or settings.schema
    if not target:
        raise fail("no target: give a postgresql:// URL or set HCPCS_LOAD_TARGET")
    database = DataDir(data_dir).database
    if not database.exists():
        raise fail(f"{database}: no database to load; run `hcpcs run` or `hcpcs backfill` first")
    say = (lambda _: None) if as_json else (lambda line: typer.echo(line, err=True))
    try:
        result = load_into(data_dir, target, schema=schema, migrate=migrate, say=say)
    except (LoadError, LoadConnectionError) as exc:
        raise fail(str(exc), 1) from None
    if as_json:
        typer.echo(json.dumps({**asdict(result), "rows": result.rows}, indent=2))
    else:
        typer.echo("\n".join(result.lines()))
    raise typer.Exit(0 if result.status == "loaded" else 3)


@app.command()
def serve(
    cron: str = typer.Option(
        "0 6 * * 1", help="When to refresh (cron, UTC). Default: Mondays 06:00, because CMS "
        "publishes ahead of each quarter and re-issues inside it.",
    ),
    source: str = typer.Option("cms", "--source", "-s", help="What each run refreshes from."),
    name: str = typer.Option("hcpcs-weekly-refresh", help="Deployment name."),
    data_dir: Path = DATA_DIR,
) -> None:
    """Serve the refresh flow as a Prefect deployment on a cron schedule (runs until stopped).

    Each scheduled run is a tracked Prefect flow run, run in this same process (so only the first
    pays for importing the libraries). Without PREFECT_API_URL, a local Prefect server is started
    for this process and stopped with it; point PREFECT_API_URL at a `prefect server start` to
    see runs and artifacts in its UI.
    """
    _offline_prefect(True)  # Prefect's console handler shows the runs' log lines, and ours:
    logging.getLogger("hcpcs").setLevel(logging.INFO)
    from flows.server import ServerError, ensure_api
    from flows.summary import EXIT_FAILED

    try:
        ensure_api(Path(os.environ["PREFECT_HOME"]))
    except ServerError as exc:
        raise fail(str(exc), EXIT_FAILED) from None
    from flows.deploy import refresh_deployment, serve_forever

    serve_forever(refresh_deployment(name=name, cron=cron, source=_usable_source(source),
                                     data_dir=data_dir.resolve()),
                  say=lambda line: typer.echo(line, err=True))


def main() -> None:  # pragma: no cover - console entry point
    # before pyarrow or Polars loads; set, not defaulted: a parent that imported Polars passes
    # on its own jemalloc setting (decay 500 ms), which costs a run 20-30 MiB
    os.environ.update(ALLOCATOR_ENV)
    app()
