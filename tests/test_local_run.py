"""Local and tracked runs: which Prefect API a command sees, what a local run imports, and
`hcpcs serve` running its deployment's scheduled runs in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.server import configured_api
from flows.summary import EXIT_PUBLISHED
from sources.demo import DEMO_QUARTERS
from tests.conftest import ROOT
from tests.test_flows import query

HEAVY = ("prefect", "great_expectations")


def test_configured_api_reads_the_environment_then_the_active_profile(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.delenv("PREFECT_PROFILES_PATH", raising=False)
    assert configured_api(tmp_path) is None  # no profile file: Prefect's defaults, local
    (tmp_path / "profiles.toml").write_text(
        'active = "team"\n'
        '[profiles.team]\nPREFECT_API_URL = "http://prefect.internal:4200/api"\n'
        '[profiles.ephemeral]\nPREFECT_SERVER_ALLOW_EPHEMERAL_MODE = "true"\n')
    assert configured_api(tmp_path) == "http://prefect.internal:4200/api"
    monkeypatch.setenv("PREFECT_PROFILE", "ephemeral")  # a profile without an API: local
    assert configured_api(tmp_path) is None
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")  # the environment wins
    assert configured_api(tmp_path) == "http://127.0.0.1:4200/api"
    monkeypatch.delenv("PREFECT_API_URL")
    (tmp_path / "profiles.toml").write_text("active = [unclosed")  # Prefect would refuse it
    assert configured_api(tmp_path) is None


def run_cli(*args: str, home: Path) -> tuple[int, dict, list[str]]:
    """The command line in a fresh interpreter, without PREFECT_API_URL: (exit code, --json
    output, which of ``HEAVY`` it imported)."""
    script = (
        "import json, sys\n"
        "from flows.cli import app\n"
        f"sys.argv = ['hcpcs', *{list(args)!r}, '--json']\n"
        "try:\n    app()\nexcept SystemExit as exit:\n    code = exit.code\n"
        f"print(json.dumps([code, sorted(m for m in {HEAVY!r} if m in sys.modules)]),"
        " file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    code, imported = json.loads(done.stderr.strip().splitlines()[-1])
    return code, json.loads(done.stdout), imported


def test_a_local_run_imports_prefect_nowhere_and_gx_only_to_validate(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    code, doc, imported = run_cli("run", "--data-dir", str(data_dir), home=tmp_path / "ph")
    assert code == EXIT_PUBLISHED
    assert [r["status"] for r in doc["releases"]] == ["published"] * len(DEMO_QUARTERS)
    assert imported == ["great_expectations"]  # it validated; Prefect was never imported
    assert not (tmp_path / "ph").exists()  # nothing of Prefect's was written either
    code, doc, imported = run_cli("doctor", "--repair", "--data-dir", str(data_dir),
                                  home=tmp_path / "ph")
    assert code == 0 and doc["problems"] == []
    assert imported == []  # a healthy directory: nothing to validate, nothing to track


def test_serve_runs_due_flow_runs_in_its_own_process(tmp_path: Path, tracked: str) -> None:
    """A due run of the deployment runs here (tracked: Completed, its result the summary); a
    run another process already claimed is left alone; then nothing is due."""
    from prefect.client.orchestration import get_client
    from prefect.states import Pending

    from flows.deploy import refresh_deployment, run_due

    data_dir = tmp_path / "data"
    deployment = refresh_deployment(name="test-serve", cron="0 6 * * 1", source="demo",
                                    data_dir=data_dir)
    deployment_id = deployment.apply()
    with get_client(sync_client=True) as client:
        due = client.create_flow_run_from_deployment(deployment_id)
        claimed = client.create_flow_run_from_deployment(deployment_id)
        client.set_flow_run_state(claimed.id, Pending())  # another `hcpcs serve` took it
        assert run_due(client, deployment_id) == [due.id]
        assert client.read_flow_run(due.id).state.name == "Completed"
        assert client.read_flow_run(claimed.id).state.name == "Pending"
        assert run_due(client, deployment_id) == []
    assert query(data_dir, "SELECT count(*) FROM releases") == [(len(DEMO_QUARTERS),)]


def test_a_run_is_claimed_once(tmp_path: Path, tracked: str) -> None:
    """Two processes serving one deployment: the first claim of a scheduled run wins, the
    second is refused by the server, so the run is run once."""
    from prefect.client.orchestration import get_client

    from flows.deploy import claim, refresh_deployment

    deployment_id = refresh_deployment(name="test-claim", cron="0 6 * * 1", source="demo",
                                       data_dir=tmp_path / "data").apply()
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployment_id)
        assert claim(client, run.id) is True
        assert client.read_flow_run(run.id).state.name == "Pending"
        assert claim(client, run.id) is False


def test_the_command_gives_freed_memory_back() -> None:
    """The entry point sets the allocators before pyarrow loads, whatever the parent passed on:
    pyarrow's pool is the system allocator (mimalloc kept 15-25 MiB per release for reuse that
    never came)."""
    script = ("import sys\nfrom flows import cli\nsys.argv = ['hcpcs', '--help']\n"
              "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
              "import pyarrow\nprint(pyarrow.default_memory_pool().backend_name, file=sys.stderr)")
    env = {**os.environ, "_RJEM_MALLOC_CONF": "dirty_decay_ms:500",  # a parent's (Polars sets it)
           "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.stderr.strip().splitlines()[-1] == "system", done.stderr
