"""Synthetic code frames in the exact published schema, for the warehouse tests and benchmark."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import polars as pl

from contracts.layout import CODES_SCHEMA, FIELDS, REJECTS_SCHEMA
from contracts.release import ReleaseFile
from contracts.settings import GateSettings
from contracts.validation import GateResult
from transforms.transaction_report import SCHEMA, TransactionReport
from warehouse.publish import PublishResult, publish_release

D = dt.date


def defaults(code: str) -> dict[str, Any]:
    """An active, unremarkable procedure code; tests override the fields they care about."""
    row: dict[str, Any] = {name: None for name in CODES_SCHEMA}
    for name, f in FIELDS.items():
        if name in CODES_SCHEMA and f.occurs > 1:
            row[name] = []  # repeating groups as CMS wrote them: no trailing blanks
    row.update(
        code=code, kind="modifier" if len(code) == 2 else "procedure",
        long_description=f"Long description of {code}", short_description=f"Short {code}",
        pricing_indicators=["00"], multiple_pricing_indicator="9",
        coverage_code="C", betos="Z2", types_of_service=["9"],
        anesthesia_base_units=0, added_date=D(2000, 1, 1), action_effective_date=D(2000, 1, 1),
        action_code="N", line_count=1, unparsed_values=[],
    )
    return row


def codes_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows (code + overrides) -> a frame with CODES_SCHEMA, sorted like CMS (modifiers first)."""
    full = [defaults(r["code"]) | r for r in rows]
    full.sort(key=lambda r: (r["kind"] != "modifier", r["code"]))
    for i, r in enumerate(full, 1):
        r["source_line"] = i
    return pl.DataFrame(full, schema=CODES_SCHEMA, orient="row")


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECTS_SCHEMA)


def no_findings(release_id: str | None, codes: pl.DataFrame) -> GateResult:
    """A gate verdict with nothing checked (synthetic releases are not validated here)."""
    return GateResult(release_id, codes.height, None, GateSettings(), outcomes=())


def transaction_report(actions: dict[str, str]) -> TransactionReport:
    """A transaction report announcing ``actions`` (code -> action letter), in code order."""
    rows = [(code, a, f"action {a}", line) for line, (code, a) in
            enumerate(sorted(actions.items()), 2)]
    return TransactionReport("synthetic_trans.txt", pl.DataFrame(rows, schema=SCHEMA, orient="row"))


def publish(data_dir: Path, release_id: str, codes: pl.DataFrame,
            report: dict[str, str] | None = None) -> PublishResult:
    """Publish a synthetic release (with a transaction report announcing ``report``, code ->
    action, when given); its "raw sha256" is derived from the codes' content."""
    digest = hashlib.sha256(codes.hash_rows().to_numpy().tobytes()).hexdigest()
    file = ReleaseFile(release_id, f"synthetic://{release_id}", sha256=digest,
                       member_name=f"HCPC_{release_id}.txt",
                       fetched_at="2026-01-01T00:00:00+00:00")
    return publish_release(data_dir, file=file, codes=codes, rejects=empty_rejects(),
                           validation=no_findings(release_id, codes),
                           transactions=None if report is None else transaction_report(report))
