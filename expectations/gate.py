"""The validation gate: run the suite on one release and say whether it may be published.

``run_gate`` validates the parsed codes, the parser's rejected lines and (when given) the previously
published release with Great Expectations on an in-memory context (one per process) and returns a
``GateResult``: ``passed`` is False when a release-level error failed (record-level findings never
block; see ``contracts.validation``). ``to_dict()`` is what ``validation.json`` holds
(one ``results`` entry per expectation, for DuckDB's ``validation_results``), ``summary_text()``
is what the command line prints, and ``expectations.docs.build_data_docs`` renders the same run
as GX Data Docs. The result types live in ``contracts.validation``; GX is imported inside the
functions that run it (it costs seconds to import).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import polars as pl

from contracts.layout import REJECTS_SCHEMA
from contracts.release import ReleaseIdError, quarter_of
from contracts.settings import GateSettings
from contracts.validation import BLANK, ExpectationOutcome, GateResult, Sample
from expectations.frame import codes_frame
from expectations.suite import Batch, Check, all_checks, build_suite, derived_columns
from expectations.vanished import with_presence


def _failures(check: Check, result: dict[str, Any]) -> tuple[Sample, ...]:
    """Every failing code with field and value, from GX's index list (``code`` is the index
    column): the complete list where GX gave one, else its partial list."""
    out: dict[Sample, None] = {}
    entries = result.get("unexpected_index_list") or result.get("partial_unexpected_index_list")
    for entry in entries or []:
        raw = entry.get(check.column)
        value = BLANK if raw is None or raw != raw else str(raw)  # None or NaN: blank in file
        name = check.field
        if name is None:  # derived column: "field=value"
            name, _, value = value.partition("=")
        out[Sample(entry.get("code"), name, value)] = None
    return tuple(out)


def _domain_size(check: Check, frame: pl.DataFrame) -> int | None:
    """Rows a column check looks at (GX's element_count): all, or those its condition selects."""
    if check.column is None:
        return None
    if check.when is None:
        return frame.height
    column, values = check.when
    return frame.filter(pl.col(column).is_in(list(values))).height


def _outcome(check: Check, gx_result: Any, settings: GateSettings,
             previous_count: int | None, element_count: int | None) -> ExpectationOutcome:
    """One check's outcome; a check that passed in GX's quick format found nothing."""
    result = dict(gx_result.result or {})
    if check.column is not None and "unexpected_count" not in result:
        result.update(unexpected_count=0, element_count=element_count)
    observed = None
    failures = _failures(check, result)
    samples = failures[:settings.sample_size]
    if check.column is None:  # table-level: the code count, or the rejected lines
        n = result.get("observed_value")
        observed = f"{n:,} {'codes' if check.field == 'code_count' else 'rejected lines'}"
        if previous_count and check.field == "code_count":
            change = (n - previous_count) / previous_count
            observed += f" (previous {previous_count:,}, {change:+.1%})"
        if not gx_result.success:
            samples = (Sample(None, check.field or "code_count", observed),)
    return ExpectationOutcome(
        name=check.name,
        severity=check.severity,
        expectation=check.expectation,
        column=check.column,
        success=bool(gx_result.success),
        unexpected_count=result.get("unexpected_count"),
        element_count=result.get("element_count"),
        observed=observed,
        samples=samples,
        description=check.why,
        scope=check.scope,
        failures=failures if check.column is not None else (),
    )


@cache
def _gx_batches() -> Any:
    """The pandas data source every validation of this process runs on: one in-memory GX context
    (no Data Docs site, not even GX's default temporary one; no analytics, no progress bars),
    made once per process; GX's setup costs more than validating a release."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    ctx = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
        analytics_enabled=False,
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
    ))
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx.data_sources.add_pandas("hcpcs")


@cache
def _whole_frame(name: str) -> Any:
    """The batch definition of suite ``name``: its own asset, a whole pandas frame per batch."""
    return _gx_batches().add_dataframe_asset(name).add_batch_definition_whole_dataframe("whole")


def _run_suite(name: str, checks: list[Check], pdf: Any, result_format: dict,
               release_id: str | None) -> Any:
    """Validate ``pdf`` with the suite of ``checks``, stamped with the run it belongs to (the
    release id and the time), as a stored validation definition would stamp it."""
    from great_expectations.core.run_identifier import RunIdentifier

    batch = _whole_frame(name).get_batch(batch_parameters={"dataframe": pdf})
    result = batch.validate(build_suite(name, checks), result_format=result_format)
    now = datetime.now(UTC)
    result.meta.update(run_id=RunIdentifier(run_name=release_id or "release", run_time=now),
                       validation_time=now)
    return result


def validate_checks(name: str, checks: list[Check], frame: pl.DataFrame, *,
                    release_id: str | None = None, sample_size: int = 10,
                    quick_first: bool = True) -> Any:
    """Run ``checks`` as one GX suite on a prepared frame (``expectations.frame``); returns GX's
    ExpectationSuiteValidationResult. ``run_gate`` calls it once per batch; the benchmark calls
    it per check to see which ones cost the time.

    Counting failures and listing failing codes is half of GX's time, and almost every check
    passes. So with ``quick_first`` every check runs first in GX's BOOLEAN_ONLY format, then
    only the failed ones, the threshold (``mostly``) ones and the table-level ones run again in
    full (COMPLETE: every failing code, kept as findings); their full results replace the quick
    ones. Passing checks keep a bare pass.
    """
    # Only the columns the checks read, as plain object arrays: GX filters the whole frame for
    # every metric, and pandas' Arrow-backed strings make each of those filters slow.
    used = {"code", *(c.column for c in checks), *(c.when[0] for c in checks if c.when)}
    pdf = frame.select([c for c in frame.columns if c in used]).to_pandas().astype(object)
    pdf = pdf.where(pdf.notna(), None)
    full = {"result_format": "COMPLETE", "unexpected_index_column_names": ["code"],
            "partial_unexpected_count": max(sample_size * 2, 20)}
    if not quick_first:
        return _run_suite(name, checks, pdf, full, release_id)
    quick = _run_suite(name, checks, pdf, {"result_format": "BOOLEAN_ONLY"}, release_id)
    failed = {r.expectation_config.meta["check"] for r in quick.results if not r.success}
    again = [c for c in checks
             if c.name in failed or "mostly" in c.kwargs or c.column is None]
    if again:
        detail = _run_suite(name, again, pdf, full, release_id)
        by_name = {r.expectation_config.meta["check"]: r for r in detail.results}
        quick.results = [by_name.get(r.expectation_config.meta["check"], r)
                         for r in quick.results]
    return quick


def is_revision(release_id: str | None, previous_release_id: str | None) -> bool:
    """Whether the previous release is the same quarter (``2019-Q1r2`` after ``2019-Q1``). An id
    that is not a release id (a file name given to ``hcpcs validate``) names no quarter."""
    if release_id is None or previous_release_id is None:
        return False
    try:
        return quarter_of(release_id) == quarter_of(previous_release_id)
    except ReleaseIdError:
        return False


def batch_frames(codes: pl.DataFrame, checks: list[Check], *, rejects: pl.DataFrame | None = None,
                 previous: pl.DataFrame | None = None) -> dict[Batch, pl.DataFrame]:
    """The frame each batch of ``checks`` validates, with the columns the checks derive: the
    codes (``previous``'s fields beside them), the rejected lines (``has_record``: their code
    still has a record among ``codes``) and, with ``previous``, its codes (``present``: still
    in ``codes``)."""
    lines = pl.DataFrame(schema=REJECTS_SCHEMA) if rejects is None else rejects
    lines = lines.with_columns(has_record=pl.col("code").is_in(codes["code"].implode()))
    frames: dict[Batch, pl.DataFrame] = {
        "codes": codes_frame(codes, derived_columns(checks, "codes"), previous),
        "rejects": lines.with_columns(**derived_columns(checks, "rejects")),
    }
    if previous is not None:
        derived = derived_columns(checks, "previous")
        frames["previous"] = with_presence(codes, previous).select(
            "code", *(e.alias(name) for name, e in derived.items()))
    return frames


#: Batch -> the GX suite (and Data Docs page) that validates it.
_SUITES: dict[Batch, str] = {"codes": "hcpcs_codes", "rejects": "hcpcs_rejects",
                             "previous": "hcpcs_previous_release"}


def run_gate(
    codes: pl.DataFrame,
    *,
    rejects: pl.DataFrame | None = None,
    previous: pl.DataFrame | None = None,
    settings: GateSettings | None = None,
    release_id: str | None = None,
    previous_release_id: str | None = None,
) -> GateResult:
    """Validate one release's codes (``parse_anweb(...).codes``) with the whole suite.

    ``rejects`` are the lines the parser could not read (none when not given). ``previous`` is
    the previously published release's codes and ``previous_release_id`` its id; without
    ``previous`` the comparisons with it (code count drift, vanished codes, changed descriptions)
    are not run, and only when the two ids are the same quarter (a revision) is
    ``revision_removes_codes`` applied. Returns the verdict with every expectation's counts and
    failing codes; never raises for bad data (only for a frame that is not a codes frame). Runs
    offline in an ephemeral GX context, so it writes nothing.
    """
    settings = settings or GateSettings()
    previous_count = None if previous is None else previous.height
    checks = all_checks(settings, previous_count, codes.height,
                        revision=is_revision(release_id, previous_release_id))
    frames = batch_frames(codes, checks, rejects=rejects, previous=previous)
    by_name: dict[str, Any] = {}
    sizes: dict[str, int | None] = {}
    gx_results = []
    for batch, frame in frames.items():
        batch_checks = [c for c in checks if c.batch == batch]
        validation = validate_checks(_SUITES[batch], batch_checks, frame,
                                     release_id=release_id, sample_size=settings.sample_size,
                                     quick_first=settings.quick_first)
        gx_results.append(validation)
        for r in validation.results:
            by_name[r.expectation_config.meta["check"]] = r
        sizes.update({c.name: _domain_size(c, frame) for c in batch_checks})
    outcomes = tuple(_outcome(c, by_name[c.name], settings, previous_count, sizes[c.name])
                     for c in checks)
    return GateResult(release_id, codes.height, previous_count, settings, outcomes,
                      tuple(gx_results))
