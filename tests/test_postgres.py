"""``hcpcs load``: the database into a real PostgreSQL 15 server (``tests.pg_server``), checked with
an independent client (psycopg): first load, a no-op load, an added release, a kill -9 mid-load, a
dropped connection, a server restart, a schema of another version, another data directory, no
password anywhere, and the flow's own load step."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from contracts.paths import DataDir
from flows.summary import EXIT_FAILED, EXIT_NOTHING_NEW, EXIT_PUBLISHED
from tests.conftest import ROOT
from tests.pg_server import PASSWORD
from tests.test_faults import HCPCS, own_env
from tests.test_flows import hcpcs
from warehouse.postgres import (
    LOAD_SCHEMA_VERSION,
    LoadConnectionError,
    LoadError,
    Target,
    load,
)
from warehouse.tables import table

SCHEMA = "hcpcs"


@pytest.fixture(scope="module")
def demo_before(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo releases up to 2025-Q3 (eight, with the 2024-Q3 re-issue)."""
    data_dir = tmp_path_factory.mktemp("before") / "data"
    code, _ = hcpcs("backfill", "--source", "demo", "--last", "2025-Q3", "-d", str(data_dir))
    assert code == EXIT_PUBLISHED
    return data_dir


@pytest.fixture(scope="module")
def demo_after(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All nine demo releases: ``demo_before`` and 2025-Q4 (the same bytes for the same ids)."""
    data_dir = tmp_path_factory.mktemp("after") / "data"
    code, _ = hcpcs("run", "-d", str(data_dir))
    assert code == EXIT_PUBLISHED
    return data_dir


def rows_of(con: Any, sql: str) -> list[tuple]:
    return [tuple(r) for r in con.execute(sql).fetchall()]


def normal(value: Any) -> Any:
    """A value as both clients can give it: JSON text parsed, structs as JSON (dates as text)."""
    if isinstance(value, list | dict):
        return json.loads(json.dumps(value, default=str))
    if isinstance(value, str) and value[:1] in "[{" and value[-1:] in "]}":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def assert_same(pg_server, url: str, data_dir: Path, sample: str | None = None) -> None:
    """Every table of the target holds exactly DuckDB's rows (all of them, compared in key
    order; ``codes`` only for ``sample`` when given)."""
    with duckdb.connect(str(DataDir(data_dir).database), read_only=True) as duck, \
            pg_server.connect(url) as pg:
        tables = [t for (t,) in duck.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        assert sorted(tables) == sorted(t for (t,) in rows_of(pg, (
            "SELECT tablename FROM pg_tables WHERE schemaname = 'hcpcs' AND tablename NOT IN "
            "('load_state', 'loaded_releases', 'loaded_slices')")))
        for name in tables:
            key = ", ".join(f'"{c}"' for c in table(name).key)
            where = f" WHERE code = '{sample}'" if sample and name == "codes" else ""
            cols = [c for (c,) in duck.execute(
                f"SELECT column_name FROM duckdb_columns() WHERE table_name = '{name}' "
                "ORDER BY column_index").fetchall()]
            select = ", ".join(f'"{c}"' for c in cols)
            order = f" ORDER BY {key} NULLS FIRST"
            ours = rows_of(duck, f'SELECT {select} FROM "{name}"{where}{order}')
            theirs = rows_of(pg, f'SELECT {select} FROM hcpcs."{name}"{where}{order}')
            assert len(theirs) == len(ours), name
            assert [tuple(map(normal, r)) for r in theirs] == \
                [tuple(map(normal, r)) for r in ours], name


def held(pg_server, url: str) -> dict[str, Any]:
    """What the target says it holds: releases, and row counts of the main tables."""
    with pg_server.connect(url) as pg:
        return {"loaded": rows_of(pg, "SELECT release_id FROM hcpcs.loaded_releases ORDER BY 1"),
                **{t: pg.execute(f"SELECT count(*) FROM hcpcs.{t}").fetchone()[0]
                   for t in ("codes", "code_history", "code_changes", "releases")}}


def test_first_load_of_the_real_releases_equals_duckdb(pg_server, pg_url: str,
                                                       backfill: tuple[Path, dict]) -> None:
    data_dir, _ = backfill
    result = load(data_dir, pg_url)
    assert (result.status, result.created) == ("loaded", True)
    assert result.added_releases == ["2016-Q1", "2017-Q1", "2019-Q1", "2020-Q2", "2020-Q3",
                                     "2020-Q4"]
    assert result.slices["codes/2019-Q1"] == 6800
    got = held(pg_server, pg_url)
    assert got["codes"] == 41_042 and got["releases"] == 6
    assert_same(pg_server, pg_url, data_dir)
    with pg_server.connect(pg_url) as pg:  # the seed's code, as published
        row = pg.execute("SELECT long_description, coverage_code, betos, pricing_indicators "
                         "FROM hcpcs.codes WHERE code = 'S2107' AND release_id = '2019-Q1'"
                         ).fetchone()
    assert row[1:] == ("I", "Z2", ["00"])  # as the seed page shows it
    assert row[0].startswith("Adoptive immunotherapy")


def test_comments_are_in_pg_description(pg_server, pg_url: str, demo_after: Path) -> None:
    load(demo_after, pg_url)
    with duckdb.connect(str(DataDir(demo_after).database), read_only=True) as duck:
        ours = rows_of(duck, "SELECT c.table_name, column_name, c.comment "
                             "FROM duckdb_columns() c JOIN duckdb_tables() USING (table_oid) "
                             "WHERE c.comment IS NOT NULL ORDER BY ALL")
        tables = rows_of(duck, "SELECT table_name, comment FROM duckdb_tables() "
                               "WHERE comment IS NOT NULL ORDER BY ALL")
        columns = duck.execute("SELECT count(*) FROM duckdb_columns() JOIN duckdb_tables() "
                               "USING (table_oid)").fetchone()[0]
    with pg_server.connect(pg_url) as pg:
        theirs = rows_of(pg, """
            SELECT c.relname, a.attname, col_description(c.oid, a.attnum)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
            WHERE n.nspname = 'hcpcs' AND c.relkind = 'r'
              AND col_description(c.oid, a.attnum) IS NOT NULL
              AND c.relname NOT LIKE 'load%' ORDER BY 1, 2, 3""")
        their_tables = rows_of(pg, """
            SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'hcpcs'
              AND c.relkind = 'r' AND obj_description(c.oid, 'pg_class') IS NOT NULL
              AND c.relname NOT LIKE 'load%' ORDER BY 1, 2""")
    assert len(ours) == columns and len(tables) == 23  # every table and column has one
    assert sorted(theirs) == sorted(ours)
    assert sorted(their_tables) == sorted(tables)


def test_keys_and_indexes(pg_server, pg_url: str, demo_after: Path) -> None:
    load(demo_after, pg_url)
    with pg_server.connect(pg_url) as pg:
        keys = dict(rows_of(pg, """
            SELECT rel.relname, pg_get_constraintdef(con.oid) FROM pg_constraint con
            JOIN pg_class rel ON rel.oid = con.conrelid JOIN pg_namespace n
              ON n.oid = rel.relnamespace WHERE n.nspname = 'hcpcs' AND con.contype IN ('p', 'u')
        """))
        indexes = {r[0] for r in rows_of(pg, "SELECT indexname FROM pg_indexes "
                                             "WHERE schemaname = 'hcpcs'")}
    assert keys["codes"] == "PRIMARY KEY (release_id, code)"
    assert keys["code_history"] == "PRIMARY KEY (code, version)"
    assert keys["code_changes"] == ("UNIQUE NULLS NOT DISTINCT (release_id, code, change_type, "
                                    "field)")
    assert keys["lookup_betos"] == "PRIMARY KEY (code)"
    assert {"codes_code_idx", "code_history_valid_from_date_valid_to_date_idx",
            "code_changes_code_idx"} <= indexes


def test_a_second_load_changes_nothing(pg_server, pg_url: str, demo_after: Path) -> None:
    load(demo_after, pg_url)
    with pg_server.connect(pg_url) as pg:
        before = rows_of(pg, "SELECT table_name, release_id, loaded_at FROM hcpcs.loaded_slices "
                             "ORDER BY 1, 2")
        xmin = rows_of(pg, "SELECT xmin::text FROM hcpcs.codes ORDER BY release_id, code")
    result = load(demo_after, pg_url)
    assert (result.status, result.slices, result.releases) == ("unchanged", {}, 9)
    assert result.lines()[0].startswith("nothing new: postgresql://hcpcs_admin:***@")
    with pg_server.connect(pg_url) as pg:  # no row rewritten
        assert rows_of(pg, "SELECT table_name, release_id, loaded_at FROM hcpcs.loaded_slices "
                           "ORDER BY 1, 2") == before
        assert rows_of(pg, "SELECT xmin::text FROM hcpcs.codes ORDER BY release_id, code") == xmin


def test_an_added_release_adds_its_rows_and_updates_history(pg_server, pg_url: str,
                                                            demo_before: Path,
                                                            demo_after: Path) -> None:
    first = load(demo_before, pg_url)
    assert first.added_releases[-1] == "2025-Q3"
    with pg_server.connect(pg_url) as pg:
        old_codes = rows_of(pg, "SELECT release_id, code, xmin::text FROM hcpcs.codes "
                                "ORDER BY 1, 2")
    second = load(demo_after, pg_url)
    assert second.added_releases == ["2025-Q4"]
    # the new release's rows, and the tables derived from all releases; no earlier codes rows
    assert {s for s in second.slices if s.startswith("codes/")} == {"codes/2025-Q4"}
    assert {"code_history", "code_changes", "releases"} <= set(second.slices)
    with pg_server.connect(pg_url) as pg:
        assert rows_of(pg, "SELECT release_id, code, xmin::text FROM hcpcs.codes "
                           "WHERE release_id <> '2025-Q4' ORDER BY 1, 2") == old_codes
    assert_same(pg_server, pg_url, demo_after)


def test_another_data_directory_is_refused(pg_server, pg_url: str, demo_after: Path,
                                           backfill: tuple[Path, dict]) -> None:
    load(demo_after, pg_url)
    before = held(pg_server, pg_url)
    with pytest.raises(LoadError, match=r"holds release\(s\) 2024-Q1, .*another data directory"):
        load(backfill[0], pg_url)
    assert held(pg_server, pg_url) == before


def test_a_schema_of_another_version_is_refused_until_migrated(pg_server, pg_url: str,
                                                               demo_after: Path) -> None:
    load(demo_after, pg_url)
    with pg_server.connect(pg_url) as pg:
        pg.execute("UPDATE hcpcs.load_state SET schema_version = 0")
    before = held(pg_server, pg_url)
    proc = subprocess.run([HCPCS, "load", pg_url, "-d", str(demo_after)], cwd=ROOT, text=True,
                          capture_output=True, env=own_env(), timeout=120)
    assert proc.returncode == EXIT_FAILED
    assert "schema hcpcs holds schema version 0" in proc.stderr
    assert f"this hcpcs writes schema version {LOAD_SCHEMA_VERSION}" in proc.stderr
    assert "Nothing was changed" in proc.stderr
    assert "hcpcs load 'postgresql://hcpcs_admin:***@127.0.0.1:" in proc.stderr
    assert "--schema hcpcs --migrate" in proc.stderr
    assert held(pg_server, pg_url) == before
    result = load(demo_after, pg_url, migrate=True)
    assert (result.status, result.created, len(result.added_releases)) == ("loaded", True, 9)
    with pg_server.connect(pg_url) as pg:
        assert pg.execute("SELECT schema_version FROM hcpcs.load_state").fetchone() == (1,)
    assert_same(pg_server, pg_url, demo_after)


def test_a_schema_not_made_by_hcpcs_is_refused(pg_server, pg_url: str, demo_after: Path) -> None:
    with pg_server.connect(pg_url) as pg:
        pg.execute("CREATE SCHEMA hcpcs; CREATE TABLE hcpcs.mine (x int)")
    with pytest.raises(LoadError, match="no hcpcs load state"):
        load(demo_after, pg_url)
    with pg_server.connect(pg_url) as pg:
        assert rows_of(pg, "SELECT tablename FROM pg_tables WHERE schemaname = 'hcpcs'") == \
            [("mine",)]


def _loader_waiting(pg_server, url: str) -> int | None:
    """The pid of the load's backend once it waits for the test's lock, else None."""
    with pg_server.connect(url) as pg:
        row = pg.execute("SELECT pid FROM pg_stat_activity WHERE application_name = "
                         "'hcpcs load' AND wait_event_type = 'Lock'").fetchone()
    return row[0] if row else None


def _interrupted(pg_server, url: str, data_dir: Path,
                 interrupt: Callable[[subprocess.Popen, int], None]) -> subprocess.Popen:
    """Start ``hcpcs load`` of ``data_dir`` while the test holds a lock on ``code_history``, so
    the load stops mid-way (``code_changes`` already rewritten in its transaction); interrupt
    it there; then let go of the lock. The load's process, finished."""
    holder = pg_server.connect(url)
    holder.autocommit = False
    holder.execute("LOCK TABLE hcpcs.code_history IN ACCESS EXCLUSIVE MODE")
    proc = subprocess.Popen([HCPCS, "load", url, "-d", str(data_dir)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=own_env())
    try:
        deadline = time.monotonic() + 60
        while (pid := _loader_waiting(pg_server, url)) is None:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the load never reached the locked table"
            time.sleep(0.05)
        with pg_server.connect(url) as pg:  # it had written rows, in its transaction
            assert pg.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND relation = "
                              "'hcpcs.code_changes'::regclass AND mode = 'RowExclusiveLock'",
                              [pid]).fetchone() == (1,)
        interrupt(proc, pid)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        try:
            holder.rollback()
            holder.close()
        except Exception:  # the restart test cut this connection too
            pass
    return proc


def _completes(pg_server, url: str, before_dir: Path, after_dir: Path,
               interrupt: Callable[[subprocess.Popen, int], None]) -> subprocess.Popen:
    load(before_dir, url)
    before = held(pg_server, url)
    proc = _interrupted(pg_server, url, after_dir, interrupt)
    assert held(pg_server, url) == before  # the target as it was
    again = load(after_dir, url)
    assert again.added_releases == ["2025-Q4"]
    assert_same(pg_server, url, after_dir)
    return proc


def test_kill_9_mid_load_leaves_the_target_as_it_was(pg_server, pg_url: str, demo_before: Path,
                                                     demo_after: Path) -> None:
    proc = _completes(pg_server, pg_url, demo_before, demo_after,
                      lambda p, _: p.send_signal(signal.SIGKILL))
    assert proc.returncode == -signal.SIGKILL


def test_a_dropped_connection_fails_cleanly(pg_server, pg_url: str, demo_before: Path,
                                            demo_after: Path) -> None:
    def terminate(_: subprocess.Popen, pid: int) -> None:
        with pg_server.connect(pg_url) as pg:
            pg.execute("SELECT pg_terminate_backend(%s)", [pid])

    proc = _completes(pg_server, pg_url, demo_before, demo_after, terminate)
    _, err = proc.communicate()
    assert proc.returncode == EXIT_FAILED, err
    assert "the connection was lost" in err and "the target is as it was" in err
    assert "run it again" in err and "Traceback" not in err


def test_a_server_restart_mid_load(pg_server, pg_url: str, demo_before: Path,
                                   demo_after: Path) -> None:
    proc = _completes(pg_server, pg_url, demo_before, demo_after,
                      lambda p, _: pg_server.restart())
    assert proc.returncode == EXIT_FAILED
    assert "the connection was lost" in proc.communicate()[1]


def test_an_unreachable_server_is_a_transient_error(tmp_path: Path, demo_after: Path) -> None:
    with pytest.raises(LoadConnectionError, match=r"could not be reached.*Connection refused"):
        load(demo_after, "postgresql://nobody:pw@127.0.0.1:9/x")


def test_credentials_from_pg_environment_and_no_password_anywhere(pg_server, pg_url: str,
                                                                  demo_after: Path) -> None:
    db = pg_url.rsplit("/", 1)[1]
    env = own_env(PGHOST="127.0.0.1", PGPORT=str(pg_server.port), PGUSER="hcpcs_admin",
                  PGPASSWORD=PASSWORD, PGDATABASE=db)
    ok = subprocess.run([HCPCS, "load", "postgresql://", "-d", str(demo_after), "--json"],
                        cwd=ROOT, text=True, capture_output=True, env=env, timeout=120)
    assert ok.returncode == EXIT_PUBLISHED, ok.stderr
    assert json.loads(ok.stdout)["added_releases"][-1] == "2025-Q4"
    wrong = subprocess.run([HCPCS, "load", pg_server.url(db).replace("Pw%27d", "Pw-wrong"),
                            "-d", str(demo_after)], cwd=ROOT, text=True, capture_output=True,
                           env=own_env(), timeout=120)
    assert wrong.returncode == EXIT_FAILED
    assert "password authentication failed" in wrong.stderr
    with_url = subprocess.run([HCPCS, "load", pg_url, "-d", str(demo_after)], cwd=ROOT,
                              text=True, capture_output=True, env=own_env(), timeout=120)
    assert with_url.returncode == EXIT_NOTHING_NEW, with_url.stderr
    for out in (ok.stdout, ok.stderr, wrong.stdout, wrong.stderr, with_url.stdout,
                with_url.stderr):
        assert "s3cret" not in out  # neither the password nor the wrong one (s3cret-Pw-wrong)
    with pg_server.connect(db) as pg:
        dump = json.dumps(rows_of(pg, "SELECT * FROM hcpcs.load_state") +
                          rows_of(pg, "SELECT * FROM hcpcs.loaded_slices"), default=str)
    assert "s3cret" not in dump


def test_every_run_loads_its_target(pg_server, pg_url: str, tmp_path: Path) -> None:
    """HCPCS_LOAD_TARGET: the run loads after the rebuild; the password never reaches the run
    report (it moves to PGPASSWORD), and a run with nothing new has nothing to load."""
    data_dir = tmp_path / "data"
    env = own_env(HCPCS_LOAD_TARGET=pg_url, HCPCS_LOAD_SCHEMA="codes_set")
    first = subprocess.run([HCPCS, "run", "-q", "-d", str(data_dir)], cwd=ROOT, text=True,
                           capture_output=True, env=env, timeout=300)
    assert first.returncode == EXIT_PUBLISHED, first.stderr
    assert "loaded " in first.stdout and "(schema codes_set) in" in first.stdout
    report = (DataDir(data_dir).last_run).read_text()
    assert json.loads(report)["loaded"][0].startswith("loaded ")
    assert "s3cret" not in report + first.stdout + first.stderr
    with pg_server.connect(pg_url) as pg:
        assert pg.execute("SELECT count(*) FROM codes_set.loaded_releases").fetchone() == (9,)
    again = subprocess.run([HCPCS, "run", "-q", "-d", str(data_dir)], cwd=ROOT, text=True,
                           capture_output=True, env=env, timeout=300)
    assert again.returncode == EXIT_NOTHING_NEW, again.stderr
    assert "nothing new: postgresql://hcpcs_admin@127.0.0.1:" in again.stdout


def test_a_failed_load_fails_the_run_and_the_next_catches_up(pg_server, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    url = pg_server.url("not_yet")
    code, _ = hcpcs("run", "-d", str(data_dir))  # published, without a target
    assert code == EXIT_PUBLISHED
    env = own_env(HCPCS_LOAD_TARGET=url)
    failed = subprocess.run([HCPCS, "run", "-q", "-d", str(data_dir), "--json"], cwd=ROOT,
                            text=True, capture_output=True, env=env, timeout=300)
    assert failed.returncode == EXIT_FAILED
    outcome = json.loads(failed.stdout)["releases"][-1]
    assert (outcome["release_id"], outcome["status"], outcome["stage"]) == \
        ("load", "failed", "load")
    assert 'database "not_yet" does not exist' in outcome["message"]
    pg_server.create_database("not_yet")
    caught_up = subprocess.run([HCPCS, "run", "-q", "-d", str(data_dir), "--json"], cwd=ROOT,
                               text=True, capture_output=True, env=env, timeout=300)
    assert caught_up.returncode == EXIT_NOTHING_NEW
    assert json.loads(caught_up.stdout)["loaded"][0].startswith("loaded ")


@pytest.mark.parametrize(("args", "message"), [
    ([], "no target: give a postgresql:// URL or set HCPCS_LOAD_TARGET"),
    (["mysql://x@y/z"], "not a PostgreSQL URL"),
    (["postgresql://x@y/z", "--schema", "drop table"], "use letters, digits and _ only"),
])
def test_bad_arguments(tmp_path: Path, demo_after: Path, args: list[str], message: str) -> None:
    proc = subprocess.run([HCPCS, "load", *args, "-d", str(demo_after)], cwd=ROOT, text=True,
                          capture_output=True, env=own_env(), timeout=60)
    assert proc.returncode in (1, 2) and message in proc.stderr


def test_no_database_is_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run([HCPCS, "load", "postgresql://x@y/z", "-d", str(tmp_path)], cwd=ROOT,
                          text=True, capture_output=True, env=own_env(), timeout=60)
    assert proc.returncode == 2 and "no database to load; run `hcpcs run`" in proc.stderr


def _waiting_for_each_other(pg_server, url: str) -> int:
    """How many loads wait for the schema's advisory lock."""
    with pg_server.connect(url) as pg:
        return pg.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                          "'hcpcs load' AND wait_event = 'advisory'").fetchone()[0]


def test_two_loads_at_once_take_turns(pg_server, pg_url: str, demo_after: Path) -> None:
    """Both wait for the schema's advisory lock (held here until both are waiting); then one
    loads and the other finds nothing new."""
    holder = pg_server.connect(pg_url)
    holder.execute("SELECT pg_advisory_lock(hashtext('hcpcs load hcpcs'))")
    procs = [subprocess.Popen([HCPCS, "load", pg_url, "-d", str(demo_after)], cwd=ROOT,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=own_env()) for _ in range(2)]
    try:
        deadline = time.monotonic() + 60
        while _waiting_for_each_other(pg_server, pg_url) != 2:
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() < deadline, "the loads never waited for each other"
            time.sleep(0.05)
        holder.execute("SELECT pg_advisory_unlock(hashtext('hcpcs load hcpcs'))")
        codes = sorted(p.wait(timeout=120) for p in procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        holder.close()
    assert codes == [EXIT_PUBLISHED, EXIT_NOTHING_NEW], [p.communicate() for p in procs]
    assert held(pg_server, pg_url)["loaded"] == [(r,) for r in (
        "2024-Q1", "2024-Q2", "2024-Q3", "2024-Q3r2", "2024-Q4", "2025-Q1", "2025-Q2", "2025-Q3",
        "2025-Q4")]


def test_the_password_is_kept_apart_from_the_connection_string() -> None:
    """It goes to DuckDB as a secret; the connection string (which DuckDB's errors quote) and
    what is shown never hold it."""
    target = Target.parse("postgresql://me:p%40ss@db.example:6543/wh?sslmode=require", "s1")
    assert target.conninfo == ("host='db.example' port='6543' user='me' dbname='wh' "
                               "sslmode='require' application_name='hcpcs load'")
    assert (target.password, target.schema) == ("p@ss", "s1")
    assert target.shown == "postgresql://me:***@db.example:6543/wh?sslmode=require"
    bare = Target.parse("postgresql://")
    assert (bare.conninfo, bare.password) == ("application_name='hcpcs load'", None)
