"""Who retries a download, shown on real Prefect flow runs against a real server on 127.0.0.1.

The refresh flow's fetch task (``flows.refresh.TASKS``) carries no Prefect retries: the download
retries each transient failure itself, within one time budget (``sources.fetch``), and a task
retry on top would multiply that budget (``flows.steps``). So: a server failing twice then serving
sees 3 requests inside ONE task run that completes; a 404 sees 1 request and the task run fails
once; a server failing every time sees ``max_attempts`` requests and the task run still fails
once. The server counts the requests; Prefect's API gives each task run's run count and every
state it went through.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from uuid import UUID

import pytest

from contracts.settings import FetchSettings, ReportSettings, Settings
from flows.summary import EXIT_FAILED, EXIT_PUBLISHED
from sources.demo import write_demo_releases
from tests.test_sources_fetch import Action, FaultServer, respond

#: Quick waits between attempts (the waits themselves are measured in test_sources_fetch); no
#: release report, which these runs do not look at.
SETTINGS = Settings(fetch=replace(FetchSettings(), backoff_base=0.01),
                    report=ReportSettings(write=False))
UNAVAILABLE = respond("503 Service Unavailable", b"busy")


def fetch_task_run(flow_run_id: str) -> tuple[int, list[str]]:
    """(run count, every state name oldest first) of the one fetch task run of a flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])))
        [fetch] = [r for r in runs if r.name.startswith("fetch ")]
        states = client.read_task_run_states(fetch.id)
    return fetch.run_count, [s.name for s in sorted(states, key=lambda s: s.timestamp)]


@pytest.fixture(scope="module")
def demo_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's first release ZIP (2024-Q1), a release the gate lets through."""
    return write_demo_releases(tmp_path_factory.mktemp("demo"))[0]


def refresh_from(server: FaultServer, script: list[Action], zip_name: str,
                 data_dir: Path) -> tuple[dict, str]:
    """A tracked refresh of one release ZIP, ``zip_name``, that the server answers with
    ``script`` (one action per request, the last repeating); (the run's summary, its path)."""
    from flows.refresh import refresh

    path = f"/files/zip/{zip_name}"
    server.routes[path] = script
    doc = refresh(source=server.url(path), data_dir=str(data_dir), settings=SETTINGS)
    return doc, path


def test_a_transient_failure_is_retried_inside_one_task_run(server, demo_zip: Path,
                                                            tmp_path: Path) -> None:
    script = [UNAVAILABLE, UNAVAILABLE, respond("200 OK", demo_zip.read_bytes())]
    doc, path = refresh_from(server, script, demo_zip.name, tmp_path / "data")
    assert doc["exit_code"] == EXIT_PUBLISHED
    assert [(r["release_id"], r["status"]) for r in doc["releases"]] == [
        ("2024-Q1", "published")]
    assert server.hits(path) == 3  # two 503s, then the ZIP
    assert fetch_task_run(doc["flow_run_id"]) == (1, ["Pending", "Running", "Completed"])


def test_a_404_is_one_request_and_one_failed_task_run(server, demo_zip: Path,
                                                      tmp_path: Path) -> None:
    script = [respond("404 Not Found", b"no such file")]
    doc, path = refresh_from(server, script, demo_zip.name, tmp_path / "data")
    assert doc["exit_code"] == EXIT_FAILED
    [outcome] = doc["releases"]
    assert (outcome["release_id"], outcome["status"], outcome["stage"]) == (
        "2024-Q1", "failed", "fetch")
    assert outcome["message"] == (
        f"{server.url(path)}: HTTP 404 Not Found (attempt 1 of 5, not retried)")
    assert server.hits(path) == 1
    assert fetch_task_run(doc["flow_run_id"]) == (1, ["Pending", "Running", "Failed"])


def test_a_failure_that_never_passes_costs_one_task_run(server, demo_zip: Path,
                                                        tmp_path: Path) -> None:
    """The download's own 5 attempts, and no task retry multiplying them."""
    doc, path = refresh_from(server, [UNAVAILABLE], demo_zip.name, tmp_path / "data")
    assert doc["exit_code"] == EXIT_FAILED
    [outcome] = doc["releases"]
    assert (outcome["status"], outcome["stage"]) == ("failed", "fetch")
    assert outcome["message"] == (f"{server.url(path)}: failed after 5 attempt(s): last error: "
                                  "HTTP 503 Service Unavailable")
    assert server.hits(path) == 5
    assert fetch_task_run(doc["flow_run_id"]) == (1, ["Pending", "Running", "Failed"])
