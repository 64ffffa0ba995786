"""The Prefect flows: ``refresh`` (the scheduled job) and ``backfill`` (a whole catalog).

Both run the same phases:

0. check the data directory against its manifests (``warehouse.doctor``): quarantine what is
   damaged and derive it again from the raw store, sweep what killed runs left behind;
1. discover what the source offers, and fetch every release into the raw store (a release that
   cannot be fetched is reported and skipped);
2. in release order, for each release file not already published (same sha256) nor superseded
   by a newer published revision of its quarter (``warehouse.identity``), under an id no other
   published file uses: parse -> skip if the same content is published (a duplicate) ->
   validate (with the operators' waivers) -> repair -> reconcile -> read CMS's transaction
   report (one that cannot be read is a warning, never a failure) -> publish; a release
   refused by a release-level rule, or that fails any step, is reported and never published, and
   the releases after it still go on (validation compares with what *is* published);
3. rebuild history once, if anything was published (``backfill`` always rebuilds).

Then a markdown artifact, a log summary and ``data/reports/runs/*.json``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run

from contracts.release import Manifest, ReleaseFile, release_sort_key
from contracts.settings import Settings
from contracts.validation import ExpectationOutcome
from flows import tasks
from flows.progress import reporter
from flows.summary import ReleaseOutcome, RunSummary
from sources.fetch import UnreachableError
from warehouse import identity
from warehouse import publish as pub
from warehouse.history import database_is_current
from warehouse.lock import publish_lock
from warehouse.queries import changes_by_type


def _error_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _fetch_all(source: str, data_dir: Path, settings: Settings,
               releases: tuple[str, str] | None,
               outcomes: list[ReleaseOutcome]) -> list[ReleaseFile]:
    """Every release file the source offers (within ``releases``) into the raw store, oldest
    release first; a source or file that fails becomes a failed outcome."""
    try:
        entries = tasks.discover_releases(source, data_dir)
    except Exception as exc:
        outcomes.append(ReleaseOutcome("?", "failed", source_url=source, stage="discover",
                                       message=_error_text(exc)))
        return []
    if releases:
        lo, hi = (release_sort_key(r) for r in releases)
        entries = [e for e in entries
                   if e.release_id is None or lo <= release_sort_key(e.release_id) <= hi]
    get_run_logger().info("%d release file(s) offered by %s", len(entries), source)
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
            fetched.append(tasks.fetch_release(entry, data_dir, settings.fetch))
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


def _process(f: ReleaseFile, data_dir: Path, settings: Settings,
             published: list[Manifest]) -> ReleaseOutcome:
    """parse -> validate -> publish one fetched release; any failure is the outcome, not a crash.

    ``f.release_id`` is the id it publishes under (``warehouse.identity``); ``published`` the
    manifests of what is published now."""
    release_id = f.release_id or "?"
    out = ReleaseOutcome(release_id, "failed", source_url=f.source_url, sha256=f.sha256)
    progress = reporter()
    try:
        out.stage = "parse"
        progress.release(release_id, "parsing")
        parsed = tasks.parse_release(f)
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
        gate = tasks.validate_release(f, parsed, data_dir, settings.gate)
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
            return out
        out.stage = "repair"
        codes, repairs = tasks.repair_release(release_id, parsed.codes, settings.gate)
        out.repairs = int(repairs["applied"].sum())
        out.stage = "reconcile"
        reconciliation = tasks.reconcile_release(f, parsed.codes)
        out.differences = 0 if reconciliation is None else reconciliation.height
        out.stage = "transactions"
        transactions = tasks.read_transactions(f)
        if transactions.error:  # published all the same: the data file is the source of record
            get_run_logger().warning("%s: transaction report not read: %s", release_id,
                                     transactions.error)
        out.stage = "publish"
        progress.release(release_id, "publishing")
        tasks.publish_release(f, parsed, codes, gate, repairs, reconciliation, transactions,
                              content, data_dir)
    except Exception as exc:
        out.message = _error_text(exc)
        return out
    out.status, out.stage = "published", ""
    return out


def _rebuild(data_dir: Path, summary: RunSummary, published_now: list[str]) -> None:
    """Rebuild history once; a failure is reported (and retried by the next run), not raised."""
    reporter().release("history", "rebuilding")
    try:
        rebuilt = tasks.rebuild_history(data_dir)
    except Exception as exc:
        summary.releases.append(ReleaseOutcome("history", "failed", stage="rebuild",
                                               message=_error_text(exc)))
        return
    summary.rebuilt, summary.database = True, str(rebuilt.database)
    summary.totals = {"releases": rebuilt.releases, "codes": rebuilt.codes,
                      "versions": rebuilt.versions, "changes": rebuilt.changes}
    with duckdb.connect(str(rebuilt.database), read_only=True) as con:
        summary.changes_by_type = changes_by_type(con, published_now)


def run_pipeline(flow_name: str, source: str | None, data_dir: Path, *, always_rebuild: bool,
                 settings: Settings | None = None,
                 releases: tuple[str, str] | None = None) -> RunSummary:
    """The body both flows share (must run inside a flow: it calls tasks). No ``source``: only
    heal the data directory (``hcpcs doctor --repair``) and rebuild what that needs."""
    logger = get_run_logger()
    data_dir = Path(data_dir)
    settings = settings or Settings.from_env()
    started = time.monotonic()
    summary = RunSummary(flow_name, source or "(none: healing only)", str(data_dir),
                         datetime.now(UTC).isoformat(timespec="seconds"),
                         flow_run_id=str(flow_run.get_id() or ""))
    with publish_lock(data_dir):  # one run at a time per data directory
        healing = tasks.heal_data_dir(data_dir)
        summary.healed = healing.lines()
        fetched = (_fetch_all(source, data_dir, settings, releases, summary.releases)
                   if source else [])
        reporter().releases(len(healing.rederive) + len(fetched), "processing")
        for f in healing.rederive:  # quarantined: derived again under the id it had
            summary.releases.append(_process(f, data_dir, settings,
                                             pub.published_releases(data_dir)))
            reporter().advance()
        for f in fetched:  # identified one by one: each publish changes what the next one is
            published = pub.published_releases(data_dir)
            known = identity.identify(f, published)
            if known.verdict == "new":
                outcome = _process(known.file, data_dir, settings, published)
            else:
                outcome = ReleaseOutcome(known.file.release_id or "?", known.verdict,
                                         source_url=f.source_url, sha256=f.sha256,
                                         message=known.reason)
            summary.releases.append(outcome)
            if outcome.status != "unchanged":
                logger.log(40 if outcome.status == "failed" else 20, "%s %s%s",
                           outcome.release_id, outcome.status,
                           f": {outcome.message}" if outcome.message else "")
            reporter().advance()
        published_now = [r.release_id for r in summary.releases if r.status == "published"]
        if published_now or ((always_rebuild or not database_is_current(data_dir))
                             and pub.published_releases(data_dir)):
            _rebuild(data_dir, summary, published_now)
    summary.releases.sort(key=lambda r: (r.release_id == "?", r.release_id))
    summary.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
    summary.seconds = round(time.monotonic() - started, 2)
    summary.save(data_dir)
    for line in summary.lines():
        logger.info(line)
    create_markdown_artifact(summary.markdown(), key=f"hcpcs-{flow_name}",
                             description=f"HCPCS {flow_name}: {summary.verdict}")
    return summary


@flow(name="hcpcs-refresh", log_prints=True)
def refresh(source: str | None = "demo", data_dir: str = "data",
            settings: Settings | None = None) -> dict:
    """Fetch what is new at ``source``, validate and publish it, then rebuild history once.

    ``settings`` default to ``Settings.from_env()`` at the start of the run. ``source=None``
    fetches nothing: it heals the data directory (quarantined releases derived again from the raw
    store) and rebuilds what that needs.
    """
    return run_pipeline("refresh", source, Path(data_dir), always_rebuild=False,
                        settings=settings).to_dict()


@flow(name="hcpcs-backfill", log_prints=True)
def backfill(source: str = "cms", data_dir: str = "data", first: str | None = None,
             last: str | None = None, settings: Settings | None = None) -> dict:
    """Every release of a catalog (optionally ``first``..``last``), then a full history rebuild.

    Loading releases in any order gives the same database: history is rebuilt from all of them.
    """
    span = (first or "1900-Q1", last or "9999-Q4") if first or last else None
    return run_pipeline("backfill", source, Path(data_dir), always_rebuild=True,
                        settings=settings, releases=span).to_dict()
