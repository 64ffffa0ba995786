"""Benchmark (issue 14): the whole pipeline against a plain script doing the same work.

Each round, in fresh folders: the plain script (``plain_pipeline.py``: same parser, same rules in
Polars, Parquet, DuckDB history and changes) and ``hcpcs run`` on the real 2016, 2017 and 2019
releases, without its release report (``HCPCS_REPORT_WRITE=false``: the plain script writes
none; the run with it is a row of its own, with no target); then ``hcpcs code S2107`` against
a bare ``python -c "import duckdb; ..."`` of the same query (median of several runs); and a
scheduled run inside a warm ``hcpcs serve`` process (``warm_serve.py``: its second flow run, no
report either; its peak is the whole serve process's, Prefect's server and both runs included).
Every command is a subprocess, timed wall clock, with its peak memory summed over its whole
process tree. Prints a table per round with the ratios and the issue's targets, then the median
over rounds; asserts only that the commands succeeded and published the same codes. Prefect's
home is one temporary folder for the whole benchmark, so the first round also creates its
database there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psutil
import pytest

from contracts.paths import DB_NAME
from contracts.settings import OFFLINE_ENV
from expectations.gate import run_gate
from expectations.suite import Check
from tests.bench.plain_pipeline import gate, measure
from tests.conftest import REAL_RELEASES

pytestmark = [pytest.mark.bench, pytest.mark.timeout(1800)]

ROUNDS = 3
QUERY_RUNS = 5
SAMPLE_SECONDS = 0.02
CODE = "S2107"
#: Codes each release publishes, in both pipelines.
EXPECTED = {"2016-Q1": 6_293, "2017-Q1": 6_498, "2019-Q1": 6_800}
PLAIN = Path(__file__).with_name("plain_pipeline.py")
WARM_SERVE = Path(__file__).with_name("warm_serve.py")
HCPCS = Path(sys.executable).with_name("hcpcs")
BARE = ("import duckdb; print(duckdb.connect({db!r}, read_only=True)"
        f".sql(\"SELECT * FROM hcpcs_code('{CODE}')\").fetchall())")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Timed:
    """One command's wall time and the peak of its process tree's summed RSS."""

    seconds: float
    peak_mib: float
    stdout: str


@dataclass(frozen=True)
class Row:
    """One measure of this project against its peer, with the issue's target ratio."""

    measure: str
    ours: Timed
    peer: Timed
    target: float
    round_ratios: tuple[float, ...] = ()  # a median row: each round's ratio

    @property
    def ratio(self) -> float:
        """Over rounds, the median of each round's ratio: its two sides ran back to back, under
        the same load; else this row's own."""
        if self.round_ratios:
            return statistics.median(self.round_ratios)
        return self.ours.seconds / self.peer.seconds


def _tree_rss(root: psutil.Process) -> int:
    """RSS of ``root`` and every live descendant (a process gone meanwhile counts nothing)."""
    try:
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def timed(command: list[str], env: dict[str, str], cwd: Path) -> Timed:
    """Run ``command`` to its end, sampling its process tree's memory every 20 ms on a thread;
    fails the benchmark, with the end of the command's output, when it exits non-zero."""
    done = threading.Event()
    peak = [0]
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=cwd, text=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    root = psutil.Process(proc.pid)

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            peak[0] = max(peak[0], _tree_rss(root))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    assert proc.returncode == 0, (f"{' '.join(command)}: exit {proc.returncode}\n"
                                  f"{out[-3000:]}\n{err[-3000:]}")
    return Timed(seconds, peak[0] / MIB, out)


def timed_median(command: list[str], env: dict[str, str], cwd: Path) -> Timed:
    """Median wall time of ``QUERY_RUNS`` runs, with the highest peak among them."""
    runs = [timed(command, env, cwd) for _ in range(QUERY_RUNS)]
    return Timed(statistics.median(r.seconds for r in runs), max(r.peak_mib for r in runs),
                 runs[0].stdout)


def code_counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return dict(con.sql("SELECT release_id, count(*) FROM codes GROUP BY ALL").fetchall())


def one_round(source: Path, work: Path, env: dict[str, str]) -> list[Row]:
    """Every measure once, in new folders under ``work``: one ``Row`` each (a further measure is
    one more ``Row`` built from ``timed`` results)."""
    plain_out, data_dir = work / "plain", work / "data"
    peer = timed([sys.executable, str(PLAIN), str(source), str(plain_out)], env, work)
    same_work = {**env, "HCPCS_REPORT_WRITE": "false"}  # the plain script writes no report
    ours = timed([str(HCPCS), "run", "-q", "--source", str(source), "--data-dir", str(data_dir)],
                 same_work, work)
    reported = timed([str(HCPCS), "run", "-q", "--source", str(source), "--data-dir",
                      str(work / "reported")], env, work)
    db = data_dir / DB_NAME
    assert code_counts(plain_out / "plain.duckdb") == code_counts(db) == EXPECTED
    assert (work / "reported" / "reports" / "site" / "index.html").exists()
    code = timed_median([str(HCPCS), "code", CODE, "--data-dir", str(data_dir)], env, work)
    bare = timed_median([sys.executable, "-c", BARE.format(db=str(db))], env, work)
    assert CODE in code.stdout and CODE in bare.stdout, (code.stdout, bare.stdout)
    serve = timed([sys.executable, str(WARM_SERVE), str(source), str(work / "serve")],
                  same_work, work)
    warm = json.loads(serve.stdout.splitlines()[-1])
    assert warm["state"] == "Completed", warm
    assert code_counts(work / "serve" / "warm" / DB_NAME) == EXPECTED
    return [
        Row("hcpcs run, 3 real releases, new data dir", ours, peer, 5.0),
        Row("  the same, with its release report", reported, peer, 0.0),
        Row("scheduled run in a warm hcpcs serve", Timed(warm["seconds"], serve.peak_mib, ""),
            peer, 2.0),
        Row(f"hcpcs code {CODE} (median of {QUERY_RUNS})", code, bare, 3.0),
    ]


def table(title: str, rows: list[Row]) -> str:
    lines = [title, f"  {'measure':<44} {'project':>9} {'peer':>8} {'ratio':>7} {'target':>7}"
                    f"   peak MiB project / peer"]
    for r in rows:
        target = f"{r.target:6.0f}x" if r.target else "      -"
        lines.append(f"  {r.measure:<44} {r.ours.seconds:8.2f}s {r.peer.seconds:7.2f}s "
                     f"{r.ratio:6.1f}x {target}   {r.ours.peak_mib:7.0f} / "
                     f"{r.peer.peak_mib:.0f}")
    return "\n".join(lines)


def median_row(rows: list[Row]) -> Row:
    """The median over rounds of one measure: of its times, its peaks and its ratios."""
    def mid(timings: list[Timed]) -> Timed:
        return Timed(statistics.median(t.seconds for t in timings),
                     statistics.median(t.peak_mib for t in timings), "")
    return Row(rows[0].measure, mid([r.ours for r in rows]), mid([r.peer for r in rows]),
               rows[0].target, tuple(r.ratio for r in rows))


def test_pipeline_against_plain_script(cms_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for release in EXPECTED:
        shutil.copy2(cms_dir / REAL_RELEASES[release][0], source)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(OFFLINE_ENV, PREFECT_HOME=str(tmp_path / "prefect"))
    rounds = []
    for i in range(1, ROUNDS + 1):
        work = tmp_path / f"round{i}"
        work.mkdir()
        rounds.append(one_round(source, work, env))
        print(f"\n{table(f'round {i}', rounds[-1])}")
    medians = [median_row(list(same)) for same in zip(*rounds, strict=True)]
    print(f"\n{table(f'median of {ROUNDS} rounds', medians)}")
    print(f"peak memory of the 3-release run: {medians[0].ours.peak_mib:.0f} MiB, with its "
          f"report {medians[1].ours.peak_mib:.0f} MiB (target 500 MiB; the plain script "
          f"{medians[0].peer.peak_mib:.0f} MiB)")


def _gx_failures(result) -> dict[str, int]:
    """Failures per rule as the gate counts them (a table-level rule: 1 when it failed)."""
    return {o.name: o.unexpected_count if o.column else int(not o.success)
            for o in result.outcomes}


def test_plain_rules_count_what_the_gate_counts(real_parsed) -> None:
    """The peer's Polars rules find, rule by rule, what the gate's GX suite finds, and refuse
    the same releases: the yardstick does the gate's work. A rule it cannot translate stops it."""
    previous, previous_id = None, None
    for release in EXPECTED:
        parsed = real_parsed[release]
        failures, refused = gate(parsed.codes, parsed.rejects, previous, revision=False)
        result = run_gate(parsed.codes, rejects=parsed.rejects, previous=previous,
                          release_id=release, previous_release_id=previous_id)
        assert (failures, refused) == (_gx_failures(result), [])
        previous, previous_id = parsed.codes, release
    cut = real_parsed["2017-Q1"].codes.head(5_000)  # a third of 2019's codes gone, 3 twice
    cut = cut.vstack(cut.head(3))
    failures, refused = gate(cut, real_parsed["2017-Q1"].rejects, previous, revision=True)
    result = run_gate(cut, rejects=real_parsed["2017-Q1"].rejects, previous=previous,
                      release_id="2019-Q1r2", previous_release_id="2019-Q1")
    assert failures == _gx_failures(result) and not result.passed
    assert refused == ["code_unique", "code_count_drift", "vanished_codes_share",
                       "revision_removes_codes"]
    odd = Check("mean_length", "error", "ExpectColumnMeanToBeBetween", "code", "code", "why")
    with pytest.raises(NotImplementedError,
                       match=r"^mean_length: ExpectColumnMeanToBeBetween is not translated$"):
        measure(odd)
