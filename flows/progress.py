"""Progress of a run, reported to whoever watches: nobody by default, progress bars on a terminal.

The flows call the active reporter; the command line installs a Rich one. A module-level hook
rather than a flow parameter, because Prefect stores flow parameters and a live progress bar is not
data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID


class Reporter:
    """Silent reporter; subclasses draw something."""

    def releases(self, total: int, label: str) -> None:
        """A phase over ``total`` releases starts (fetching, then processing)."""

    def release(self, release: str, stage: str) -> None:
        """Work on ``release`` reached ``stage``."""

    def advance(self) -> None:
        """One release of the current phase is done."""

    def download(self, done: int, total: int | None) -> None:
        """Bytes of the current download so far (``total`` when the server announced it)."""

    def close(self) -> None:
        """The run is over."""


_active: Reporter = Reporter()


def reporter() -> Reporter:
    return _active


@contextmanager
def reporting(new: Reporter) -> Iterator[Reporter]:
    """Make ``new`` the active reporter for the duration of a run."""
    global _active
    previous, _active = _active, new
    try:
        yield new
    finally:
        new.close()
        _active = previous


class RichReporter(Reporter):
    """Two bars on stderr: releases of the current phase, and bytes of the current download."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description:<40}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console or Console(stderr=True),
            transient=True,
        )
        self._phase: TaskID | None = None
        self._bytes: TaskID | None = None
        self._label, self._done, self._total = "", 0, 0
        self._progress.start()

    def releases(self, total: int, label: str) -> None:
        if self._phase is not None:
            self._progress.remove_task(self._phase)
        self._label, self._done, self._total = label, 0, total
        self._phase = self._progress.add_task(label, total=total, detail=f"0/{total}")

    def release(self, release: str, stage: str) -> None:
        if self._phase is not None:
            self._progress.update(self._phase, description=f"{self._label}: {release} {stage}")
        if self._bytes is not None and stage != "downloading":
            self._progress.remove_task(self._bytes)
            self._bytes = None

    def advance(self) -> None:
        if self._phase is not None:
            self._done += 1
            self._progress.update(
                self._phase, completed=self._done, detail=f"{self._done}/{self._total}"
            )

    def download(self, done: int, total: int | None) -> None:
        mb = 1024 * 1024
        detail = f"{done / mb:.1f}/{total / mb:.1f} MB" if total else f"{done / mb:.1f} MB"
        if self._bytes is None:
            self._bytes = self._progress.add_task("  download", total=total, detail=detail)
        self._progress.update(self._bytes, completed=done, total=total, detail=detail)

    def close(self) -> None:
        self._progress.stop()
