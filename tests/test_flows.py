"""End-to-end: real Prefect flow runs (test harness), real files, real HTTP, real DuckDB."""

from __future__ import annotations

import csv
import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID

import duckdb
import pytest
from typer.testing import CliRunner

from contracts.paths import DB_NAME, DataDir
from flows.cli import app
from flows.summary import EXIT_FAILED, EXIT_NOTHING_NEW, EXIT_PUBLISHED, last_run
from sources.demo import DEMO_QUARTERS, demo_states, write_demo_releases
from tests.conftest import CMS_DIR, SEED, shared_file
from tests.test_cli import with_code_twice, with_coverage

runner = CliRunner()


def hcpcs(*args: str) -> tuple[int, dict]:
    """Run the command line in-process with --json; (exit code, parsed stdout)."""
    result = runner.invoke(app, [*args, "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def snapshot(data_dir: Path) -> dict[str, tuple[int, int]]:
    """Every published file with its size and mtime (a no-op run must not touch any)."""
    files = [*(data_dir / "parquet").rglob("*"), data_dir / DB_NAME]
    return {str(p.relative_to(data_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in files if p.is_file()}


def query(data_dir: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(data_dir / DB_NAME), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, dict]:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    code, doc = hcpcs("run", "--data-dir", str(data_dir))
    return data_dir, code, doc


def test_demo_run_publishes_every_quarter(demo_run) -> None:
    data_dir, code, doc = demo_run
    assert code == EXIT_PUBLISHED
    expected = {q.release: len(rows) for q, rows in demo_states()}
    assert {r["release_id"]: r["codes"] for r in doc["releases"]} == expected
    assert expected["2024-Q1"] == 185 and expected["2025-Q4"] == 191
    assert {r["status"] for r in doc["releases"]} == {"published"}
    assert doc["totals"]["releases"] == len(DEMO_QUARTERS) == 9
    assert query(data_dir, "SELECT count(*) FROM releases WHERE effective") == [(8,)]
    # what the demo states it changes, the database shows: a silent change, a discontinuation
    # later reactivated, a code reused with a new meaning
    assert query(data_dir, """SELECT release_id, silent FROM code_changes
                              WHERE code = 'A4216' AND change_type = 'long_description_changed'
                           """) == [("2024-Q3r2", True)]  # 2024-Q3's re-issue supersedes it
    assert query(data_dir, """SELECT release_id, change_type FROM code_changes WHERE code = 'E0200'
                              ORDER BY release_id""") == [("2024-Q2", "discontinued"),
                                                          ("2025-Q1", "reactivated")]
    assert query(data_dir, "SELECT max(episode) FROM code_history WHERE code = 'G0002'") == [(2,)]
    assert doc["changes_by_type"]["reused"] == 1


def test_local_run_is_not_a_flow_run(demo_run) -> None:
    """Without a Prefect API, the run is local: no flow run id; its record is the run report."""
    data_dir, _, doc = demo_run
    assert doc["flow_run_id"] == ""
    assert last_run(data_dir).to_dict() == doc
    docs = (data_dir / "reports" / "data_docs" / "index.html").read_text()
    assert all(q.release in docs for q in DEMO_QUARTERS)  # GX Data Docs of every release


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The demo refresh as a tracked Prefect flow run (what PREFECT_API_URL or serve gives)."""
    from flows.refresh import refresh

    data_dir = tmp_path_factory.mktemp("tracked") / "data"
    return data_dir, refresh(source="demo", data_dir=str(data_dir))


def test_tracked_run_publishes_what_the_local_run_does(demo_run, tracked_run) -> None:
    """The same body, run as a Prefect flow: the same database, each step a named task run, the
    summary as an artifact."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    local_dir, _, local = demo_run
    data_dir, doc = tracked_run
    assert doc["exit_code"] == local["exit_code"] == EXIT_PUBLISHED
    assert [(r["release_id"], r["status"], r["codes"]) for r in doc["releases"]] == [
        (r["release_id"], r["status"], r["codes"]) for r in local["releases"]]
    for table in ("codes", "code_history", "code_changes", "findings"):
        sql = f"SELECT * FROM {table} ORDER BY ALL"
        assert query(data_dir, sql) == query(local_dir, sql), table
    assert last_run(data_dir).to_dict() == doc
    assert task_states(doc["flow_run_id"], ("parse", "validate")) == {
        f"{step} {q.release}": "Completed" for q in DEMO_QUARTERS
        for step in ("parse", "validate")}
    this_run = ArtifactFilterFlowRunId(any_=[UUID(doc["flow_run_id"])])
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=this_run))
    artifacts = {a.key: a for a in artifacts}
    assert sorted(artifacts) == ["hcpcs-refresh", "hcpcs-report"]
    # the release report this run wrote, as a link (its path is in the summary too)
    assert doc["report"] == str(data_dir.resolve() / "reports" / "site" / "index.html")
    assert artifacts["hcpcs-report"].data == (
        f"[HCPCS release report]({Path(doc['report']).as_uri()})")
    assert task_states(doc["flow_run_id"], ("report",)) == {"report": "Completed"}
    table = artifacts["hcpcs-refresh"].data
    assert table.startswith("# HCPCS refresh: 9 release(s) published\n")
    assert "| 2024-Q3r2 | published | 188 | 0 | 0 | - | - |" in table
    assert "| reused | 1 |" in table


def test_second_run_with_nothing_new_changes_nothing(demo_run) -> None:
    data_dir, _, _ = demo_run
    before = snapshot(data_dir)
    code, doc = hcpcs("run", "--data-dir", str(data_dir))  # a local run
    assert code == EXIT_NOTHING_NEW
    assert doc["verdict"] == "nothing new" and len(doc["releases"]) == 9
    from flows.refresh import refresh

    result = refresh(source="demo", data_dir=str(data_dir))  # the flow itself agrees
    assert result["exit_code"] == EXIT_NOTHING_NEW and not result["rebuilt"]
    assert {r["status"] for r in result["releases"]} == {"unchanged"}
    assert snapshot(data_dir) == before


def test_status_diff_and_code_commands(demo_run) -> None:
    data_dir, _, _ = demo_run
    code, doc = hcpcs("status", "--data-dir", str(data_dir))
    assert code == 0
    assert [r["release_id"] for r in doc["releases"]][:2] == ["2024-Q1", "2024-Q2"]
    assert doc["last_run"]["flow"] == "refresh"
    code, changes = hcpcs("diff", "2024-Q2", "2024-Q3r2", "--data-dir", str(data_dir))
    assert code == 0
    assert ("A4216", "long_description_changed") in {(c["code"], c["change_type"])
                                                     for c in changes}
    code, page = hcpcs("code", "E0200", "--data-dir", str(data_dir))
    assert code == 0
    assert [h["change_type"] for h in page["history"] if h["change_type"]] == [
        "discontinued", "reactivated"]
    result = runner.invoke(app, ["code", "ZZ999", "--data-dir", str(data_dir)])
    assert result.exit_code == 1 and "ZZ999: not in any published release" in result.output


def test_deployment_registers_with_its_schedule() -> None:
    from prefect.client.orchestration import get_client

    from flows.deploy import refresh_deployment

    deployment = refresh_deployment(name="weekly", cron="0 6 * * 1", source="cms",
                                    data_dir=Path("/srv/hcpcs"))
    deployment_id = deployment.apply()  # what `hcpcs serve` registers before serving
    with get_client(sync_client=True) as client:
        stored = client.read_deployment(deployment_id)
    assert stored.name == "weekly"
    assert [s.schedule.cron for s in stored.schedules] == ["0 6 * * 1"]
    assert stored.parameters == {"source": "cms", "data_dir": "/srv/hcpcs"}


def edit_data_member(zip_path: Path, out: Path, edit: Callable[[bytes], bytes]) -> None:
    """A copy of a release ZIP whose fixed-width data member is ``edit``ed."""
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, edit(data) if info.filename.upper().endswith("ANWEB.TXT") else data)


def test_corrupt_releases_among_good_ones(tmp_path: Path) -> None:
    """Good releases are published, one with a record-level finding; a truncated ZIP and a
    release refused by a release-level rule are reported with their cause and never published;
    nothing is left half-written."""
    folder = tmp_path / "zips"
    folder.mkdir()
    demo = write_demo_releases(tmp_path / "demo")  # 2024-Q1, Q2, Q3, Q3r2, Q4, ...
    shutil.copy(demo[0], folder / demo[0].name)
    # 2024-Q2: one code's coverage outside its domain; 2024-Q3: a code twice
    edit_data_member(demo[1], folder / demo[1].name, lambda d: with_coverage(d, "E0130", "Z"))
    edit_data_member(demo[2], folder / demo[2].name, lambda d: with_code_twice(d, "E0130"))
    (folder / demo[4].name).write_bytes(demo[4].read_bytes()[:5000])  # 2024-Q4 cut short
    data_dir = tmp_path / "data"
    code, doc = hcpcs("run", "--source", str(folder), "--data-dir", str(data_dir))
    assert code == EXIT_FAILED
    outcomes = {r["release_id"]: r for r in doc["releases"]}
    assert sorted(outcomes) == ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"]
    assert [outcomes[q]["status"] for q in ("2024-Q1", "2024-Q2")] == ["published"] * 2
    assert outcomes["2024-Q2"]["findings"] == [
        "error coverage_code_in_domain: 1 (E0130 coverage_code=Z)"]
    invalid = outcomes["2024-Q3"]
    assert (invalid["status"], invalid["stage"]) == ("failed", "validate")
    assert invalid["refused_by"] == ["code_unique"]
    assert invalid["errors"] == ["error code_unique: 2 (E0130 code=E0130)"]
    truncated = outcomes["2024-Q4"]
    assert (truncated["status"], truncated["stage"]) == ("failed", "fetch")
    assert demo[4].name in truncated["message"] and "ZIP" in truncated["message"]
    published = sorted(p.name for p in DataDir(data_dir).releases.iterdir())
    assert published == ["release=2024-Q1", "release=2024-Q2"]
    assert [p for p in data_dir.rglob("*") if p.is_file() and ".tmp" in str(p)] == []
    assert query(data_dir, "SELECT release_id FROM releases ORDER BY 1") == [
        ("2024-Q1",), ("2024-Q2",)]
    assert query(data_dir, "SELECT release_id, code FROM code_flags WHERE has_findings") == [
        ("2024-Q2", "E0130")]
    docs = (data_dir / "reports" / "data_docs" / "index.html").read_text()
    assert "2024-Q1" in docs and "2024-Q2" in docs and "2024-Q3" not in docs  # published only
    # the same run again: the refused release is parsed and validated again, and refused again
    code, again = hcpcs("run", "--source", str(folder), "--data-dir", str(data_dir))
    assert code == EXIT_FAILED
    assert {r["release_id"]: r["status"] for r in again["releases"]} == {
        "2024-Q1": "unchanged", "2024-Q2": "unchanged", "2024-Q3": "failed",
        "2024-Q4": "failed"}
    assert {r["release_id"]: r for r in again["releases"]}["2024-Q3"]["errors"] == (
        invalid["errors"])


def task_states(flow_run_id: str, steps: tuple[str, ...]) -> dict[str, str]:
    """Task run name -> state name, for the tasks of these steps in one flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])))
    return {r.name: r.state.name for r in runs if r.name.split()[0] in steps}


# --- the real CMS releases, served over HTTP -------------------------------------------------

REAL = {  # release -> file under ../shared/cms, and its code count
    "2016-Q1": ("2016-annual/HCPC2016_CONTR_ANWEB.txt", 6293),
    "2017-Q1": ("2017-annual/2017-Alpha-Numeric-HCPCS-File.zip", 6498),
    "2019-Q1": ("2019-annual/2019-Alpha-Numeric-HCPCS-File.zip", 6800),
}


@pytest.fixture(scope="module")
def cms_server() -> Iterator[str]:
    for path, _ in REAL.values():
        shared_file(CMS_DIR / path, "a real CMS release")
    handler = functools.partial(_QuietHandler, directory=str(CMS_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def real_run(cms_server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from flows.refresh import refresh

    tmp = tmp_path_factory.mktemp("real")
    catalog = tmp / "catalog.csv"
    with catalog.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["release", "url"])
        for release, (path, _) in reversed(REAL.items()):  # newest first: order must not matter
            writer.writerow([release, f"{cms_server}/{path}"])
    data_dir = tmp / "data"
    return data_dir, refresh(source=str(catalog), data_dir=str(data_dir))


def test_real_releases_over_http(real_run) -> None:
    data_dir, doc = real_run
    assert doc["exit_code"] == EXIT_PUBLISHED, doc
    assert {r["release_id"]: (r["status"], r["codes"]) for r in doc["releases"]} == {
        release: ("published", count) for release, (_, count) in REAL.items()
    }
    assert query(data_dir, "SELECT release_id, code_count FROM releases ORDER BY 1") == [
        (release, count) for release, (_, count) in REAL.items()
    ]
    # the gate's warnings (CMS's own inconsistencies) are published with the data
    warnings = {r["release_id"]: r["findings"] for r in doc["releases"]}
    assert {release: [w.split(" (")[0] for w in found] for release, found in warnings.items()} == {
        "2016-Q1": ["warning added_not_after_action_effective: 5"],
        "2017-Q1": ["warning added_not_after_action_effective: 6",
                    "warning vanished_without_termination: 2"],
        "2019-Q1": ["warning action_effective_date_present: 1",
                    "warning added_not_after_action_effective: 5",
                    "warning vanished_without_termination: 1"],
    }
    assert warnings["2019-Q1"][0] == (
        "warning action_effective_date_present: 1 (A5513 action_effective_date=(blank))")
    code, status = hcpcs("status", "--data-dir", str(data_dir))
    assert code == 0
    assert {r["release_id"]: r["warnings"] for r in status["releases"]} == {
        "2016-Q1": 1, "2017-Q1": 2, "2019-Q1": 3}
    # 2016 -> 2017: A4720 changed its long description under action N (a silent change)
    assert query(data_dir, """SELECT action_code, silent FROM code_changes
                              WHERE release_id = '2017-Q1' AND code = 'A4720'
                                AND change_type = 'long_description_changed'""") == [("N", True)]
    # 2017: B9000 (enteral infusion pump without alarm) discontinued, flagged D by CMS
    assert query(data_dir, """SELECT release_id, action_code, action_agrees, new_value
                              FROM code_changes
                              WHERE code = 'B9000' AND change_type = 'discontinued'""") == [
        ("2017-Q1", "D", True, "2016-12-31")]


# the seed code page's labels -> (column of `hcpcs code --json`, occurrence or None)
SEED_FIELDS = {
    "HCPCS Code": ("code", None),
    "Short Description": ("short_description", None),
    "Pricing Indicator Code #1": ("pricing_indicators", 0),
    "Pricing Indicator Code #1 Description": ("pricing_indicators_meaning", 0),
    "Multiple Pricing Indicator Code": ("multiple_pricing_indicator", None),
    "Multiple Pricing Indicator Code Description": ("multiple_pricing_indicator_meaning", None),
    "Coverage Code": ("coverage_code", None),
    "Coverage Code Description": ("coverage_code_meaning", None),
    "Berenson-Eggers Type Of Service Code": ("betos", None),
    "Berenson-Eggers Type Of Service Code Description": ("betos_meaning", None),
    "Type Of Service Code #1": ("types_of_service", 0),
    "Type Of Service Code #1 Description": ("types_of_service_meaning", 0),
    "Anesthesia Base Unit Quantity": ("anesthesia_base_units", None),
    "Code Added Date": ("added_date", None),
    "Action Effective Date": ("action_effective_date", None),
    "Action Code": ("action_code", None),
    "Action Code Description": ("action_code_meaning", None),
}


def seed_page() -> dict[str, str]:
    """Label -> value of every field row (``<i>label</i><TAB>value<TAB>help``) of the seed."""
    rows = {}
    for line in SEED.read_text(encoding="utf-8").splitlines():
        if line.startswith("<i>"):
            label, value = line.split("\t")[:2]
            rows[label.removeprefix("<i>").removesuffix("</i>")] = value
    return rows


def test_code_page_of_s2107_matches_the_seed(real_run) -> None:
    shared_file(SEED, "the seed code page")
    data_dir, _ = real_run
    code, doc = hcpcs("code", "S2107", "--data-dir", str(data_dir))
    assert code == 0
    page = doc["page"]
    seed = seed_page()
    assert seed["Coverage Code Description"] == "Not payable by Medicare"  # the seed read right
    for label, (column, index) in SEED_FIELDS.items():
        value = page[column] if index is None else page[column][index]
        if column.endswith("_date"):
            value = value.replace("-", "")
        assert str(value) == seed[label], label
    # the long description, as CMS writes it in the file (upper case, one space at each wrap)
    assert page["long_description"].lower() == seed["Code Description"].lower()
    assert page["release_id"] == "2019-Q1"
    assert [h["valid_from_release"] for h in doc["history"]] == ["2016-Q1"]
    text = runner.invoke(app, ["code", "S2107", "--data-dir", str(data_dir)]).stdout
    for meaning in ("Not payable by Medicare", "Undefined codes", "No maintenance for this code",
                    "Other medical items or services"):
        assert meaning in text


def test_backfill_in_another_order_gives_the_same_history(real_run, tmp_path: Path) -> None:
    """2019 first, then 2017 and 2016 in a second backfill: same history as one ordered run."""
    from flows.refresh import backfill

    in_order, _ = real_run
    data_dir = tmp_path / "data"
    for batch in (["2019-Q1"], ["2017-Q1", "2016-Q1"]):
        catalog = tmp_path / f"{batch[0]}.csv"
        catalog.write_text("release,url\n" + "".join(
            f"{release},{CMS_DIR / REAL[release][0]}\n" for release in batch))
        doc = backfill(source=str(catalog), data_dir=str(data_dir))
        assert [r["status"] for r in doc["releases"]] == ["published"] * len(batch)
        assert doc["rebuilt"]
    for table in ("codes", "code_history", "code_changes"):
        sql = f"SELECT * FROM {table} ORDER BY ALL"
        assert query(data_dir, sql) == query(in_order, sql), table


def test_failed_rebuild_is_reported_and_redone_by_the_next_run(tmp_path: Path) -> None:
    from flows.refresh import refresh

    folder = tmp_path / "zips"
    folder.mkdir()
    for p in write_demo_releases(tmp_path / "demo")[:2]:
        shutil.copy(p, folder / p.name)
    data_dir = tmp_path / "data"
    blocker = DataDir(data_dir).history_parquet.parent
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the history folder goes")  # the rebuild cannot write
    first = refresh(source=str(folder), data_dir=str(data_dir))
    assert first["exit_code"] == EXIT_FAILED and not first["rebuilt"]
    history = next(r for r in first["releases"] if r["release_id"] == "history")
    assert (history["status"], history["stage"]) == ("failed", "rebuild")
    assert [r["status"] for r in first["releases"] if r["release_id"] != "history"] == [
        "published", "published"]
    blocker.unlink()
    code, again = hcpcs("run", "--source", str(folder), "--data-dir", str(data_dir))
    assert code == EXIT_NOTHING_NEW and again["rebuilt"]  # nothing new, but history caught up
    assert query(data_dir, "SELECT count(*) FROM releases") == [(2,)]


def test_a_second_publisher_is_refused_clearly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from warehouse.lock import publish_lock\n"
         f"with publish_lock({str(data_dir)!r}):\n    print('held', flush=True)\n"
         "    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        result = runner.invoke(app, ["run", "--data-dir", str(data_dir)])
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == EXIT_FAILED
    assert "the refresh flow could not run: LockBusyError: another publisher holds" in (
        result.stderr)
    assert f"(pid {holder.pid})" in result.stderr
    assert not (data_dir / "parquet").exists()
