"""Publish one release as immutable Parquet plus a manifest, written aside and renamed into place.

Layout: ``<data_dir>/parquet/releases/release=<id>/{codes.parquet, rejects.parquet,
findings.parquet, repairs.parquet, reconciliation.parquet, transactions.parquet, validation.json,
manifest.json}`` (paths in ``contracts.paths``; the manifest is ``contracts.release.Manifest``).
Every Parquet file follows the Parquet contract (``warehouse.contract``): its ``release_id`` first,
then the frame's columns, each with its description (``PUBLISHED``).
Findings are the gate's record-level findings, one row per code, field and raw value; repairs the
entries of ``transforms/repairs.csv`` for the release (applied or not); reconciliation every
difference between the TXT and CMS's xlsx copy in the same ZIP (empty when there was no xlsx);
transactions CMS's transaction report, one row per code with its announced action (empty when the
release has none, or it could not be read: the manifest names the report and the error).

A published directory is never modified: re-publishing the same raw file (same sha256) is a
no-op, a different file for the same id is refused (a CMS re-issue gets its own revision id,
``2026-Q1r2``, and supersedes the earlier one without deleting it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import polars as pl
import pyarrow as pa

from contracts.errors import TerminalError
from contracts.files import atomic_write_bytes, fsync_path, readable_mode, write_parquet
from contracts.layout import CODES_SCHEMA, REJECTS_SCHEMA, column_descriptions
from contracts.paths import MANIFEST, DataDir
from contracts.release import (
    FileEntry,
    Manifest,
    ReleaseFile,
    ReleaseIdError,
    quarter_of,
    release_sort_key,
)
from contracts.validation import GateResult
from sources.rawstore import sha256_file
from transforms.reconcile import RECONCILIATION_SCHEMA
from transforms.repairs import REPAIRS_SCHEMA
from transforms.transaction_report import SCHEMA as TRANSACTIONS_SCHEMA
from transforms.transaction_report import TransactionReport
from warehouse import contract
from warehouse.doctor import read_published
from warehouse.lock import publish_lock

#: 3: every Parquet file follows the Parquet contract (``warehouse.contract``): its release_id as
#: the first column, plain string and list types, 32/64-bit integers (anesthesia_base_units
#: int32), a description per column and the table's in the schema metadata. 2: repeating groups
#: as CMS wrote them (no trailing NULL padding). 1: padded to the layout's maximum. Readers take
#: all three (``database.load_base``, ``load_codes``: the file name says the release).
SCHEMA_VERSION = 3

FINDINGS_SCHEMA: dict[str, pl.DataType] = {
    "rule": pl.String(), "severity": pl.String(), "code": pl.String(), "field": pl.String(),
    "raw_value": pl.String(),
}

FINDING_COLUMNS: dict[str, str] = {
    "release_id": "Release the finding is in.",
    "rule": "The gate's check that found it (see validation_results and docs/validation.md).",
    "severity": "error (the value is wrong) or warning (a rule CMS's own releases break).",
    "code": "The code it concerns.",
    "field": "The field it concerns.",
    "raw_value": "The value as the file has it (before any repair).",
}
REPAIR_COLUMNS: dict[str, str] = {
    "release_id": "Release repaired.",
    "code": "The code repaired.",
    "field": "The field repaired.",
    "raw_value": "The value CMS wrote (as text).",
    "repaired_value": "The value CMS meant (as text), now in codes.",
    "evidence": "Where the repaired value comes from (CMS's corrections).",
    "found_value": "What the file held (as text); the repair applies only when it is raw_value.",
    "applied": "The repair was applied.",
}
RECONCILIATION_COLUMNS: dict[str, str] = {
    "release_id": "Release compared.",
    "code": "The code that differs.",
    "field": "The field (with [n] for an occurrence of a repeating group).",
    "txt_value": "The value in the fixed-width TXT (the source of record), as text.",
    "xlsx_value": "The value in CMS's xlsx copy, as text.",
    "difference": "Class of the difference (see docs/format.md).",
}
TRANSACTION_COLUMNS: dict[str, str] = {
    "release_id": "Release whose report it is.",
    "code": "The code (modifiers stripped of CMS's right-justifying blanks).",
    "action": "The action code letter the report's wording maps to (lookup_action_code).",
    "change_text": "The report's own wording of the change.",
    "line": "Line (text reports) or worksheet row (xlsx) of the entry in the report.",
}
REJECT_COLUMNS: dict[str, str] = {
    "release_id": "Release whose data file the line is in.",
    "line": "1-based line number in the data file.",
    "code": "The code the line starts with, as written (may be blank or malformed).",
    "reason": "Why the parser rejected the line.",
    "text": "The line as read, so nothing is lost.",
}


@dataclass(frozen=True)
class PublishedTable:
    """One Parquet file of every published release: the frame it is written from, what the
    table holds and what each column of the file means (``release_id`` first)."""

    schema: dict[str, pl.DataType]
    comment: str
    columns: dict[str, str]

    def arrow_schema(self, name: str) -> pa.Schema:
        """The file's Parquet contract schema (release_id, then the frame's columns)."""
        types = {"release_id": "VARCHAR"} | {c: contract.sql_type(t)
                                             for c, t in self.schema.items()}
        return contract.schema(name, {c: (t, self.columns.get(c)) for c, t in types.items()},
                               self.comment)


#: Table -> its published file (``<table>.parquet`` in every release folder).
PUBLISHED: dict[str, PublishedTable] = {
    "codes": PublishedTable(
        CODES_SCHEMA,
        "Every code of every published release (all revisions): one row per code per release, "
        "every field of the CMS record, repeating groups as positional lists.",
        {"release_id": "Release the row was published in.", **column_descriptions()}),
    "rejects": PublishedTable(
        REJECTS_SCHEMA,
        "Lines of a release's data file the parser rejected (not a record it could read), "
        "each with the reason and its text.", REJECT_COLUMNS),
    "findings": PublishedTable(
        FINDINGS_SCHEMA,
        "The gate's record-level findings: one row per release, rule, code, field and raw "
        "value. They never block a release; exclude flagged codes with code_flags.",
        FINDING_COLUMNS),
    "repairs": PublishedTable(
        REPAIRS_SCHEMA,
        "Entries of transforms/repairs.csv (known CMS defects) for each release: the raw value "
        "CMS wrote, the value it meant, the evidence, and whether the file still held the raw "
        "value (applied). Published codes carry the repaired value.", REPAIR_COLUMNS),
    "reconciliation": PublishedTable(
        RECONCILIATION_SCHEMA,
        "Every difference between a release's TXT (the source of record) and CMS's xlsx copy "
        "in the same ZIP, classified.", RECONCILIATION_COLUMNS),
    "transactions": PublishedTable(
        TRANSACTIONS_SCHEMA,
        "CMS's transaction report of each release that ships one: one row per code with the "
        "action CMS announced, as the report words it (see action_reconciliation).",
        TRANSACTION_COLUMNS),
}
#: The published tables the database loads besides codes (rejects stay in the Parquet).
EXTRA_TABLES: tuple[str, ...] = ("findings", "repairs", "reconciliation", "transactions")


class PublishError(TerminalError, ValueError):
    """The release cannot be published as given (bad id, wrong schema, conflicting re-publish)."""


@dataclass(frozen=True)
class PublishResult:
    release_id: str
    path: Path
    status: str  # "published" | "unchanged"


def release_key(release_id: str) -> tuple[int, int, int]:
    """Sort key (year, quarter, revision); a malformed id is a ``PublishError``."""
    try:
        return release_sort_key(release_id)
    except ReleaseIdError as exc:
        raise PublishError(str(exc)) from None


def schema_fingerprint() -> str:
    """sha256 of the codes and rejects schemas: changes whenever a column or type changes."""
    text = json.dumps(
        {"codes": {k: str(v) for k, v in CODES_SCHEMA.items()},
         "rejects": {k: str(v) for k, v in REJECTS_SCHEMA.items()}},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def pipeline_version() -> str:
    try:
        return version("hcpcs-pipeline")
    except PackageNotFoundError:
        return "0+unknown"


def _check_frame(name: str, frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> None:
    got = dict(frame.schema)
    if got != schema:
        missing = [c for c in schema if c not in got]
        extra = [c for c in got if c not in schema]
        wrong = [
            f"{c}: {got[c]} (expected {t})" for c, t in schema.items() if c in got and got[c] != t
        ]
        raise PublishError(
            f"{name} frame does not match the published schema: missing {missing}, "
            f"unexpected {extra}, wrong types {wrong}"
        )


def _manifest(release_id: str, tmp: Path, tables: dict[str, pl.DataFrame],
              file: ReleaseFile, validation: GateResult, content_sha256: str | None,
              report: TransactionReport | None) -> Manifest:
    codes, rejects = tables["codes"], tables["rejects"]
    files = {}
    rows_of = {f"{name}.parquet": frame.height for name, frame in tables.items()}
    for name, rows in (*rows_of.items(), ("validation.json", None)):
        path = tmp / name
        files[name] = FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size, rows=rows)
    kinds = codes.group_by("kind").len()
    by_kind = dict(zip(kinds["kind"].to_list(), kinds["len"].to_list(), strict=True))
    return Manifest(
        release_id=release_id,
        quarter=quarter_of(release_id),
        revision=release_key(release_id)[2],
        source_url=file.source_url or None,
        raw_sha256=file.sha256,
        member_name=file.member_name or None,
        fetched_at=file.fetched_at or None,
        counts={
            "codes": codes.height,
            "procedures": by_kind.get("procedure", 0),
            "modifiers": by_kind.get("modifier", 0),
            "rejects": rejects.height,
            "findings": tables["findings"].height,
            "repairs": int(tables["repairs"]["applied"].sum()),
            "differences": tables["reconciliation"].height,
            "transactions": tables["transactions"].height,
            "vanished": next((o.unexpected_count or 0 for o in validation.outcomes
                              if o.name == "vanished_without_termination"), 0),
        },
        schema_version=SCHEMA_VERSION,
        schema_fingerprint=schema_fingerprint(),
        pipeline_version=pipeline_version(),
        files=files,
        content_sha256=content_sha256,
        transaction_report=report.name if report else None,
        transaction_report_error=report.error if report else None,
    )


def _sweep_leftovers(parent: Path) -> None:
    """Remove aside directories of publishers that died (safe: we hold the lock)."""
    for stale in parent.glob(".release=*.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def read_manifest(path: Path) -> Manifest:
    """The manifest of the release folder ``path``; a broken one is an error naming the file."""
    where = path / MANIFEST
    return Manifest.from_json(where.read_bytes(), str(where))


def publish_release(
    data_dir: Path,
    *,
    file: ReleaseFile,
    codes: pl.DataFrame,
    rejects: pl.DataFrame,
    validation: GateResult,
    repairs: pl.DataFrame | None = None,
    reconciliation: pl.DataFrame | None = None,
    content_sha256: str | None = None,
    transactions: TransactionReport | None = None,
) -> PublishResult:
    """Write the release aside, then rename it into place; the same raw file twice is a no-op.

    ``file`` is the stored release file (its ``release_id`` is the id published under, its
    ``sha256`` the content identity); ``validation`` is the gate's verdict, kept as
    ``validation.json`` and (its record-level findings) ``findings.parquet``. ``codes`` are
    published as given: repaired, when ``repairs`` says so. ``content_sha256`` is the parsed
    content's identity (``warehouse.identity``), kept in the manifest so the same content is never
    published twice. ``transactions`` is CMS's transaction report as read (its rows, file name and
    any error, kept in the manifest); None: the release has none.
    """
    release_id = file.release_id or ""
    release_key(release_id)
    if not file.sha256:
        raise PublishError(f"{release_id}: the release file has no raw sha256")
    findings = pl.DataFrame(validation.findings(), schema=FINDINGS_SCHEMA, orient="row")
    given = {"codes": codes, "rejects": rejects, "findings": findings, "repairs": repairs,
             "reconciliation": reconciliation,
             "transactions": transactions.frame if transactions else None}
    tables = {name: pl.DataFrame(schema=t.schema) if given[name] is None else given[name]
              for name, t in PUBLISHED.items()}
    for name, t in PUBLISHED.items():
        _check_frame(name, tables[name], t.schema)
    final = DataDir(data_dir).release(release_id)
    with publish_lock(data_dir):
        if (final / MANIFEST).exists():
            existing = read_manifest(final)
            if existing.raw_sha256 == file.sha256:
                return PublishResult(release_id, final, "unchanged")
            raise PublishError(
                f"{release_id} is already published from raw sha256 {existing.raw_sha256}; "
                f"refusing to overwrite it with {file.sha256}. Publish a re-issue under "
                f"its own revision id (e.g. {quarter_of(release_id)}r2)"
            )
        final.parent.mkdir(parents=True, exist_ok=True)
        _sweep_leftovers(final.parent)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".release={release_id}.tmp-"))
        try:
            readable_mode(tmp)
            for name, frame in tables.items():
                target = PUBLISHED[name].arrow_schema(name)
                write_parquet(contract.frame_table(frame, target, release_id),
                              tmp / f"{name}.parquet")
            body = json.dumps(validation.to_dict(), sort_keys=True, indent=2, default=str)
            atomic_write_bytes(tmp / "validation.json", (body + "\n").encode())
            manifest = _manifest(release_id, tmp, tables, file, validation, content_sha256,
                                 transactions)
            atomic_write_bytes(tmp / MANIFEST, manifest.to_json())
            fsync_path(tmp)
            os.rename(tmp, final)
            fsync_path(final.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return PublishResult(release_id, final, "published")


def published_releases(data_dir: Path) -> list[Manifest]:
    """Manifests of every published release, in release order (year, quarter, revision)."""
    root = DataDir(data_dir).releases
    manifests = [read_manifest(d) for d in root.glob("release=*") if (d / MANIFEST).exists()]
    return sorted(manifests, key=lambda m: release_key(m.release_id))


def effective_release_ids(manifests: list[Manifest]) -> list[str]:
    """Release ids that count for history and "current": the latest revision of each quarter."""
    latest: dict[str, str] = {}
    for m in sorted(manifests, key=lambda m: release_key(m.release_id)):
        latest[quarter_of(m.release_id)] = m.release_id
    return list(latest.values())


def previous_release(data_dir: Path, release_id: str) -> str | None:
    """The latest published release ordered before ``release_id`` (any revision), or None."""
    key = release_key(release_id)
    earlier = [m.release_id for m in published_releases(data_dir)
               if release_key(m.release_id) < key]
    return earlier[-1] if earlier else None


def load_codes(data_dir: Path, release_id: str) -> pl.DataFrame:
    """A published release's codes as the parser gives them (``CODES_SCHEMA``), whatever schema
    version the file was written with (from 3 it also holds its release_id, widened integers)."""
    path = DataDir(data_dir).release(release_id) / "codes.parquet"
    if not path.exists():
        raise PublishError(f"release {release_id} is not published under {path.parent}")
    return read_published(path).select(pl.col(c).cast(t) for c, t in CODES_SCHEMA.items())
