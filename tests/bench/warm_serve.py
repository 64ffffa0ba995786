"""A scheduled run inside a warm ``hcpcs serve`` process, timed: ``python warm_serve.py SOURCE
WORK``.

Does what ``hcpcs serve`` does (``flows.server.ensure_api``, the deployment, ``flows.deploy.
run_due``), with two flow runs of the deployment created due now: the first (into
``WORK/first``) pays for the imports, as the first scheduled run of a served process does; the
second (into ``WORK/warm``) is the warm one. Prints one JSON line: the warm run's seconds and
its flow run's state.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main(source: str, work: Path) -> None:
    from flows.server import ensure_api

    ensure_api(Path(os.environ["PREFECT_HOME"]))
    from prefect.client.orchestration import get_client

    from flows.deploy import refresh_deployment, run_due

    deployment = refresh_deployment(name="bench-warm-serve", cron="0 6 * * 1", source=source,
                                    data_dir=work / "first")
    deployment_id = deployment.apply()
    with get_client(sync_client=True) as client:
        client.create_flow_run_from_deployment(deployment_id)
        run_due(client, deployment_id)  # the first scheduled run of the process
        warm = client.create_flow_run_from_deployment(
            deployment_id, parameters={"source": source, "data_dir": str(work / "warm")})
        started = time.perf_counter()
        ran = run_due(client, deployment_id)
        seconds = time.perf_counter() - started
        state = client.read_flow_run(warm.id).state
    assert ran == [warm.id], ran
    print(json.dumps({"seconds": seconds, "state": state.name if state else None}))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
