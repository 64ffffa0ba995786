"""What a pipeline run did, release by release: the flow's return value, its Prefect artifact, its
log lines, ``data/reports/runs/*.json`` and what ``hcpcs status`` shows as the last run.

Plain data with no Prefect import, so the command line can read and print it instantly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Literal

from contracts.errors import TerminalError
from contracts.files import atomic_write_bytes
from contracts.paths import DataDir

#: published; unchanged (these bytes are published already); superseded (a newer revision of the
#: quarter is published); duplicate (the same content is published under another id); failed.
Status = Literal["published", "unchanged", "superseded", "duplicate", "failed"]

# Exit codes of `hcpcs run` / `hcpcs backfill`, so a script can tell the three outcomes apart.
EXIT_PUBLISHED = 0
EXIT_FAILED = 1
EXIT_NOTHING_NEW = 3


@dataclass
class ReleaseOutcome:
    """One release of the run: published, not published on purpose (unchanged, superseded,
    duplicate: ``message`` says why), or failed at a stage."""

    release_id: str
    status: Status
    source_url: str = ""
    sha256: str = ""
    stage: str = ""  # for failures: discover, fetch, parse, validate, publish
    message: str = ""
    codes: int = 0
    procedures: int = 0
    modifiers: int = 0
    rejects: int = 0
    refused_by: list[str] = field(default_factory=list)  # release-level rules that refused it
    errors: list[str] = field(default_factory=list)  # those rules' "rule: count (samples)"
    waived: list[str] = field(default_factory=list)  # release-level rules waived by an operator
    findings: list[str] = field(default_factory=list)  # "severity rule: count (samples)"
    repairs: int = 0  # values repaired from the repairs table
    differences: int = 0  # TXT vs xlsx differences


@dataclass
class RunSummary:
    flow: str
    source: str
    data_dir: str
    started_at: str
    flow_run_id: str = ""  # the Prefect flow run (empty when answered without Prefect)
    finished_at: str = ""
    seconds: float = 0.0
    releases: list[ReleaseOutcome] = field(default_factory=list)
    rebuilt: bool = False
    database: str = ""
    totals: dict[str, int] = field(default_factory=dict)  # releases, codes, versions, changes
    changes_by_type: dict[str, int] = field(default_factory=dict)  # in releases published now
    healed: list[str] = field(default_factory=list)  # what the data dir check found and did
    loaded: list[str] = field(default_factory=list)  # the load into the target (hcpcs load)
    report: str = ""  # the release report's index.html, when this run wrote it

    def count(self, status: Status) -> int:
        return sum(r.status == status for r in self.releases)

    @property
    def exit_code(self) -> int:
        if self.count("failed"):
            return EXIT_FAILED
        return EXIT_PUBLISHED if self.count("published") else EXIT_NOTHING_NEW

    @property
    def verdict(self) -> str:
        published, failed = self.count("published"), self.count("failed")
        if failed:
            return f"{failed} release(s) FAILED, {published} published"
        return f"{published} release(s) published" if published else "nothing new"

    def to_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict, "exit_code": self.exit_code}

    @classmethod
    def from_dict(cls, doc: dict) -> RunSummary:
        fields = {k: v for k, v in doc.items() if k not in ("verdict", "exit_code")}
        known = {f.name for f in dataclass_fields(ReleaseOutcome)}  # older reports: skip the rest
        fields["releases"] = [ReleaseOutcome(**{k: v for k, v in r.items() if k in known})
                              for r in doc.get("releases", [])]
        return cls(**fields)

    def lines(self) -> list[str]:
        """The run in a few plain lines (the log summary and the command line's closing words)."""
        out = [f"{self.flow} from {self.source}: {self.verdict} in {self.seconds:.1f} s"]
        out.extend(f"  data dir: {line}" for line in self.healed)
        for r in self.releases:
            if r.status == "failed":
                out.append(f"  {r.release_id:<10} FAILED at {r.stage}: {r.message}")
                out.extend(f"               refused by {e}" for e in r.errors)
                out.extend(f"               finding {w}" for w in r.findings)
            elif r.status == "published":
                out.append(
                    f"  {r.release_id:<10} published {r.codes:,} codes ({r.procedures:,} "
                    f"procedures, {r.modifiers:,} modifiers), {r.rejects:,} rejects, "
                    f"{len(r.findings)} finding rule(s), {r.repairs:,} repaired values, "
                    f"{r.differences:,} TXT/xlsx differences"
                )
                out.extend(f"               waived {w}" for w in r.waived)
                out.extend(f"               finding {w}" for w in r.findings)
            elif r.status == "unchanged":
                out.append(f"  {r.release_id:<10} unchanged (already published, same sha256)")
            else:
                out.append(f"  {r.release_id:<10} {r.status}: {r.message}")
        if self.changes_by_type:
            pairs = ", ".join(f"{k} {v:,}" for k, v in sorted(self.changes_by_type.items()))
            out.append(f"changes in the releases published now: {pairs}")
        if self.rebuilt:
            t = self.totals
            out.append(
                f"history rebuilt: {t.get('releases', 0)} releases, {t.get('codes', 0):,} code "
                f"rows, {t.get('versions', 0):,} versions, {t.get('changes', 0):,} changes "
                f"-> {self.database}"
            )
        out.extend(self.loaded)
        if self.report:
            out.append(f"report: {self.report}")
        return out

    def markdown(self) -> str:
        """The Prefect artifact: one table row per release, then the changes by type."""
        rows = [
            f"# HCPCS {self.flow}: {self.verdict}",
            "",
            f"Source `{self.source}`, data directory `{self.data_dir}`, {self.seconds:.1f} s.",
            "",
            "| release | status | codes | rejects | repairs | findings | refused by / note |",
            "|---|---|---:|---:|---:|---|---|",
        ]
        for r in self.releases:
            note = "; ".join([*r.errors, *(f"waived {w}" for w in r.waived)]) or r.message
            rows.append(
                f"| {r.release_id} | {r.status} | {r.codes:,} | {r.rejects:,} | {r.repairs:,} | "
                f"{'; '.join(r.findings) or '-'} | {note or '-'} |"
            )
        if self.changes_by_type:
            rows += ["", "| change type | count |", "|---|---:|"]
            rows += [f"| {k} | {v:,} |" for k, v in sorted(self.changes_by_type.items())]
        if self.loaded:
            rows += ["", *self.loaded]
        if self.report:
            rows += ["", f"Release report: [{self.report}]({Path(self.report).as_uri()})"]
        return "\n".join(rows) + "\n"

    def save(self, data_dir: Path) -> Path:
        """Write ``reports/runs/<start>-<flow>.json`` and ``reports/last_run.json`` atomically."""
        body = (json.dumps(self.to_dict(), indent=2) + "\n").encode()
        stamp = self.started_at.replace(":", "").replace("-", "")
        paths = DataDir(data_dir)
        path = paths.runs / f"{stamp}-{self.flow}.json"
        atomic_write_bytes(path, body)
        atomic_write_bytes(paths.last_run, body)
        return path


class RunReportError(TerminalError, ValueError):
    """The last run report cannot be read; the message names it (``hcpcs status`` says so and
    goes on: the next run writes a new one)."""


def last_run(data_dir: Path) -> RunSummary | None:
    """What the last run did (None: no run recorded); an unreadable report is a
    ``RunReportError`` naming the file."""
    path = DataDir(data_dir).last_run
    if not path.exists():
        return None
    try:
        return RunSummary.from_dict(json.loads(path.read_bytes()))
    except (ValueError, TypeError, AttributeError) as exc:
        raise RunReportError(
            f"{path}: unreadable run report ({exc}); the next `hcpcs run` writes a new one "
            f"(earlier reports are in {DataDir(data_dir).runs})"
        ) from None
