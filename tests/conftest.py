"""Shared fixtures: where the real CMS releases are, and an offline, project-local Prefect."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.settings import apply_offline_env

ROOT = Path(__file__).resolve().parents[1]
CMS_DIR = Path(os.environ.get("HCPCS_CMS_DIR", ROOT.parent / "shared" / "cms"))
SEED = ROOT.parent / "shared" / "seed" / "000_827e154ccfc9b144.txt"
CHROMIUM = Path("/usr/bin/chromium")
#: Every skip for want of ../shared says this, so the summary counts them in one line.
NO_SHARED = "../shared is missing"

# Prefect and GX must stay offline and keep their state inside the project (set before any import).
apply_offline_env(ROOT, force=True)

#: Real releases: release id -> (path relative to CMS_DIR, data member inside the ZIP or None).
REAL_RELEASES = {
    "2016-Q1": ("2016-annual/HCPC2016_CONTR_ANWEB.txt", None),
    "2017-Q1": ("2017-annual/2017-Alpha-Numeric-HCPCS-File.zip", "HCPC17_CONTR_ANWEB.txt"),
    "2019-Q1": ("2019-annual/2019-Alpha-Numeric-HCPCS-File.zip", "HCPC2019_CONTR_ANWEB.txt"),
}


def shared_file(path: Path, what: str) -> Path:
    """``path``, a file of ../shared (real releases, the seed page). A test that needs it skips
    when it is absent; under ``CI=true`` it fails instead: CI has ../shared beside the clone, so a
    skip there would hide the tests that read real data."""
    if not path.exists():
        message = f"{what} not found at {path}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {message}: CI runs with ../shared beside the clone",
                        pytrace=False)
        pytest.skip(f"{NO_SHARED}: {message}")
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """A skip for want of ../shared is reported at ``shared_file``, so that ``-ra`` lists them
    all in one line, not one line per test."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple) and NO_SHARED in report.longrepr[2]:
        report.longrepr = (__file__, shared_file.__code__.co_firstlineno, report.longrepr[2])
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One loud line when tests skipped for want of ../shared: a green run that read no real
    release must not pass for a full one."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if NO_SHARED in str(r.longrepr)]
    if skipped:
        terminalreporter.write_sep(
            "!", f"{len(skipped)} real-data tests SKIPPED: {NO_SHARED} ({CMS_DIR}); put the "
            "shared folder beside the clone or set HCPCS_CMS_DIR", red=True, bold=True)


@pytest.fixture(scope="session")
def cms_dir() -> Path:
    """The real CMS releases folder (../shared/cms), or a skip (a failure under CI)."""
    return shared_file(CMS_DIR / "SOURCES.md", "real CMS releases (set HCPCS_CMS_DIR)").parent


def real_txt(cms_dir: Path, release: str) -> bytes:
    """The fixed-width bytes of a real release, read from the shared folder at run time."""
    rel, member = REAL_RELEASES[release]
    path = cms_dir / rel
    if member is None:
        return path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        return zf.read(member)


@pytest.fixture(scope="session")
def real_parsed(cms_dir: Path):
    """Parsed real releases, once per session: release id -> ParseResult."""
    from transforms import parse_anweb

    return {release: parse_anweb(real_txt(cms_dir, release)) for release in REAL_RELEASES}


@pytest.fixture
def server():
    """A fault-injecting HTTP server on 127.0.0.1 (``tests.test_sources_fetch.FaultServer``)."""
    from tests.test_sources_fetch import running_server

    with running_server() as srv:
        yield srv


@pytest.fixture
def store(tmp_path: Path):
    """An empty raw store under ``tmp_path``."""
    from sources.rawstore import RawStore

    return RawStore(tmp_path / "raw")


@pytest.fixture(scope="session")
def backfill(cms_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """``hcpcs backfill`` of every real release in ../shared/cms: (data dir, --json report)."""
    from flows.summary import EXIT_PUBLISHED
    from tests.test_flows import hcpcs

    data_dir = tmp_path_factory.mktemp("shared") / "data"
    code, doc = hcpcs("backfill", "--source", str(cms_dir), "--data-dir", str(data_dir))
    assert code == EXIT_PUBLISHED, doc
    return data_dir, doc


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory: pytest.TempPathFactory):
    """A Prefect server of the tests' own, with its own database: what an operator's
    ``PREFECT_API_URL`` names. Stopped at the end of the session (and killed with it)."""
    from flows.server import start_server, stop_server

    process, url = start_server(tmp_path_factory.mktemp("prefect"), timeout=180)
    yield url
    stop_server(process)


@pytest.fixture
def tracked(prefect_api: str, monkeypatch: pytest.MonkeyPatch):
    """``PREFECT_API_URL`` set, for the command line (a tracked run) and for Prefect's client in
    this process (to read the runs back)."""
    from prefect.logging.handlers import APILogHandler
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    with temporary_settings(updates={PREFECT_API_URL: prefect_api}):
        yield prefect_api
        APILogHandler().flush()  # the runs' log lines, sent while that server still runs


@pytest.fixture(scope="session")
def pg_server():
    """A throwaway PostgreSQL 15 server on 127.0.0.1 (``tests.pg_server``), for the session.

    Without PostgreSQL binaries the tests that need it skip, saying why; under ``CI=true`` they
    fail instead (CI installs the server: a skip there would hide the tests)."""
    from tests.pg_server import PostgresServer, missing

    reason = missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server, request: pytest.FixtureRequest) -> str:
    """The URL (with its password) of a new, empty database of ``pg_server`` for one test."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:50].lower()
    return pg_server.create_database(f"{name}_{os.getpid()}")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Debian's Chromium, headless, driven by Playwright (no browser download). Missing: the
    tests skip saying so; under ``CI=true`` (which installs it) they fail instead. One per module:
    Playwright's sync API keeps an event loop in the main thread while it is open, and Prefect's
    sync calls made meanwhile (``to_deployment``) would return coroutines."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-background-networking"])
        yield chromium
        chromium.close()


# `make mutants` (docs/mutants.md): mutmut first records which functions each test calls, and later
# runs only those tests against a mutant of a function. A module- or session-scoped fixture runs
# once, inside the first test that asks for it, so what it calls (the parse of a real release, a
# gate run, a history rebuild) would count for that one test only, and a mutant there would meet
# one test. While mutmut records, the calls of each fixture's setup count for every test using it.
class _FixtureCalls:
    """Registered as a plugin, not as conftest hooks: pytest runs a session fixture's setup
    hooks from the session, where this conftest's hooks are out of scope."""

    def __init__(self, calls: set[str]) -> None:
        self.calls = calls  # mutmut's record of the functions called since the last test ended
        self.by_fixture: dict[str, set[str]] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef):
        before = set(self.calls)
        self.calls.clear()
        try:
            return (yield)
        finally:
            self.by_fixture.setdefault(fixturedef.argname, set()).update(self.calls)
            self.calls.update(before)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        for name in getattr(item, "fixturenames", ()):
            self.calls.update(self.by_fixture.get(name, ()))


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":  # only while mutmut records
        from mutmut.state import state

        config.pluginmanager.register(_FixtureCalls(state()._stats), "mutmut-fixture-calls")
