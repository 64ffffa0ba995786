"""What the validation gate found, as plain data: the contract between the gate and what reads it.

``expectations.gate`` produces a ``GateResult``; ``warehouse.publish`` writes ``to_dict()`` as
``validation.json``; the flows and the command line print ``summary_text()``. No Great
Expectations import here: reading a result must stay cheap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from contracts.settings import GateSettings


@dataclass(frozen=True)
class Sample:
    """One failing value: which code, which field, what value (``code`` is None for a
    release-level finding such as the code count)."""

    code: str | None
    field: str
    value: str


@dataclass(frozen=True)
class ExpectationOutcome:
    """What one expectation found. ``unexpected_count`` counts failing codes (None for the
    table-level code count check, whose ``observed`` says what was seen)."""

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

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["samples"] = [asdict(s) for s in self.samples]
        return out


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict on one release: ``passed`` means no error-severity expectation failed.

    ``outcomes`` has one entry per expectation in suite order; ``gx_results`` keeps GX's own
    validation results (one per batch) for ``build_data_docs`` and is left out of ``to_dict``.
    """

    release_id: str | None
    code_count: int
    previous_count: int | None
    settings: GateSettings
    outcomes: tuple[ExpectationOutcome, ...]
    gx_results: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    @property
    def errors(self) -> list[ExpectationOutcome]:
        """Failed expectations with severity error: any one stops publishing."""
        return [o for o in self.outcomes if not o.success and o.severity == "error"]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        """Failed expectations with severity warning: recorded and published with the data."""
        return [o for o in self.outcomes if not o.success and o.severity == "warning"]

    @property
    def passed(self) -> bool:
        return not self.errors

    def outcome(self, name: str) -> ExpectationOutcome:
        """The outcome of the expectation called ``name``."""
        return next(o for o in self.outcomes if o.name == name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able and deterministic (no timestamps): the content of ``validation.json``."""
        return {
            "release_id": self.release_id,
            "passed": self.passed,
            "error_count": len(self.errors),
            "warning_count": len(self.warnings),
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
            f"{len(self.errors)} errors, {len(self.warnings)} warnings; "
            f"{len(self.outcomes)} expectations on {self.code_count:,} codes"
        )
        if self.previous_count is not None:
            head += f" (previous release: {self.previous_count:,})"
        order = {"error": 0, "warning": 1}
        shown = sorted(
            (o for o in self.outcomes if all_rows or not o.success or o.unexpected_count),
            key=lambda o: (o.success, order.get(o.severity, 2)),
        )
        rows = [("rule", "severity", "result", "count", "sample codes")]
        for o in shown:
            count = o.observed if o.unexpected_count is None else f"{o.unexpected_count:,}"
            samples = "; ".join(_sample_text(s) for s in o.samples[:3])
            more = len(o.samples) > 3 or (o.unexpected_count or 0) > len(o.samples)
            rows.append((o.name, o.severity, "pass" if o.success else "FAIL", count or "",
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
