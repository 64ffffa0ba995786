"""The Prefect flows: ``refresh`` (the scheduled job) and ``backfill`` (a whole catalog).

Both run ``flows.pipeline.run_pipeline`` tracked: each step of ``flows.steps`` is a Prefect task
of the flow run (named as ``STEPS`` says), the log goes to Prefect, and the run's summary is a
markdown artifact. The command line runs the same body locally when no Prefect API is configured
(``flows.pipeline.LocalRuntime``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from contracts.settings import Settings
from flows.pipeline import run_named
from flows.runtime import F, Outcome
from flows.steps import STEPS
from flows.summary import RunSummary

#: Each step as its Prefect task (no retries, no cache: see ``flows.steps``).
TASKS: dict[Callable[..., Any], Any] = {
    fn: task(name=name, task_run_name=run_name, cache_policy=NO_CACHE)(fn)
    for fn, (name, run_name) in STEPS.items()
}


class TrackedRuntime:
    """Steps as Prefect tasks of the current flow run; its logger; its summary as an artifact."""

    def __init__(self, flow_name: str) -> None:
        self.flow_name = flow_name
        self.log = get_run_logger()
        self.run_id = str(flow_run.get_id() or "")

    def call(self, step: F) -> F:
        return TASKS[step]

    def submit(self, step: Callable[..., Any], *args: Any) -> Outcome:
        return TASKS[step].submit(*args)  # on the flow's thread pool task runner

    def report(self, summary: RunSummary) -> None:
        create_markdown_artifact(summary.markdown(), key=f"hcpcs-{self.flow_name}",
                                 description=f"HCPCS {self.flow_name}: {summary.verdict}")
        if summary.report:
            create_link_artifact(Path(summary.report).as_uri(), link_text="HCPCS release report",
                                 key="hcpcs-report", description="The release report this run "
                                 "wrote (a static site: open it in a browser).")


@flow(name="hcpcs-refresh", log_prints=True)
def refresh(source: str | None = "demo", data_dir: str = "data",
            settings: Settings | None = None) -> dict:
    """Fetch what is new at ``source``, validate and publish it, then rebuild history once.

    ``settings`` default to ``Settings.from_env()`` at the start of the run. ``source=None``
    fetches nothing: it heals the data directory (quarantined releases derived again from the raw
    store) and rebuilds what that needs.
    """
    return run_named(TrackedRuntime("refresh"), "refresh", source, Path(data_dir),
                     settings).to_dict()


@flow(name="hcpcs-backfill", log_prints=True)
def backfill(source: str = "cms", data_dir: str = "data", first: str | None = None,
             last: str | None = None, settings: Settings | None = None) -> dict:
    """Every release of a catalog (optionally ``first``..``last``), then a full history rebuild.

    Loading releases in any order gives the same database: history is rebuilt from all of them.
    """
    return run_named(TrackedRuntime("backfill"), "backfill", source, Path(data_dir), settings,
                     first, last).to_dict()
