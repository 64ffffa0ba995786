"""The release report (``hcpcs report``), opened in a real headless Chromium from ``file://``.

The real releases' report is the one the ``backfill`` fixture's run wrote itself (every publishing
run rewrites it). Every page visited is checked for network requests (none: only ``file://``)
and console errors (none). Screenshots of the overview and of S2107 are saved under
``build/screenshots/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from contracts.domains import DOMAINS
from contracts.layout import DATA_FIELDS
from contracts.paths import DataDir
from flows.cli import app
from report.site import REPORT_JSON, build
from tests import warehouse_synth as synth
from tests.conftest import ROOT, SEED, shared_file
from warehouse.history import rebuild

SCREENSHOTS = ROOT / "build" / "screenshots"
runner = CliRunner()


@dataclass
class Tab:
    """One browser page, with every request it made and every console message it logged."""

    page: object
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)

    def open(self, path: Path, query: str = "") -> object:
        self.page.goto(path.as_uri() + query)
        return self.page

    def assert_offline_and_clean(self) -> None:
        assert self.requests, "no page was loaded"
        assert [u for u in self.requests if not u.startswith("file://")] == []
        assert self.console == []


@pytest.fixture
def tab(browser) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    tab = Tab(page)
    page.on("request", lambda r: tab.requests.append(r.url))
    page.on("console", lambda m: tab.console.append(f"{m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: tab.console.append(f"page error: {e}"))
    yield tab
    context.close()


@pytest.fixture(scope="session")
def real_site(backfill) -> Path:
    """The site the backfill of the real releases wrote at the end of its run."""
    data_dir, doc = backfill
    site = DataDir(data_dir).site
    assert doc["report"] == str(site.resolve() / "index.html")
    return site


def query(data_dir: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(DataDir(data_dir).database), read_only=True) as con:
        return con.execute(sql).fetchall()


def numbers(page, chart: str) -> list[str]:
    """The rows under a chart's "The numbers", opened as a reader would."""
    page.click(f"#chart-{chart} summary")
    return page.locator(f"#chart-{chart} table tbody tr").all_inner_texts()


def test_the_overview_shows_a_chart_of_every_release(backfill, real_site: Path, tab: Tab) -> None:
    data_dir, _ = backfill
    page = tab.open(real_site / "index.html")
    releases = [r for (r,) in query(data_dir, "SELECT release_id FROM releases ORDER BY 1")]
    assert releases == ["2016-Q1", "2017-Q1", "2019-Q1", "2020-Q2", "2020-Q3", "2020-Q4"]
    rows = page.locator("#releases + table tbody tr")
    assert rows.count() == 6
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(6)] == releases
    families = query(data_dir, """SELECT count(*) FROM (SELECT DISTINCT release_id, left(betos, 1)
                                  FROM codes JOIN releases USING (release_id) WHERE effective)""")
    # one bar per row drawn: 6 releases x 2 kinds; each (release, BETOS family); 5 releases
    # after the first x 7 kinds of change; x 2 kinds of silent change
    bars = {"kinds": 12, "betos": families[0][0], "changes": 35, "silent": 10}
    for key, count in bars.items():
        chart = page.locator(f"#chart-{key}")
        assert chart.locator("svg").count() == 1, key
        assert chart.locator("svg g.mark-rect path").count() == count, key
        assert chart.locator("svg").bounding_box()["height"] > 200, key
    # the numbers drawn are the database's: 2019-Q1 has 6,440 procedures and 360 modifiers
    kinds = numbers(page, "kinds")
    assert "2019-Q1\tprocedure\t6440" in kinds and "2019-Q1\tmodifier\t360" in kinds
    changes = numbers(page, "changes")
    assert "2017-Q1\tadded\t303" in changes and "2019-Q1\tdropped\t108" in changes
    silent = numbers(page, "silent")  # 2017: 85 silent changes, 2 of them removals
    assert "2017-Q1\tchanges under action N\t83" in silent
    assert "2017-Q1\tcodes gone without a termination date\t2" in silent
    assert "backfill" in page.locator("#latest-run + p").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True)
    tab.assert_offline_and_clean()


def test_a_release_page_lists_a_silent_change(real_site: Path, tab: Tab) -> None:
    """A4720's long description changed in 2017 under action N: CMS did not announce it."""
    page = tab.open(real_site / "releases" / "2017-Q1.html")
    section = page.locator("#change-long_description_changed")
    row = section.locator("tr", has=page.locator("a", has_text="A4720"))
    assert row.count() == 1
    assert row.get_attribute("class") == "silent"
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "long_description"
    assert "greater than 249cc, but" in cells[2] and "greater than 249 cc, but" in cells[3]
    assert cells[4].startswith("N") and "No maintenance for this code" in cells[4]
    assert cells[5] == "silent"
    # the gate's verdict, in the report's own words, and the failed checks first
    assert page.locator("h1 .status").inner_text() == "published with warnings"
    failed = page.locator("table.checks tr.warning").first.locator("td").all_inner_texts()
    assert failed[:4] == ["added_not_after_action_effective", "record", "warning", "failed"]
    # the manifest and the raw file are linked, and they are the data directory's
    manifest = page.locator("a", has_text="manifest.json").get_attribute("href")
    assert (real_site / "releases" / manifest).resolve().name == "manifest.json"
    doc = json.loads((real_site / "releases" / manifest).read_text())
    assert doc["release_id"] == "2017-Q1"
    raw = page.locator("a", has_text="raw file").get_attribute("href")
    assert (real_site / "releases" / raw).resolve().name == f"{doc['raw_sha256']}.zip"
    tab.assert_offline_and_clean()


def seed_rows() -> dict[str, str]:
    """The seed code page's rows: label -> value (``<i>Label</i>`` TAB value TAB about)."""
    seed = shared_file(SEED, "the seed code page").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r"^<i>([^<]+)</i>\t([^\t\n]*)",
                                                        seed, re.M)}


#: Seed labels that are not CMS's: the seed calls the long description "Code Description".
SEED_LABELS = {"Code Description": "Long Description"}
#: Seed rows that are the web page's own, not fields of CMS's record.
NOT_IN_THE_RECORD = {"Status", "Last Update Date"}


def test_the_s2107_page_shows_the_seeds_values(real_site: Path, tab: Tab) -> None:
    page = tab.open(real_site / "codes" / "S2107.html")
    shown = {}
    for row in page.locator("#fields tbody tr").all():
        label = row.locator("th").inner_text()
        shown[label] = row.locator("td.value").inner_text()
        shown[f"{label} Description"] = row.locator("td.meaning").inner_text()
    dates = {f.label for f in DATA_FIELDS if f.type == "date"}
    compared = set()
    for label, value in seed_rows().items():
        if label in NOT_IN_THE_RECORD:
            continue
        ours = SEED_LABELS.get(label, label)
        assert ours in shown, f"the seed's {label!r} is not on the page"
        got = shown[ours].replace("-", "") if ours in dates else shown[ours]
        assert got == value.strip(), label
        compared.add(label)
    assert len(compared) == 18  # every field row of the seed, its meanings included
    assert page.locator("#code-status").inner_text() == "in force"
    assert page.locator("h1").inner_text().startswith("S2107 Adoptive immunotherapy i.e.")
    assert page.locator("table.timeline tbody tr").count() == 1  # one version since 2016
    assert page.locator("table.timeline td.on").count() == 6
    # what each field is: CMS's label links to the record's fields, where it is described
    page.click("#fields a:text('Coverage Code')")
    assert page.url.endswith("/fields.html#coverage_code")
    assert page.locator("tr#coverage_code").inner_text().split("\t") == [
        "Coverage Code", "coverage_code", "230–230", "Medicare coverage code (C, D, I, M, S).",
        "5 values"]
    page.go_back()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "S2107.png"), full_page=True)
    tab.assert_offline_and_clean()


def test_every_occurrence_of_a_repeating_group_has_its_row(real_site: Path, tab: Tab) -> None:
    """E0210 has four types of service; G0328 two lab certifications: one row each, in order,
    each with its meaning from the domain table."""
    for code, label, domain, values in (
            ("E0210", "Type Of Service Code", "type_of_service", ["A", "L", "P", "R"]),
            ("G0328", "Lab Certification Code", "lab_certification", ["310", "400"])):
        page = tab.open(real_site / "codes" / f"{code}.html")
        rows = [row.locator("th, td").all_inner_texts()
                for row in page.locator("#fields tbody tr").all()]
        assert [r for r in rows if r[0].startswith(label)] == [
            [f"{label} #{i}", v, DOMAINS[domain].values[v]] for i, v in enumerate(values, 1)]
    tab.assert_offline_and_clean()


def test_search_finds_s2107_by_a_word_offline(real_site: Path, tab: Tab) -> None:
    page = tab.open(real_site / "index.html")
    page.fill("header input[name=q]", "immunotherapy")
    page.press("header input[name=q]", "Enter")
    page.wait_for_url(re.compile(r"search\.html\?q=immunotherapy$"))
    assert page.locator("#search-summary").inner_text() == '3 codes match “immunotherapy”.'
    assert page.locator("#results a").all_inner_texts() == ["G0069", "S2107", "S9338"]
    page.click("#results a:text('S2107')")
    assert page.locator("h1 .code").inner_text() == "S2107"
    page.go_back()
    page.fill("#q", "s2107")  # a code, typed in lower case: that code first
    assert page.locator("#results a").first.inner_text() == "S2107"
    page.fill("#q", "adoptive immunotherapy course")  # every word, in any order
    assert page.locator("#results a").all_inner_texts() == ["S2107"]
    tab.assert_offline_and_clean()


def test_every_code_has_a_small_page(backfill, real_site: Path) -> None:
    data_dir, _ = backfill
    doc = json.loads((real_site / REPORT_JSON).read_text())
    codes = {p: n for p, n in doc["files"].items() if p.startswith("codes/")}
    ever = query(data_dir, "SELECT count(DISTINCT code) FROM codes")[0][0]
    assert len(codes) == doc["codes"] == ever == 7401
    assert max(codes.values()) < 100_000
    assert doc["releases"] == 6 and doc["refused"] == 0
    assert doc["pages"] == 7401 + 6 + 3  # codes, releases, overview, search and the fields


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """Two synthetic releases where a code's descriptions turn into markup and a script."""
    data_dir = tmp_path / "data"
    plain = {"code": "A0001", "long_description": "A plain description"}
    hostile = {"code": "A0001", "short_description": "<b>bold</b> & co",
               "long_description": "<script>window.pwned = 1</script>"
                                   '<img src=x onerror="window.pwned = 2">'}
    synth.publish(data_dir, "2024-Q1", synth.codes_frame([plain, {"code": "A0002"}]))
    synth.publish(data_dir, "2024-Q2", synth.codes_frame([hostile, {"code": "A0002"}]))
    rebuild(data_dir)
    build(data_dir)
    return DataDir(data_dir).site


def test_a_description_with_script_in_it_is_shown_as_text(hostile: Path, tab: Tab) -> None:
    for page_path, query_string in ((hostile / "codes" / "A0001.html", ""),
                                    (hostile / "releases" / "2024-Q2.html", ""),
                                    (hostile / "search.html", "?q=script")):
        page = tab.open(page_path, query_string)
        assert page.evaluate("window.pwned") is None, page_path
        assert page.locator("main script, main img, main b").count() == 0, page_path
        assert "<script>window.pwned = 1</script>" in page.locator("main").inner_text()
    raw = (hostile / "codes" / "A0001.html").read_text()
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in raw
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in raw
    tab.assert_offline_and_clean()


def test_one_release_has_nothing_to_compare_yet(tmp_path: Path, tab: Tab) -> None:
    data_dir = tmp_path / "data"
    synth.publish(data_dir, "2024-Q1", synth.codes_frame([{"code": "A0001"}]))
    rebuild(data_dir)
    done = build(data_dir)
    assert (done.releases, done.codes, done.pages) == (1, 1, 5)
    page = tab.open(done.index)
    assert page.locator("#chart-kinds svg g.mark-rect path").count() == 1
    for key in ("changes", "silent"):
        assert page.locator(f"#chart-{key} svg").count() == 0
        assert page.locator(f"#chart-{key} .no-chart").inner_text().startswith("Nothing to draw")
    tab.assert_offline_and_clean()


def test_the_command_writes_it_and_refuses_what_it_must_not_replace(hostile: Path,
                                                                     tmp_path: Path) -> None:
    data_dir = hostile.parent.parent
    out = tmp_path / "elsewhere"
    result = runner.invoke(app, ["report", "--out", str(out), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(rf"report: 7 pages \(2 releases, 0 refused, 2 codes\) in \d+\.\d s -> "
                        rf"{re.escape(str(out / 'index.html'))}\n", result.output)
    # the links into the data directory still resolve from the other folder
    html = (out / "releases" / "2024-Q2.html").read_text()
    manifest = re.search(r'href="([^"]+manifest\.json)"', html).group(1)
    assert (out / "releases" / manifest).resolve() == (
        DataDir(data_dir).release("2024-Q2") / "manifest.json").resolve()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["report", "--out", str(mine), "--data-dir", str(data_dir)])
    assert (result.exit_code, result.output) == (
        2, f"error: {mine}: not empty and not an earlier report (no report.json); the report "
        "replaces its folder whole: give a new or empty folder\n")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    result = runner.invoke(app, ["report", "--data-dir", str(tmp_path / "none")])
    assert (result.exit_code, result.output) == (
        2, f"error: {tmp_path / 'none' / 'hcpcs.duckdb'}: no database yet; run `hcpcs run` (or "
        "`hcpcs backfill`) first\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "elsewhere", "mine"]


def test_every_validation_status_reads_right(tmp_path: Path, tab: Tab) -> None:
    """Demo releases through real runs: one clean, one with a finding, one refused by a
    release-level rule; then the refused file accepted on record and run again."""
    from sources.demo import write_demo_releases
    from tests.test_cli import with_code_twice, with_coverage
    from tests.test_flows import edit_data_member, hcpcs

    folder = tmp_path / "zips"
    folder.mkdir()
    demo = write_demo_releases(tmp_path / "demo")
    (folder / demo[0].name).write_bytes(demo[0].read_bytes())
    edit_data_member(demo[1], folder / demo[1].name, lambda d: with_coverage(d, "E0130", "Z"))
    edit_data_member(demo[2], folder / demo[2].name, lambda d: with_code_twice(d, "E0130"))
    data_dir = tmp_path / "data"
    code, doc = hcpcs("run", "--source", str(folder), "--data-dir", str(data_dir))
    assert code == 1 and doc["report"]
    assert [(r["release_id"], r["status"]) for r in doc["releases"]] == [
        ("2024-Q1", "published"), ("2024-Q2", "published"), ("2024-Q3", "failed")]
    site = DataDir(data_dir).site
    page = tab.open(site / "index.html")
    statuses = [row.locator("td").nth(1).inner_text()
                for row in page.locator("#releases + table tbody tr").all()]
    assert statuses == ["published", "published with warnings", "refused"]
    page.click("a:text('2024-Q3')")
    assert page.locator("h1").inner_text() == "Release file 2024-Q3 refused"
    assert page.locator("li").all_inner_texts() == ["error code_unique: 2 (E0130 code=E0130)"]
    assert "hcpcs accept 2024-Q3 --rule RULE --reason TEXT" in page.locator("main").inner_text()
    page = tab.open(site / "releases" / "2024-Q2.html")
    failed = page.locator("table.checks tr.error").all()
    assert [r.locator("td").first.inner_text() for r in failed] == ["coverage_code_in_domain"]
    assert page.locator("#findings + table tbody tr").all_inner_texts() == [
        "coverage_code_in_domain\terror\tE0130\tcoverage_code\tZ"]

    result = runner.invoke(app, ["accept", "2024-Q3", "--rule", "code_unique", "--reason",
                                 "CMS confirmed the duplicate lines", "--data-dir",
                                 str(data_dir)])
    assert result.exit_code == 0, result.output
    code, doc = hcpcs("run", "--source", str(folder), "--data-dir", str(data_dir))
    assert (code, doc["releases"][-1]["status"]) == (0, "published") and doc["report"]
    page = tab.open(site / "index.html")
    statuses = [row.locator("td").nth(1).inner_text()
                for row in page.locator("#releases + table tbody tr").all()]
    assert statuses == ["published", "published with warnings", "published, waived"]
    assert not (site / "refused").exists()  # that file is published now
    page = tab.open(site / "releases" / "2024-Q3.html")
    assert "CMS confirmed the duplicate lines" in page.locator("table", has_text="accepted by")\
        .inner_text()
    tab.assert_offline_and_clean()


def test_a_run_rewrites_it_only_when_it_rebuilt_and_not_when_told(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_flows import hcpcs

    data_dir = tmp_path / "data"
    marker = DataDir(data_dir).site / REPORT_JSON
    monkeypatch.setenv("HCPCS_REPORT_WRITE", "false")
    code, doc = hcpcs("run", "--data-dir", str(data_dir))
    assert (code, doc["report"]) == (0, "") and not marker.exists()
    monkeypatch.delenv("HCPCS_REPORT_WRITE")
    code, doc = hcpcs("run", "--data-dir", str(data_dir))  # nothing new, but no report yet
    assert (code, doc["rebuilt"]) == (3, False)
    assert doc["report"] == str(marker.parent.resolve() / "index.html")
    written = marker.stat().st_mtime_ns
    assert json.loads(marker.read_text())["codes"] == query(
        data_dir, "SELECT count(DISTINCT code) FROM codes")[0][0] == 191  # every code, ever
    code, doc = hcpcs("run", "--data-dir", str(data_dir))  # nothing new: left as it is
    assert (code, doc["report"]) == (3, "") and marker.stat().st_mtime_ns == written
