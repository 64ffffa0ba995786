"""The scheduled deployment of the refresh flow (``hcpcs serve``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.refresh import refresh


def refresh_deployment(*, name: str, cron: str, source: str, data_dir: Path) -> Any:
    """A Prefect deployment of ``refresh`` on ``cron`` (UTC) with fixed parameters."""
    return refresh.to_deployment(
        name=name,
        cron=cron,
        parameters={"source": source, "data_dir": str(data_dir)},
        description=f"Refresh the HCPCS code set from {source} into {data_dir}.",
        tags=["hcpcs"],
    )


def serve_forever(*deployments: Any) -> None:
    """Register the deployments and run their scheduled flow runs until interrupted."""
    from prefect import serve

    serve(*deployments)
