"""The pipeline's steps: each wraps one call into ``sources``, ``transforms``, ``expectations`` or
``warehouse``, with the arguments the flows have at hand. Plain functions: the flows
(``flows.pipeline``) call them directly in a local run, or as Prefect tasks of a tracked flow run
(``flows.refresh``), named after ``STEPS``. Nothing here imports Prefect.

- No retries around a step: a download retries each request itself (backoff, ``Retry-After``)
  within one wall-clock budget (``FetchSettings``), so a failing source costs that budget and no
  more; a retry of the whole step on top would multiply it.
- No cache: a parse takes 15-60 ms (a workbook 0.3 s), less than reading any stored copy of it
  back, and every other step reads or changes state on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

import transforms
from contracts.errors import HcpcsError
from contracts.paths import DataDir
from contracts.release import ReleaseFile
from contracts.settings import FetchSettings, GateSettings, LoadSettings
from contracts.validation import GateResult
from flows.progress import reporter
from flows.runtime import F
from sources.archive import read_cross_check, read_release_file
from sources.fetch import fetch
from sources.rawstore import RawStore
from sources.registry import resolve_source
from transforms.fixed_width import ParseResult
from transforms.reconcile import reconcile
from transforms.repairs import apply_repairs, read_repairs
from transforms.transaction_report import (
    TransactionReport,
    empty_frame,
    parse_transaction_report_file,
)
from warehouse import publish as published
from warehouse.doctor import Healing, heal
from warehouse.history import RebuildSummary, rebuild

if TYPE_CHECKING:
    from report.site import Report
    from warehouse.postgres import LoadResult
from warehouse.waivers import read_waivers

#: Every step -> (its task name, the name of each of its runs, from its parameters).
STEPS: dict[Callable, tuple[str, str]] = {}


def step(name: str, run_name: str | None = None) -> Callable[[F], F]:
    """Register a step under the name its Prefect task and task runs carry."""
    def register(fn: F) -> F:
        STEPS[fn] = (name, run_name or name)
        return fn
    return register


@step("discover")
def discover_releases(source: str, data_dir: Path) -> list[ReleaseFile]:
    """What the source offers: the demo quarters, CMS's catalog, a folder, a file or a URL."""
    return resolve_source(source, Path(data_dir))


@step("fetch", "fetch {offered.source_url}")
def fetch_release(offered: ReleaseFile, data_dir: Path, settings: FetchSettings) -> ReleaseFile:
    """Download (or copy) one release into the raw store; the same bytes twice are a no-op."""
    return fetch(offered.source_url, RawStore(DataDir(data_dir).raw),
                 release=offered.release_id, settings=settings, progress=reporter().download)


@step("parse", "parse {file.release_id}")
def parse_release(file: ReleaseFile) -> ParseResult:
    """The data member of a stored release (fixed-width TXT, else CMS's workbook), as codes and
    rejects frames."""
    path = Path(file.path or "")
    RawStore(path.parent.parent).verify(file)  # the bytes are still those of the sha256 published
    member = read_release_file(path)
    return transforms.parse_member(member.name, member.data)


@step("validate", "validate {file.release_id}")
def validate_release(file: ReleaseFile, parsed: ParseResult, data_dir: Path,
                     settings: GateSettings) -> GateResult:
    """Run the gate against the release published before this one, with the operators' waivers
    for this file."""
    from expectations.gate import run_gate  # Great Expectations: imported by the first validation

    release_id = file.release_id or ""
    before = published.previous_release(Path(data_dir), release_id)
    previous = published.load_codes(Path(data_dir), before) if before else None
    result = run_gate(parsed.codes, rejects=parsed.rejects, previous=previous,
                      release_id=release_id, previous_release_id=before, settings=settings)
    return result.with_waivers(read_waivers(Path(data_dir)), file.sha256)


@step("data-docs")
def render_data_docs(results: list[GateResult], data_dir: Path) -> Path:
    """GX Data Docs of the gate runs of the releases a run published, rendered in one pass."""
    from expectations.docs import build_data_docs

    return build_data_docs(results, DataDir(data_dir).reports)


@step("repair", "repair {release_id}")
def repair_release(release_id: str, codes: pl.DataFrame,
                   settings: GateSettings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The codes with the repairs table's entries for this release applied, and what applied."""
    return apply_repairs(codes, release_id, read_repairs(settings.repairs_table))


@step("reconcile", "reconcile {file.release_id}")
def reconcile_release(file: ReleaseFile, codes: pl.DataFrame) -> pl.DataFrame | None:
    """Every difference between the TXT and CMS's workbook in the same ZIP (None: no workbook)."""
    member = read_cross_check(Path(file.path or ""))
    if member is None:
        return None
    return reconcile(codes, transforms.parse_member(member.name, member.data).codes)


@step("transactions", "transactions {file.release_id}")
def read_transactions(file: ReleaseFile) -> TransactionReport:
    """CMS's transaction report of the release (its ZIP's, or the one the raw store keeps beside a
    bare data file), parsed. A report that cannot be read is returned with its error, never
    raised: the data file is the source of record, and the release publishes without it."""
    path = Path(file.path or "")
    name = None
    try:
        member = RawStore(path.parent.parent).transaction_report(file)
        if member is None:
            return TransactionReport(None, empty_frame())
        name = member.name
        return TransactionReport(name, parse_transaction_report_file(name, member.data))
    except HcpcsError as exc:  # names the file, the line or row, the value
        return TransactionReport(name, empty_frame(), str(exc))
    except Exception as exc:  # a reader's own failure on bytes it did not expect
        where = name or str(path)
        return TransactionReport(name, empty_frame(), f"{where}: {type(exc).__name__}: {exc}")


@step("publish", "publish {file.release_id}")
def publish_release(file: ReleaseFile, parsed: ParseResult, codes: pl.DataFrame,
                    validation: GateResult, repairs: pl.DataFrame,
                    reconciliation: pl.DataFrame | None, transactions: TransactionReport | None,
                    content_sha256: str, data_dir: Path) -> published.PublishResult:
    """Write the release's Parquet files and manifest aside, then rename them into place."""
    return published.publish_release(Path(data_dir), file=file, codes=codes,
                                     rejects=parsed.rejects, validation=validation,
                                     repairs=repairs, reconciliation=reconciliation,
                                     content_sha256=content_sha256, transactions=transactions)


@step("heal")
def heal_data_dir(data_dir: Path) -> Healing:
    """Check the data directory against its manifests, quarantine what is damaged, sweep what
    killed runs left; the raw files to derive the quarantined releases from again."""
    return heal(Path(data_dir))


@step("rebuild-history")
def rebuild_history(data_dir: Path) -> RebuildSummary:
    """Rebuild hcpcs.duckdb and the history/changes Parquet from every published release."""
    return rebuild(Path(data_dir))


@step("load", "load into {settings.target}")
def load_target(data_dir: Path, settings: LoadSettings) -> LoadResult:
    """Load the rebuilt database into the PostgreSQL target of the settings (new releases and
    changed tables only, in one transaction)."""
    from warehouse.postgres import load

    return load(Path(data_dir), settings.target, schema=settings.schema)


@step("report")
def write_report(data_dir: Path, latest_run: dict) -> Report:
    """Rewrite the release report (the static site in reports/site) from the rebuilt database;
    ``latest_run`` is this run's summary, shown as the latest run."""
    from report.site import build

    return build(Path(data_dir), latest_run=latest_run)
