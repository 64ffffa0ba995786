"""What the validation gate found, as plain data: the contract between the gate and what reads it.

``expectations.gate`` produces a ``GateResult``; ``warehouse.publish`` writes ``to_dict()`` as
``validation.json`` and ``findings()`` as ``findings.parquet``; the flows and the command line
print ``summary_text()``. No Great Expectations import here: reading a result must stay cheap.

The finding policy: a failed check of scope ``release`` with severity ``error`` (no codes,
duplicate codes, a collapse in code count, mass disappearance, unparseable lines) blocks
publishing unless an operator waived that rule for that exact file (``Waiver``). A failed check of
scope ``record`` (a value outside its domain, an impossible date, a shifted field) never blocks an
authoritative release: each failing code, field and raw value is kept as a finding.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from contracts.settings import GateSettings


@dataclass(frozen=True)
class Sample:
    """One failing value: which code, which field, what value (``code`` is None for a
    release-level finding such as the code count)."""

    code: str | None
    field: str
    value: str


Scope = Literal["release", "record"]


@dataclass(frozen=True)
class Waiver:
    """An operator's decision to publish one file despite one release-level rule: who, when, why.

    It names the file by sha256, so it never applies to another file of the same release.
    """

    release_id: str
    rule: str
    sha256: str
    reason: str
    accepted_by: str
    accepted_at: str

    def covers(self, release_id: str | None, sha256: str, rule: str) -> bool:
        return (self.release_id, self.sha256, self.rule) == (release_id, sha256, rule)


@dataclass(frozen=True)
class ExpectationOutcome:
    """What one expectation found. ``unexpected_count`` counts failing codes (None for the
    table-level counts, whose ``observed`` says what was seen). ``samples`` name the first few
    failing codes; ``failures`` all of them (kept as findings, not in ``validation.json``)."""

    name: str
    severity: str
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None
    element_count: int | None
    observed: str | None
    samples: tuple[Sample, ...]
    description: str
    scope: Scope = "record"
    waived: bool = False
    failures: tuple[Sample, ...] = field(default=(), repr=False, compare=False)

    @property
    def blocks(self) -> bool:
        """A failed, unwaived release-level error: the release is not published."""
        return not self.success and self.severity == "error" and self.scope == "release" and (
            not self.waived)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["samples"] = [asdict(s) for s in self.samples]
        del out["failures"]
        return out


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict on one release: ``passed`` means no release-level error is left
    unwaived (record-level findings never stop a release).

    ``outcomes`` has one entry per expectation in suite order; ``gx_results`` keeps GX's own
    validation results (one per batch) for ``build_data_docs`` and is left out of ``to_dict``.
    """

    release_id: str | None
    code_count: int
    previous_count: int | None
    settings: GateSettings
    outcomes: tuple[ExpectationOutcome, ...]
    gx_results: tuple[Any, ...] = field(default=(), repr=False, compare=False)
    waivers: tuple[Waiver, ...] = ()

    @property
    def errors(self) -> list[ExpectationOutcome]:
        """Failed expectations with severity error (of either scope)."""
        return [o for o in self.outcomes if not o.success and o.severity == "error"]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        """Failed expectations with severity warning: recorded and published with the data."""
        return [o for o in self.outcomes if not o.success and o.severity == "warning"]

    @property
    def blocking(self) -> list[ExpectationOutcome]:
        """Failed, unwaived release-level errors: any one stops publishing."""
        return [o for o in self.outcomes if o.blocks]

    @property
    def passed(self) -> bool:
        return not self.blocking

    def findings(self) -> list[tuple[str, str, str, str, str]]:
        """(rule, severity, code, field, raw value) of every failing code of every record-level
        check, in suite order: what ``findings.parquet`` holds."""
        return [(o.name, o.severity, s.code or "", s.field, s.value)
                for o in self.outcomes if o.scope == "record" and not o.success
                for s in o.failures]

    def with_waivers(self, waivers: list[Waiver], sha256: str) -> GateResult:
        """The same verdict with the release-level rules that ``waivers`` cover for the file
        ``sha256`` marked waived; waivers for another file or release change nothing."""
        used = [w for w in waivers if any(
            w.covers(self.release_id, sha256, o.name) for o in self.outcomes if not o.success)]
        names = {w.rule for w in used}
        outcomes = tuple(replace(o, waived=o.name in names and not o.success)
                         for o in self.outcomes)
        return replace(self, outcomes=outcomes, waivers=tuple(used))

    def outcome(self, name: str) -> ExpectationOutcome:
        """The outcome of the expectation called ``name``."""
        return next(o for o in self.outcomes if o.name == name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able and deterministic (no timestamps): the content of ``validation.json``."""
        return {
            "release_id": self.release_id,
            "passed": self.passed,
            "blocking_count": len(self.blocking),
            "error_count": len(self.errors),
            "warning_count": len(self.warnings),
            "waivers": [asdict(w) for w in self.waivers],
            "code_count": self.code_count,
            "previous_code_count": self.previous_count,
            "expectation_count": len(self.outcomes),
            "settings": asdict(self.settings),
            "results": [o.to_dict() for o in self.outcomes],
        }

    def summary_text(self, *, all_rows: bool = False) -> str:
        """A readable table: rule, severity, count, sample codes (field=value).

        Lists every expectation that failed or found something under its threshold
        (``all_rows`` lists passing ones too), errors first.
        """
        verdict = "PASSED" if self.passed else "FAILED"
        head = (
            f"Validation gate {self.release_id or '(release)'}: {verdict} - "
            f"{len(self.blocking)} blocking, {len(self.errors)} errors, "
            f"{len(self.warnings)} warnings; "
            f"{len(self.outcomes)} expectations on {self.code_count:,} codes"
        )
        if self.previous_count is not None:
            head += f" (previous release: {self.previous_count:,})"
        order = {"error": 0, "warning": 1}
        shown = sorted(
            (o for o in self.outcomes if all_rows or not o.success or o.unexpected_count),
            key=lambda o: (o.success, not o.blocks, order.get(o.severity, 2)),
        )
        rows = [("rule", "severity", "result", "count", "sample codes")]
        for o in shown:
            count = o.observed if o.unexpected_count is None else f"{o.unexpected_count:,}"
            samples = "; ".join(_sample_text(s) for s in o.samples[:3])
            more = len(o.samples) > 3 or (o.unexpected_count or 0) > len(o.samples)
            result = "pass" if o.success else (
                "BLOCK" if o.blocks else "waived" if o.waived else "finding")
            rows.append((o.name, o.severity, result, count or "",
                         samples + (" ..." if more else "")))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [head, ""]
        for r in rows:
            cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].ljust(widths[2]),
                     r[3].rjust(widths[3]), r[4]]
            lines.append("  ".join(cells).rstrip())
        hidden = len(self.outcomes) - len(shown)
        if hidden:
            lines.append(f"({hidden} other expectations passed with nothing to report)")
        return "\n".join(lines)


#: How samples show a value that is blank in the file (a missing required field).
BLANK = "(blank)"


def _sample_text(s: Sample) -> str:
    return f"{s.field}={s.value}" if s.code is None else f"{s.code} {s.field}={s.value}"
