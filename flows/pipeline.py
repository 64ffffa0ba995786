"""The body of both flows, ``refresh`` and ``backfill`` (``run_pipeline``), and how it runs.

The same body runs two ways (``flows.runtime``): **local**, each step a plain call, when no
Prefect API is configured (``hcpcs run`` on a laptop: nothing to start, nothing to record a run
in), or **tracked**, each step a Prefect task of a flow run (``flows.refresh``: with
``PREFECT_API_URL``, under ``hcpcs serve``, from Python). The phases:

0. check the data directory against its manifests (``warehouse.doctor``): quarantine what is
   damaged and derive it again from the raw store, sweep what killed runs left behind;
1. discover what the source offers, and fetch every release into the raw store (a release that
   cannot be fetched is reported and skipped);
2. in release order, for each release file not already published (same sha256) nor superseded
   by a newer published revision of its quarter (``warehouse.identity``), under an id no other
   published file uses: parse -> skip if the same content is published (a duplicate) ->
   validate (with the operators' waivers; the TXT/xlsx reconciliation and CMS's transaction
   report are read beside it, on another thread) -> repair -> publish (a report that cannot be
   read is a warning, never a failure); a release
   refused by a release-level rule, or that fails any step, is reported and never published, and
   the releases after it still go on (validation compares with what *is* published);
3. rebuild history once, if anything was published (``backfill`` always rebuilds), while the GX
   Data Docs of the releases published are rendered beside it;
4. with a load target in the settings (``HCPCS_LOAD_TARGET``), load the database into it
   (``warehouse.postgres``: what is new only, one transaction; a failure is reported and the
   next run catches up);
5. after a rebuild (or when the data directory has none yet), rewrite the release report
   (``report.site``: the static HTML site in ``reports/site``), unless ``HCPCS_REPORT_WRITE``
   is false.

Then ``data/reports/runs/*.json``, a log summary and (tracked) a markdown artifact.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import duckdb

from contracts.paths import DataDir
from contracts.release import Manifest, ReleaseFile, release_sort_key
from contracts.settings import LoadSettings, ReportSettings, Settings
from contracts.validation import ExpectationOutcome, GateResult
from flows import steps
from flows.progress import reporter
from flows.runtime import LocalRuntime, Outcome, Runtime, settle
from flows.summary import ReleaseOutcome, RunSummary
from sources.fetch import UnreachableError
from transforms.fixed_width import ParseResult
from warehouse import identity
from warehouse import publish as pub
from warehouse.history import database_is_current
from warehouse.lock import publish_lock
from warehouse.queries import changes_by_type


def _error_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _fetch_all(rt: Runtime, source: str, data_dir: Path, settings: Settings,
               releases: tuple[str, str] | None,
               outcomes: list[ReleaseOutcome]) -> list[ReleaseFile]:
    """Every release file the source offers (within ``releases``) into the raw store, oldest
    release first; a source or file that fails becomes a failed outcome."""
    try:
        entries = rt.call(steps.discover_releases)(source, data_dir)
    except Exception as exc:
        outcomes.append(ReleaseOutcome("?", "failed", source_url=source, stage="discover",
                                       message=_error_text(exc)))
        return []
    if releases:
        lo, hi = (release_sort_key(r) for r in releases)
        entries = [e for e in entries
                   if e.release_id is None or lo <= release_sort_key(e.release_id) <= hi]
    rt.log.info("%d release file(s) offered by %s", len(entries), source)
    progress = reporter()
    progress.releases(len(entries), "fetching")
    fetched = []
    unreachable: dict[str, ReleaseOutcome] = {}  # host -> the outcome that found it unreachable
    skipped: dict[str, int] = {}
    for entry in entries:
        host = urlsplit(entry.source_url).hostname or ""
        if host in unreachable:  # offline: one line for the host, not one wait per file
            skipped[host] = skipped.get(host, 0) + 1
            progress.advance()
            continue
        progress.release(entry.release_id or entry.source_url, "downloading")
        try:
            fetched.append(rt.call(steps.fetch_release)(entry, data_dir, settings.fetch))
        except Exception as exc:
            outcome = ReleaseOutcome(entry.release_id or "?", "failed",
                                     source_url=entry.source_url, stage="fetch",
                                     message=_error_text(exc))
            outcomes.append(outcome)
            if isinstance(exc, UnreachableError) and host:
                unreachable[host] = outcome
        progress.advance()
    for host, count in skipped.items():
        unreachable[host].message += f" ({count} more file(s) from {host} not tried)"
    return sorted(fetched, key=lambda f: release_sort_key(f.release_id or ""))


def _finding(outcome: ExpectationOutcome) -> str:
    """"rule: count (code field=value, ...)" for one failed expectation of the gate."""
    count = outcome.observed if outcome.unexpected_count is None else outcome.unexpected_count
    samples = "; ".join(f"{s.code or '-'} {s.field}={s.value}" for s in outcome.samples[:3])
    return f"{outcome.severity} {outcome.name}: {count}" + (f" ({samples})" if samples else "")


def _validate_and_publish(rt: Runtime, f: ReleaseFile, parsed: ParseResult, content: str,
                          data_dir: Path, settings: Settings, out: ReleaseOutcome,
                          cross_check: Outcome, report: Outcome) -> GateResult | None:
    """The gate, then (if it lets the release through) repair, the TXT/xlsx differences and the
    transaction report started beside it, and publish; the gate's result, None when refused."""
    release_id = out.release_id
    gate = rt.call(steps.validate_release)(f, parsed, data_dir, settings.gate)
    failed = [o for o in gate.outcomes if not o.success]
    out.refused_by = [o.name for o in gate.blocking]
    out.errors = [_finding(o) for o in gate.blocking]
    out.waived = [f"{w.rule} (by {w.accepted_by}: {w.reason})" for w in gate.waivers]
    out.findings = [_finding(o) for o in failed if not o.blocks and not o.waived]
    if not gate.passed:
        rules = ", ".join(out.refused_by)
        out.message = (f"refused by {len(out.errors)} release-level rule(s) ({rules}); not "
                       f"published. To publish this file anyway: hcpcs accept {release_id} "
                       f"--rule RULE --reason TEXT")
        return None
    out.stage = "repair"
    codes, repairs = rt.call(steps.repair_release)(release_id, parsed.codes, settings.gate)
    out.repairs = int(repairs["applied"].sum())
    out.stage = "reconcile"
    reconciliation = cross_check.result()
    out.differences = 0 if reconciliation is None else reconciliation.height
    out.stage = "transactions"
    transactions = report.result()
    if transactions.error:  # published all the same: the data file is the source of record
        rt.log.warning("%s: transaction report not read: %s", release_id, transactions.error)
    out.stage = "publish"
    reporter().release(release_id, "publishing")
    rt.call(steps.publish_release)(f, parsed, codes, gate, repairs, reconciliation,
                                   transactions, content, data_dir)
    return gate


def _process(rt: Runtime, f: ReleaseFile, data_dir: Path, settings: Settings,
             published: list[Manifest], gates: list[GateResult]) -> ReleaseOutcome:
    """parse -> validate -> publish one fetched release; any failure is the outcome, not a crash.

    ``f.release_id`` is the id it publishes under (``warehouse.identity``); ``published`` the
    manifests of what is published now. The gate's result of a release that publishes is added
    to ``gates`` (for its Data Docs)."""
    release_id = f.release_id or "?"
    out = ReleaseOutcome(release_id, "failed", source_url=f.source_url, sha256=f.sha256)
    progress = reporter()
    try:
        out.stage = "parse"
        progress.release(release_id, "parsing")
        parsed = rt.call(steps.parse_release)(f)
        kinds = dict(parsed.codes.group_by("kind").len().iter_rows())
        out.codes, out.rejects = parsed.codes.height, parsed.rejects.height
        out.procedures, out.modifiers = kinds.get("procedure", 0), kinds.get("modifier", 0)
        content = identity.content_sha256(parsed.codes)
        same = identity.duplicate_of(content, release_id, published)
        if same is not None:
            out.status, out.stage = "duplicate", ""
            out.message = (f"same content as the published {same.release_id} "
                           f"({same.member_name}); not published again")
            return out
        out.stage = "validate"
        progress.release(release_id, "validating")
        # beside the gate (Great Expectations holds the interpreter): Polars and Rust readers
        cross_check = rt.submit(steps.reconcile_release, f, parsed.codes)
        report = rt.submit(steps.read_transactions, f)
        try:
            gate = _validate_and_publish(rt, f, parsed, content, data_dir, settings, out,
                                         cross_check, report)
        finally:
            settle(cross_check, report)
        if gate is None:
            return out
    except Exception as exc:
        out.message = _error_text(exc)
        return out
    out.status, out.stage = "published", ""
    gates.append(gate)
    return out


def _data_docs(rt: Runtime, gates: list[GateResult], data_dir: Path) -> Outcome | None:
    """Start the Data Docs of the releases published now, beside the history rebuild (DuckDB
    leaves the interpreter to GX's rendering); None when nothing was published."""
    if not gates:
        return None
    return rt.submit(steps.render_data_docs, gates, data_dir)


def _data_docs_done(rt: Runtime, docs: Outcome | None) -> None:
    """Wait for the Data Docs; a failure to render is a warning (they are a view of
    ``validation.json``, which is published either way)."""
    if docs is None:
        return
    try:
        docs.result()
    except Exception as exc:
        rt.log.warning("GX Data Docs not rendered: %s", _error_text(exc))


def _rebuild(rt: Runtime, data_dir: Path, summary: RunSummary,
             published_now: list[str]) -> None:
    """Rebuild history once; a failure is reported (and retried by the next run), not raised."""
    reporter().release("history", "rebuilding")
    try:
        rebuilt = rt.call(steps.rebuild_history)(data_dir)
    except Exception as exc:
        summary.releases.append(ReleaseOutcome("history", "failed", stage="rebuild",
                                               message=_error_text(exc)))
        return
    summary.rebuilt, summary.database = True, str(rebuilt.database)
    summary.totals = {"releases": rebuilt.releases, "codes": rebuilt.codes,
                      "versions": rebuilt.versions, "changes": rebuilt.changes}
    with duckdb.connect(str(rebuilt.database), read_only=True) as con:
        summary.changes_by_type = changes_by_type(con, published_now)


def _load(rt: Runtime, data_dir: Path, summary: RunSummary, settings: LoadSettings) -> None:
    """Load the database into the settings' target, whenever one is set and a database exists (a
    load that failed before is caught up by the next run); a failure is reported, not raised."""
    if not settings.target or not DataDir(data_dir).database.exists():
        return
    reporter().release("load", "loading")
    try:
        result = rt.call(steps.load_target)(data_dir, settings)
    except Exception as exc:
        summary.releases.append(ReleaseOutcome("load", "failed", stage="load",
                                               message=_error_text(exc)))
        return
    summary.loaded = result.lines()


def _report(rt: Runtime, data_dir: Path, summary: RunSummary,
            settings: ReportSettings) -> None:
    """Rewrite the report after a rebuild, or write the first one (unless the settings say
    not to); a failure is reported (the next rebuild writes it again), not raised."""
    paths = DataDir(data_dir)
    if (not settings.write or not paths.database.exists()
            or (not summary.rebuilt and paths.site.exists())):
        return
    reporter().release("report", "writing")
    try:
        done = rt.call(steps.write_report)(data_dir, summary.to_dict())
    except Exception as exc:
        summary.releases.append(ReleaseOutcome("report", "failed", stage="report",
                                               message=_error_text(exc)))
        return
    summary.report = str(done.index)


def run_pipeline(rt: Runtime, flow_name: str, source: str | None, data_dir: Path, *,
                 always_rebuild: bool, settings: Settings | None = None,
                 releases: tuple[str, str] | None = None) -> RunSummary:
    """The body both flows share, run by ``rt``. No ``source``: only heal the data directory
    (``hcpcs doctor --repair``) and rebuild what that needs."""
    data_dir = Path(data_dir)
    settings = settings or Settings.from_env()
    started = time.monotonic()
    summary = RunSummary(flow_name, source or "(none: healing only)", str(data_dir),
                         datetime.now(UTC).isoformat(timespec="seconds"), flow_run_id=rt.run_id)
    gates: list[GateResult] = []
    with publish_lock(data_dir):  # one run at a time per data directory
        healing = rt.call(steps.heal_data_dir)(data_dir)
        summary.healed = healing.lines()
        fetched = (_fetch_all(rt, source, data_dir, settings, releases, summary.releases)
                   if source else [])
        reporter().releases(len(healing.rederive) + len(fetched), "processing")
        for f in healing.rederive:  # quarantined: derived again under the id it had
            summary.releases.append(_process(rt, f, data_dir, settings,
                                             pub.published_releases(data_dir), gates))
            reporter().advance()
        for f in fetched:  # identified one by one: each publish changes what the next one is
            published = pub.published_releases(data_dir)
            known = identity.identify(f, published)
            if known.verdict == "new":
                outcome = _process(rt, known.file, data_dir, settings, published, gates)
            else:
                outcome = ReleaseOutcome(known.file.release_id or "?", known.verdict,
                                         source_url=f.source_url, sha256=f.sha256,
                                         message=known.reason)
            summary.releases.append(outcome)
            if outcome.status != "unchanged":
                rt.log.log(logging.ERROR if outcome.status == "failed" else logging.INFO,
                           "%s %s%s", outcome.release_id, outcome.status,
                           f": {outcome.message}" if outcome.message else "")
            reporter().advance()
        published_now = [r.release_id for r in summary.releases if r.status == "published"]
        docs = _data_docs(rt, gates, data_dir)
        if published_now or ((always_rebuild or not database_is_current(data_dir))
                             and pub.published_releases(data_dir)):
            _rebuild(rt, data_dir, summary, published_now)
        _data_docs_done(rt, docs)
        _load(rt, data_dir, summary, settings.load)
        _report(rt, data_dir, summary, settings.report)
    summary.releases.sort(key=lambda r: (r.release_id == "?", r.release_id))
    summary.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    summary.seconds = round(time.monotonic() - started, 2)
    summary.save(data_dir)
    for line in summary.lines():
        rt.log.info(line)
    rt.report(summary)
    return summary


def run_named(rt: Runtime, flow_name: str, source: str | None, data_dir: Path,
              settings: Settings | None = None, first: str | None = None,
              last: str | None = None) -> RunSummary:
    """The flow ``flow_name`` run by ``rt``: ``refresh`` rebuilds history when it published
    something (or the database lags); ``backfill`` always rebuilds, over its ``first``..``last``."""
    span = (first or "1900-Q1", last or "9999-Q4") if first or last else None
    return run_pipeline(rt, flow_name, source, data_dir, always_rebuild=flow_name == "backfill",
                        settings=settings, releases=span)


def run_local(flow_name: str, data_dir: Path, settings: Settings, source: str | None,
              first: str | None = None, last: str | None = None) -> RunSummary:
    """``refresh`` or ``backfill`` run locally: the flows' own body, each step a plain call."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="hcpcs-step") as pool:
        return run_named(LocalRuntime(pool), flow_name, source, data_dir, settings, first, last)
