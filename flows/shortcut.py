"""Answer "anything new?" without starting Prefect, when the answer needs no network.

Starting Prefect's local server costs 10-20 s here, more than a whole demo refresh. When every
release file of the source is on local disk (demo, a folder, a file) and every one is already
published with the same sha256, ``hcpcs run`` can say "nothing new" at once: the flow would only
have confirmed it. Any other case (a URL, an unknown or changed file, no database) runs the flow.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from flows.summary import ReleaseOutcome, RunSummary
from sources.catalog import resolve_source
from sources.fetch import local_path
from sources.rawstore import RawStore, sha256_file
from warehouse import publish as pub
from warehouse.history import DB_NAME, database_is_current


def nothing_new(source: str, data_dir: Path) -> RunSummary | None:
    """The no-op run's summary if the source is local and entirely published; else None."""
    data_dir = Path(data_dir)
    if not database_is_current(data_dir):
        return None
    started, clock = datetime.now(UTC).isoformat(timespec="seconds"), time.monotonic()
    try:
        entries = resolve_source(source, demo_dir=data_dir / "sources" / "demo")
        paths = [local_path(e.url) for e in entries]
    except Exception:  # let the flow report it properly
        return None
    files = [p for p in paths if p is not None and p.is_file()]
    if not files or len(files) != len(paths):
        return None
    stored = {z.sha256: z for z in RawStore(data_dir / "raw").list()}
    outcomes = []
    for path in files:
        z = stored.get(sha256_file(path))
        if z is None or not pub.is_published(data_dir, z.release_id, z.sha256):
            return None
        outcomes.append(ReleaseOutcome(z.release_id, "unchanged", source_url=str(path),
                                       sha256=z.sha256))
    summary = RunSummary("refresh", source, str(data_dir), started,
                         finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
                         releases=sorted(outcomes, key=lambda r: r.release_id),
                         database=str(data_dir / DB_NAME),
                         seconds=round(time.monotonic() - clock, 2))
    summary.save(data_dir)
    return summary
