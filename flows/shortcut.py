"""Answer "anything new?" without starting Prefect, when the answer needs no network.

Starting Prefect's local server costs 10-20 s here, more than a whole demo refresh. When the
source is a local kind (``sources.registry``: demo, a folder, a file, a local catalog) whose every
file is on disk and already published with the same sha256, and the data directory checks out
(``warehouse.doctor``: otherwise the flow heals it), ``hcpcs run`` can say "nothing new"
at once: the flow would only have confirmed it (files superseded by a published newer revision
count as nothing new too, as in the flow). Any other case (a URL, an unknown or changed file,
no database) runs the flow.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from contracts.paths import DataDir
from flows.summary import ReleaseOutcome, RunSummary
from sources.catalog import local_path
from sources.rawstore import RawStore, sha256_file
from sources.registry import source_kind
from warehouse import publish as pub
from warehouse.doctor import check
from warehouse.history import database_is_current
from warehouse.identity import identify


def nothing_new(source: str, data_dir: Path) -> RunSummary | None:
    """The no-op run's summary if the source is local and entirely published; else None."""
    paths = DataDir(data_dir)
    if not database_is_current(paths.root) or check(paths.root):
        return None  # the flow heals the data directory first
    started, clock = datetime.now(UTC).isoformat(timespec="seconds"), time.monotonic()
    try:
        kind = source_kind(source)
        if not kind.local:
            return None
        files = [local_path(e.source_url) for e in kind.resolve(source, paths)]
    except Exception:  # let the flow report it properly
        return None
    if not files or not all(f is not None and f.is_file() for f in files):
        return None
    stored = {z.sha256: z for z in RawStore(paths.raw).list()}
    published = pub.published_releases(paths.root)
    outcomes = []
    for path in files:
        z = stored.get(sha256_file(path))
        known = identify(z, published) if z is not None else None
        if known is None or known.verdict == "new":
            return None
        outcomes.append(ReleaseOutcome(known.file.release_id or "?", known.verdict,
                                       source_url=str(path), sha256=z.sha256,
                                       message=known.reason))
    summary = RunSummary("refresh", source, str(paths.root), started,
                         finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
                         releases=sorted(outcomes, key=lambda r: r.release_id),
                         database=str(paths.database),
                         seconds=round(time.monotonic() - clock, 2))
    summary.save(paths.root)
    return summary
