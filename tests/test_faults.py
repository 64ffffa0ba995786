"""The operator's fault campaign, as real processes: `hcpcs run` killed with SIGKILL at each stage
leaves no server, no corruption, nothing a later run cannot finish; no network, a read-only or a
full data directory, bad arguments: one clear line and the exit status the help promises."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import CliRunner

from contracts.paths import DataDir
from flows.cli import app
from flows.summary import EXIT_FAILED, EXIT_NOTHING_NEW, EXIT_PUBLISHED
from sources.demo import DEMO_QUARTERS
from tests.conftest import ROOT
from tests.test_flows import query

HCPCS = str(Path(sys.executable).with_name("hcpcs"))
runner = CliRunner()


def children(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        kids = [p for p, parent in parents.items() if parent == current]
        found += kids
        frontier += kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def own_env(**extra: str) -> dict[str, str]:
    """This environment as on an operator's machine: without the Prefect server this test process
    may have started (the command starts, and must end, its own), nor the console log level the
    command line set in this process when tests ran it in-process."""
    dropped = {"PREFECT_API_URL", "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"}
    return {k: v for k, v in {**os.environ, **extra}.items() if k not in dropped}


def hcpcs_process(*args: str, env: dict[str, str] | None = None,
                  **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen([HCPCS, *args], cwd=ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=own_env(**(env or {})), **kwargs)


def kill_when(data_dir: Path, ready: Callable[[], bool], timeout: float = 240) -> list[int]:
    """Start `hcpcs run` on the demo, SIGKILL it once ``ready()``; the processes it had started
    that are still alive a few seconds later (killed then, so a failure leaves none behind)."""
    proc = subprocess.Popen([HCPCS, "run", "--data-dir", str(data_dir), "--quiet"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=own_env())
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, "the run ended before the kill point"
        assert time.monotonic() < deadline, "kill point never reached"
        time.sleep(0.02)
    started = children(proc.pid)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    return survivors(started)


def survivors(started: list[int]) -> list[int]:
    """Those of ``started`` still alive 15 s after their parent was killed (killed now, so a
    failure leaves none behind)."""
    end = time.monotonic() + 15
    while any(alive(p) for p in started) and time.monotonic() < end:
        time.sleep(0.1)
    left = [p for p in started if alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


def test_kill_9_at_every_stage_leaves_no_orphan_and_no_corruption(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    paths = DataDir(data_dir)
    releases = paths.releases
    before_tmp = set(Path("/tmp").glob("hcpcs-*"))
    kill_points: dict[str, Callable[[], bool]] = {
        "fetching": lambda: (paths.raw / ".tmp").exists(),
        "mid-publish": lambda: any(releases.glob(".release=*.tmp-*")) or any(
            releases.glob("release=2024-Q3")),
        "mid-rebuild": lambda: any(data_dir.glob(".hcpcs.duckdb.tmp-*")),
    }
    for point, ready in kill_points.items():
        assert kill_when(data_dir, ready) == [], f"processes left after a kill {point}"
    # whatever the kills left, the next run sweeps and finishes; the doctor then finds nothing
    proc = hcpcs_process("run", "--data-dir", str(data_dir), "--quiet", "--json")
    _, err = proc.communicate(timeout=400)
    assert proc.returncode == EXIT_NOTHING_NEW, err  # all published before the last kill
    assert query(data_dir, "SELECT count(*) FROM releases") == [(len(DEMO_QUARTERS),)]
    doctor = runner.invoke(app, ["doctor", "--data-dir", str(data_dir)])
    assert doctor.exit_code == 0, doctor.output
    published = sorted(p.name for p in releases.iterdir())
    assert published == sorted(f"release={q.release}" for q in DEMO_QUARTERS)
    assert [p for p in data_dir.rglob("*") if ".tmp" in str(p.relative_to(data_dir))
            and (p.is_file() or p.name != ".tmp")] == []  # empty scratch folders only
    assert set(Path("/tmp").glob("hcpcs-*")) == before_tmp


def test_a_local_run_starts_no_process(tmp_path: Path) -> None:
    """Without PREFECT_API_URL a run is local: no Prefect server, no other process."""
    proc = hcpcs_process("run", "--data-dir", str(tmp_path / "data"), "--quiet")
    seen: set[int] = set()
    while proc.poll() is None:
        seen |= set(children(proc.pid))
        time.sleep(0.05)
    assert proc.returncode == EXIT_PUBLISHED, proc.communicate()
    assert seen == set()


def test_kill_9_of_serve_leaves_no_server(tmp_path: Path) -> None:
    """`hcpcs serve` starts Prefect's server for itself; killed -9, the server goes with it."""
    proc = hcpcs_process("serve", "--source", "demo", "--data-dir", str(tmp_path / "data"))
    try:
        line = ""
        deadline = time.monotonic() + 240
        while "serving deployment" not in line:  # the deployment is registered: server is up
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "serve never registered its deployment"
            line = proc.stderr.readline()
        started = children(proc.pid)
        assert started, "serve started no server: nothing to check"
    finally:
        proc.kill()
        proc.wait()
    assert survivors(started) == []


def test_no_network_is_one_line_and_quick(tmp_path: Path) -> None:
    """Three releases on a host that does not resolve: one failure line naming the cause, the
    other two not tried, no traceback, well within 30 s."""
    urls = tmp_path / "urls.txt"
    urls.write_text("".join(f"https://hcpcs.invalid/{q}-alpha-numeric-hcpcs-file.zip\n"
                            for q in ("2024", "january-2025", "april-2025")))
    started = time.monotonic()
    proc = hcpcs_process("run", "--source", str(urls), "--data-dir", str(tmp_path / "data"),
                         "--quiet")
    out, err = proc.communicate(timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == EXIT_FAILED
    assert elapsed < 30, elapsed
    assert "Traceback" not in out + err
    failed = [line for line in out.splitlines() if "FAILED at" in line]
    assert len(failed) == 1, out
    assert "cannot resolve host hcpcs.invalid" in failed[0]
    assert failed[0].endswith("(2 more file(s) from hcpcs.invalid not tried)")


@contextmanager
def read_only(folder: Path) -> Iterator[str]:
    """``folder`` made read-only: by its mode for a normal user, by a read-only bind mount for
    root (whom modes do not stop); yields the error the system gives on writing."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield "Permission denied"
        finally:
            folder.chmod(0o755)
        return
    made = subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot bind-mount read-only here ({made.stderr.strip()})")
    try:
        yield "Read-only file system"
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_read_only_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with read_only(data_dir) as cause:
        proc = hcpcs_process("run", "--data-dir", str(data_dir), "--quiet")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, (out, err)
    assert err == (f"error: {data_dir}: cannot write to the data directory ({cause}); "
                   "choose another --data-dir or free it up\n")


def test_full_disk_is_a_clear_error(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.strip()}): needs root")
    try:
        result = runner.invoke(app, ["run", "--data-dir", str(mount / "data"), "--quiet"])
    finally:
        subprocess.run(["umount", str(mount)], check=True)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {mount / 'data'}: only ")
    assert result.stderr.endswith(" MiB free on its disk; a run needs 64 MiB: free some space "
                                  "first\n")


def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, cms_dir: Path) -> None:
    txt = str(cms_dir / "2016-annual" / "HCPC2016_CONTR_ANWEB.txt")
    cases = {
        ("run", "--source", str(tmp_path / "nowhere"), "--data-dir", str(tmp_path / "d")): (
            f"error: {tmp_path / 'nowhere'}: no such file or folder, and not a known source"),
        ("parse", txt, "-o", str(tmp_path)): (
            f"error: {tmp_path}: is a folder; give the Parquet file to write, e.g. "
            f"{tmp_path / 'codes.parquet'}"),
        ("diff", "2024-Q1", "2024-Q2", "--type", "typo", "--data-dir", str(tmp_path)): (
            "error: --type 'typo' is not a change type; those are: added, "),
    }
    for args, message in cases.items():
        result = runner.invoke(app, list(args))
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith(message), result.stderr
        assert len(result.stderr.splitlines()) == 1


class _BasicAuthHandler(http.server.SimpleHTTPRequestHandler):
    """Serves its folder only to user `hcpcs` with password `s3cr3t-pw`."""

    def do_GET(self) -> None:
        wanted = "Basic " + base64.b64encode(b"hcpcs:s3cr3t-pw").decode()
        if self.headers.get("Authorization") != wanted:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="cms"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_credentials_in_a_source_url_are_used_and_never_kept(tmp_path: Path, tracked) -> None:
    """The download authenticates; the password is nowhere: not in the data directory, the run's
    output, nor (a tracked run) Prefect's flow run parameters and task run names."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from sources.demo import write_demo_releases
    from tests.test_flows import hcpcs

    served = tmp_path / "served"
    zip_path = write_demo_releases(tmp_path / "demo")[0]
    served.mkdir()
    (served / zip_path.name).write_bytes(zip_path.read_bytes())
    handler = functools.partial(_BasicAuthHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://hcpcs:s3cr3t-pw@127.0.0.1:{server.server_port}/{zip_path.name}"
        data_dir = tmp_path / "data"
        code, doc = hcpcs("run", "--source", url, "--data-dir", str(data_dir))
    finally:
        server.shutdown()
    assert code == EXIT_PUBLISHED, doc
    assert doc["releases"][0]["source_url"] == (
        f"http://127.0.0.1:{server.server_port}/{zip_path.name}")
    assert "s3cr3t" not in json.dumps(doc)
    assert [p for p in data_dir.rglob("*") if p.is_file() and b"s3cr3t" in p.read_bytes()] == []
    this_run = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(doc["flow_run_id"])]))
    with get_client(sync_client=True) as client:
        [flow_run] = client.read_flow_runs(flow_run_filter=this_run)
        task_runs = client.read_task_runs(flow_run_filter=this_run)
    assert "s3cr3t" not in json.dumps(flow_run.parameters, default=str)
    names = [t.name for t in task_runs]
    assert f"fetch http://127.0.0.1:{server.server_port}/{zip_path.name}" in names
    assert not [n for n in names if "s3cr3t" in n]
