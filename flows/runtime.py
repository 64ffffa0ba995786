"""How the pipeline's steps run (``Runtime``): as plain calls in this process (``LocalRuntime``,
here) or as Prefect tasks of a flow run (``flows.refresh.TrackedRuntime``). The pipeline
(``flows.pipeline``) is written once against this protocol; nothing here imports Prefect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from flows.summary import RunSummary

F = TypeVar("F", bound=Callable[..., Any])

logging.getLogger("hcpcs").addHandler(logging.NullHandler())  # silent unless --verbose


class Outcome(Protocol):
    """A step started with ``Runtime.submit``: ``result()`` waits for it, raising its error."""

    def result(self) -> Any: ...


class Runtime(Protocol):
    """How the pipeline's steps run, where its log lines go and where its report is kept."""

    log: logging.Logger | logging.LoggerAdapter
    run_id: str

    def call(self, step: F) -> F:
        """``step`` (one of ``flows.steps.STEPS``) as this runtime runs it."""
        ...

    def submit(self, step: Callable[..., Any], *args: Any) -> Outcome:
        """Start ``step`` beside the work that follows (on another thread): for a step of Polars,
        Rust or DuckDB code, which leaves the interpreter to the step that holds it."""
        ...

    def report(self, summary: RunSummary) -> None:
        """Keep the run's summary where this runtime's users look (beside the run report)."""
        ...


@dataclass
class LocalRuntime:
    """Steps as plain calls in this process (submitted ones on ``pool``'s threads); log lines to
    the ``hcpcs`` logger (shown with ``--verbose``); the run report is the whole record."""

    pool: ThreadPoolExecutor
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("hcpcs.run"))
    run_id: str = ""

    def call(self, step: F) -> F:
        return step

    def submit(self, step: Callable[..., Any], *args: Any) -> Outcome:
        return self.pool.submit(step, *args)

    def report(self, summary: RunSummary) -> None:
        pass


def settle(*started: Outcome) -> None:
    """Wait for steps whose results are no longer wanted (a refused release's cross-check): a
    step still running must not outlive its release, nor its error go unread."""
    for outcome in started:
        with suppress(Exception):
            outcome.result()
