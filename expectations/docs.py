"""Great Expectations Data Docs for gate runs, in a project-local, file-based GX context.

The gate validates in an ephemeral context (fast, writes nothing); this module stores the run's
suites and validation results in a file context under ``reports_dir/gx`` and renders the HTML
site into ``reports_dir/data_docs``. Results accumulate there, so the site's index lists every
release validated into the same folder. Offline: GX sends nothing (``GX_ANALYTICS_ENABLED=false``).
The pages load their CSS, icons and JavaScript from CDNs; offline they show every check (its name,
severity and rule), each suite's verdict and counts, and each failure's count and codes, unstyled,
without the per-row pass/fail icon and the "Failed Only" filter (``tests/test_data_docs_offline``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from contracts.validation import GateResult

SITE_NAME = "hcpcs_data_docs"


def _context(reports_dir: Path) -> Any:
    """The file context under ``reports_dir/gx`` with our local Data Docs site."""
    import great_expectations as gx

    ctx = gx.get_context(mode="file", project_root_dir=str(reports_dir))
    if ctx.variables.analytics_enabled is not False:  # written into great_expectations.yml
        ctx.variables.analytics_enabled = False
        ctx.variables.save()
    if SITE_NAME not in (ctx.get_site_names() or []):
        ctx.add_data_docs_site(site_name=SITE_NAME, site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(reports_dir / "data_docs")},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
    return ctx


def _stored_suite(validation: Any) -> Any:
    """The suite a validation ran, rebuilt from the configurations its results carry."""
    import great_expectations as gx

    expectations = []
    for r in validation.results:
        exp = r.expectation_config.to_domain_obj()
        exp.id = None
        expectations.append(exp)
    return gx.ExpectationSuite(name=validation.suite_name, expectations=expectations)


def build_data_docs(results: Sequence[GateResult], reports_dir: Path) -> Path:
    """Render gate runs (``run_gate``'s results) as GX Data Docs in one pass; returns the site's
    index.html.

    ``reports_dir`` is normally ``<data_dir>/reports``. Re-running for the same release adds a
    new run beside the earlier ones (GX keys results by suite, run name and run time).
    """
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    reports_dir = Path(reports_dir).resolve()
    reports_dir.mkdir(parents=True, exist_ok=True)
    ctx = _context(reports_dir)
    keys, suites = [], {}
    for result in results:
        for validation in result.gx_results:
            suites[validation.suite_name] = validation  # every run of a suite ran the same one
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(
                    name=validation.suite_name),
                run_id=validation.meta["run_id"],
                batch_identifier=result.release_id or "release",
            )
            ctx.validation_results_store.set(key, validation)
            keys.append(key)
    for validation in suites.values():
        ctx.suites.add_or_update(_stored_suite(validation))
    # render these runs' pages (and the index), not every page of every earlier run again
    ctx.build_data_docs(site_names=[SITE_NAME], resource_identifiers=keys)
    return reports_dir / "data_docs" / "index.html"
