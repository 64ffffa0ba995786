"""Prefect tasks: each wraps one step of ``sources``, ``transforms``, ``expectations`` or
``warehouse`` and adds only what orchestration owns (retries, caching, names).

- Retries only where waiting can help: discovery and download, and only for transient failures
  (``HcpcsError.transient``: timeouts, resets, 5xx, 429); a 404 or a file that is not a release
  fails at once. The download itself already retries each request with backoff; the task retry
  (after ``FetchSettings.retry_delay_seconds``, set per run with ``with_options``) covers longer
  outages.
- Caching keyed on content: a parse is cached by the raw file's sha256 and the parser's own
  source, so re-running a release (e.g. after its validation failed) skips the parse.
- No caching of fetch, validate, publish or rebuild: they read or change state on disk.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

import transforms
from contracts import layout
from contracts.errors import HcpcsError
from contracts.paths import DataDir
from contracts.release import ReleaseFile
from contracts.settings import FetchSettings, GateSettings
from contracts.validation import GateResult
from flows.progress import reporter
from sources.archive import read_release_file
from sources.fetch import fetch
from sources.rawstore import RawStore
from sources.registry import resolve_source
from transforms.fixed_width import ParseResult
from warehouse import publish as published
from warehouse.history import RebuildSummary, rebuild


def transient_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a task only when it failed on a transient error."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, HcpcsError) and exc.transient


@task(name="discover", retries=1, retry_condition_fn=transient_only, cache_policy=NO_CACHE)
def discover_releases(source: str, data_dir: Path) -> list[ReleaseFile]:
    """What the source offers: the demo quarters, CMS's catalog, a folder, a file or a URL."""
    return resolve_source(source, Path(data_dir))


@task(name="fetch", task_run_name="fetch {offered.source_url}", retries=1,
      retry_condition_fn=transient_only, cache_policy=NO_CACHE)
def fetch_release(offered: ReleaseFile, data_dir: Path, settings: FetchSettings) -> ReleaseFile:
    """Download (or copy) one release into the raw store; the same bytes twice are a no-op."""
    return fetch(offered.source_url, RawStore(DataDir(data_dir).raw),
                 release=offered.release_id, settings=settings, progress=reporter().download)


def _code_fingerprint() -> str:
    """The parser's own source: a cached parse from other parser code is not reused."""
    digest = hashlib.sha256()
    for module in (transforms.fixed_width, layout):
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.hexdigest()[:16]


def _parse_key(context: Any, parameters: dict[str, Any]) -> str:
    return f"hcpcs-parse-{parameters['file'].sha256}-{_code_fingerprint()}"


@task(name="parse", task_run_name="parse {file.release_id}", cache_key_fn=_parse_key,
      persist_result=True)
def parse_release(file: ReleaseFile) -> ParseResult:
    """The fixed-width data member of a stored release, as codes and rejects frames."""
    return transforms.parse_anweb(read_release_file(Path(file.path or "")).data)


@task(name="validate", task_run_name="validate {release_id}", cache_policy=NO_CACHE)
def validate_release(release_id: str, codes: pl.DataFrame, data_dir: Path,
                     settings: GateSettings) -> GateResult:
    """Run the gate against the release published before this one; write its Data Docs."""
    from expectations.docs import build_data_docs
    from expectations.gate import run_gate

    before = published.previous_release(Path(data_dir), release_id)
    previous = published.load_codes(Path(data_dir), before) if before else None
    result = run_gate(codes, previous=previous, release_id=release_id, settings=settings)
    build_data_docs(result, DataDir(data_dir).reports)
    return result


@task(name="publish", task_run_name="publish {file.release_id}", cache_policy=NO_CACHE)
def publish_release(file: ReleaseFile, parsed: ParseResult, validation: GateResult,
                    data_dir: Path) -> published.PublishResult:
    """Write the release's Parquet files and manifest aside, then rename them into place."""
    return published.publish_release(Path(data_dir), file=file, codes=parsed.codes,
                                     rejects=parsed.rejects, validation=validation)


@task(name="rebuild-history", cache_policy=NO_CACHE)
def rebuild_history(data_dir: Path) -> RebuildSummary:
    """Rebuild hcpcs.duckdb and the history/changes Parquet from every published release."""
    return rebuild(Path(data_dir))
