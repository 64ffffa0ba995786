"""Prefect tasks: each wraps one step of ``sources``, ``transforms``, ``expectations`` or
``warehouse`` and adds only what orchestration owns (retries, caching, names).

- Retries only where waiting can help: discovery and download, and only for network failures
  (``FetchError.transient``); a 404 or a file that is not a release fails at once. The download
  itself already retries each request with backoff; the task retry covers longer outages.
- Caching keyed on content: a parse is cached by the raw file's sha256 and the parser's own
  source, so re-running a release (e.g. after its validation failed) skips the parse.
- No caching of fetch, validate, publish or rebuild: they read or change state on disk.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

import transforms
from flows.progress import reporter
from sources.archive import read_release_file
from sources.catalog import CatalogEntry, resolve_source
from sources.fetch import FetchError, FetchResult, fetch
from sources.rawstore import RawStore
from transforms.fixed_width import ParseResult
from warehouse import publish as published
from warehouse.history import RebuildSummary, rebuild

# Seconds before the task-level retry of a download or discovery (the request-level retries of
# sources.fetch come first); an environment setting so tests need not wait.
RETRY_DELAY = float(os.environ.get("HCPCS_FETCH_RETRY_DELAY", "60"))


def _network_only(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a task only when it failed on a transient network error."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, FetchError) and exc.transient


def raw_store(data_dir: Path) -> RawStore:
    return RawStore(Path(data_dir) / "raw")


@task(name="discover", retries=1, retry_delay_seconds=RETRY_DELAY,
      retry_condition_fn=_network_only, cache_policy=NO_CACHE)
def discover_releases(source: str, data_dir: Path) -> list[CatalogEntry]:
    """What the source offers: the demo quarters, CMS's catalog, a folder, a file or a URL."""
    return resolve_source(source, demo_dir=Path(data_dir) / "sources" / "demo")


@task(name="fetch", task_run_name="fetch {entry.url}", retries=1,
      retry_delay_seconds=RETRY_DELAY, retry_condition_fn=_network_only, cache_policy=NO_CACHE)
def fetch_release(entry: CatalogEntry, data_dir: Path) -> FetchResult:
    """Download (or copy) one release into the raw store; the same bytes twice are a no-op."""
    return fetch(entry.url, raw_store(data_dir), release=entry.release,
                 progress=reporter().download)


def _code_fingerprint() -> str:
    """The parser's own source: a cached parse from other parser code is not reused."""
    digest = hashlib.sha256()
    for module in (transforms.fixed_width, transforms.layout):
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.hexdigest()[:16]


def _parse_key(context: Any, parameters: dict[str, Any]) -> str:
    return f"hcpcs-parse-{parameters['sha256']}-{_code_fingerprint()}"


@task(name="parse", task_run_name="parse {release_id}", cache_key_fn=_parse_key,
      persist_result=True)
def parse_release(release_id: str, raw_path: Path, sha256: str) -> ParseResult:
    """The fixed-width data member of a stored release, as codes and rejects frames."""
    return transforms.parse_anweb(read_release_file(Path(raw_path)).data)


@task(name="validate", task_run_name="validate {release_id}", cache_policy=NO_CACHE)
def validate_release(release_id: str, codes: pl.DataFrame, data_dir: Path) -> Any:
    """Run the gate against the release published before this one; write its Data Docs."""
    from expectations.docs import build_data_docs
    from expectations.gate import run_gate

    before = published.previous_release(Path(data_dir), release_id)
    previous = published.load_codes(Path(data_dir), before) if before else None
    result = run_gate(codes, previous=previous, release_id=release_id)
    build_data_docs(result, Path(data_dir) / "reports")
    return result


@task(name="publish", task_run_name="publish {release_id}", cache_policy=NO_CACHE)
def publish_release(release_id: str, parsed: ParseResult, validation: dict,
                    fetched: FetchResult, data_dir: Path) -> published.PublishResult:
    """Write the release's Parquet files and manifest aside, then rename them into place."""
    stored = raw_store(data_dir).find(fetched.sha256)
    provenance = {
        "source_url": fetched.source_url,
        "sha256": fetched.sha256,
        "member_name": fetched.member_name,
        "quarter": fetched.quarter,
        "fetched_at": stored.fetched_at if stored else "",
    }
    return published.publish_release(
        Path(data_dir), release_id=release_id, codes=parsed.codes, rejects=parsed.rejects,
        validation=validation, provenance=provenance,
    )


@task(name="rebuild-history", cache_policy=NO_CACHE)
def rebuild_history(data_dir: Path) -> RebuildSummary:
    """Rebuild hcpcs.duckdb and the history/changes Parquet from every published release."""
    return rebuild(Path(data_dir))
