"""Operators' waivers: publish one refused file on purpose, on record (``data/waivers.json``).

``hcpcs accept RELEASE --rule RULE --reason TEXT`` adds one; the next run's gate marks that rule
waived for that release *and file* (its sha256) only, publishes it, and keeps the waiver beside the
release (``validation.json`` and the database's ``waivers`` table).
"""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from contracts.errors import TerminalError
from contracts.files import atomic_write_bytes
from contracts.paths import DataDir
from contracts.validation import Waiver
from warehouse.lock import publish_lock


class WaiverError(TerminalError, ValueError):
    """The waivers file cannot be read, or a waiver cannot be recorded as asked."""


def read_waivers(data_dir: Path) -> list[Waiver]:
    """Every waiver on record, oldest first (none when the file does not exist)."""
    path = DataDir(data_dir).waivers
    if not path.exists():
        return []
    try:
        return [Waiver(**entry) for entry in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError) as exc:
        raise WaiverError(
            f"{path}: not a readable waivers file ({exc}); correct it by hand (a JSON list of "
            "waivers as `hcpcs accept` writes them), or move it away to drop every waiver"
        ) from None


def add_waiver(data_dir: Path, *, release_id: str, rule: str, sha256: str, reason: str,
               accepted_by: str | None = None) -> Waiver:
    """Record a waiver (who: ``accepted_by`` or the login name; when: now, UTC)."""
    if not reason.strip():
        raise WaiverError("a waiver needs a reason (--reason)")
    waiver = Waiver(release_id, rule, sha256, reason.strip(), accepted_by or getpass.getuser(),
                    datetime.now(UTC).isoformat(timespec="seconds"))
    with publish_lock(data_dir):
        kept = [w for w in read_waivers(data_dir)
                if (w.release_id, w.rule, w.sha256) != (release_id, rule, sha256)]
        body = json.dumps([asdict(w) for w in [*kept, waiver]], indent=2) + "\n"
        atomic_write_bytes(DataDir(data_dir).waivers, body.encode())
    return waiver
