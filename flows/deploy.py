"""The scheduled deployment of the refresh flow (``hcpcs serve``), run in one warm process.

Prefect's own ``serve`` starts a fresh Python process for every flow run, which pays for importing
Prefect, Polars and Great Expectations (about 5 s here) each time. ``serve_forever`` registers the
same deployment (its cron schedule lives on the Prefect server, whose scheduler creates the runs)
and runs each due flow run in this process, one after the other, through Prefect's flow engine:
the runs are tracked exactly as Prefect's runner would track them (Pending, Running, Completed or
Failed, logs, artifacts), and only the first one pays for the imports.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from flows.refresh import refresh

log = logging.getLogger("hcpcs.serve")


def refresh_deployment(*, name: str, cron: str, source: str, data_dir: Path) -> Any:
    """A Prefect deployment of ``refresh`` on ``cron`` (UTC) with fixed parameters."""
    return refresh.to_deployment(
        name=name,
        cron=cron,
        parameters={"source": source, "data_dir": str(data_dir)},
        description=f"Refresh the HCPCS code set from {source} into {data_dir}.",
        tags=["hcpcs"],
    )


def run_due(client: Any, deployment_id: UUID) -> list[UUID]:
    """Run, in this process and oldest first, every flow run of the deployment whose scheduled
    time has come; returns their ids. A run another process claimed first is left to it."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterDeploymentId,
        FlowRunFilterNextScheduledStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.flow_engine import run_flow
    from prefect.settings import temporary_settings

    due = client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
            next_scheduled_start_time=FlowRunFilterNextScheduledStartTime(
                before_=datetime.now(UTC)),
        ),
        sort=FlowRunSort.NEXT_SCHEDULED_START_TIME_ASC,
    )
    ran = []
    for flow_run in due:
        if not claim(client, flow_run.id):
            continue  # claimed by another process serving the same deployment
        log.info("running %s (%s)", flow_run.name, flow_run.id)
        with temporary_settings(updates=_heartbeats()):
            run_flow(refresh, flow_run=flow_run, return_type="state")
        ran.append(flow_run.id)
    return ran


def claim(client: Any, flow_run_id: UUID) -> bool:
    """Move a scheduled run to Pending, as Prefect's runner does before running it; False when
    the server refuses (another process got there first), so no run is run twice."""
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Pending

    return client.set_flow_run_state(flow_run_id, Pending()).status == SetStateStatus.ACCEPT


def _heartbeats() -> dict[Any, Any]:
    """No flow run heartbeats unless ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` asks for them: their
    thread is joined at the end of every run, which waits out its one-second sleep (0.7 s of a
    4 s run here); a run here lives and dies with this process, which is its heartbeat."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY

    if "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" in os.environ:
        return {}
    return {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}


def serve_forever(deployment: Any, say: Callable[[str], None], poll_seconds: float = 10.0) -> None:
    """Register the deployment, ``say`` so, and run its scheduled flow runs here until
    interrupted; its schedule is paused on the way out (as Prefect's ``serve`` does), so runs do
    not pile up."""
    from prefect.client.orchestration import get_client

    deployment_id = deployment.apply()
    say(f"serving deployment {deployment.name} ({deployment_id}); Ctrl-C stops")
    with get_client(sync_client=True) as client:
        try:
            while True:
                run_due(client, deployment_id)
                time.sleep(poll_seconds)
        finally:
            client.pause_deployment(deployment_id)
