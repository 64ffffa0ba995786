"""``hcpcs report``: the release report as a static site that opens from ``file://``.

Layout (``docs/report.md``)::

    index.html                 overview: releases, charts, refusals, the latest run
    releases/<release>.html    one page per published release: changes by type, the gate
    refused/<release>-<sha>.html   one page per refused release file
    codes/<code>.html          one page per code: every field with its meaning, its history
    search.html                search by code or words, offline (search-index.js)
    report.json                what was built (and the mark of a report folder)

Pages are Jinja2 templates (``report/templates``) with autoescape on: every value from the data is
escaped. Charts are inline SVG (``report.charts``); nothing is fetched from a network. The site is
written beside its folder and renamed into place (``contracts.files.replacing_folder``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import jinja2

from contracts.domains import DOMAINS
from contracts.errors import TerminalError
from contracts.files import not_replaceable, replacing_folder
from contracts.layout import DATA_FIELDS
from contracts.paths import DataDir
from report import charts
from report import data as q
from sources.rawstore import RawStore
from warehouse.tables import outdated

HERE = Path(__file__).parent
#: The file that lists what a report holds (and marks a folder as a report).
REPORT_JSON = "report.json"
#: Most rows a change-type or findings table of a release page lists (the rest are counted).
MAX_ROWS = 2000


class ReportError(TerminalError):
    """The report cannot be built as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Report:
    """What ``build`` wrote."""

    out: Path
    releases: int
    refused: int
    codes: int
    pages: int
    seconds: float

    @property
    def index(self) -> Path:
        return self.out / "index.html"

    def lines(self) -> list[str]:
        return [f"report: {self.pages:,} pages ({self.releases} releases, {self.refused} "
                f"refused, {self.codes:,} codes) in {self.seconds:.1f} s -> {self.index}"]


def _text(value: Any) -> str:
    """A value as the pages show it: dates ISO, lists comma-separated, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join("" if v is None else _text(v) for v in value)
    return str(value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["text"] = _text
    env.filters["num"] = lambda n: f"{n or 0:,}"
    return env


@dataclass(frozen=True, slots=True)
class FieldRow:
    """One row of a code page's fields (attributes, not a dict: the template reads 7,401 x 24)."""

    name: str
    label: str
    value: str
    meaning: str


def field_rows(page: dict[str, Any]) -> list[FieldRow]:
    """Every field of a code's page, in layout order, as the seed's code page lists them: CMS's
    label (``#i`` for each occurrence of a repeating group), the value, what the value means."""
    rows = []
    for f in DATA_FIELDS:
        value, meaning = page[f.name], page.get(f"{f.name}_meaning")
        if f.occurs > 1:
            meanings = meaning or [None] * len(value)
            pairs = [(f"{f.label} #{i}", v, m)
                     for i, (v, m) in enumerate(zip(value, meanings, strict=True), 1)]
            pairs = pairs or [(f.label, None, None)]
        else:
            pairs = [(f.label, value, meaning)]
        rows += [FieldRow(f.name, text, _text(v), _text(m)) for text, v, m in pairs]
    return rows


def code_status(detail: q.CodeDetail, latest: str) -> str:
    page = detail.page
    if page["release_id"] != latest:
        return f"not in the latest release (last carried by {page['release_id']})"
    if page["termination_date"] is not None:
        return f"discontinued: terminated {page['termination_date'].isoformat()}"
    return "in force"


def timeline(detail: q.CodeDetail, releases: list[str]) -> list[dict[str, Any]]:
    """Each version with the effective releases it spans (a row of the code page's grid)."""
    where = {r: i for i, r in enumerate(releases)}
    return [{**v, "span": range(where[v["valid_from_release"]],
                                where[v["valid_to_release"]] + 1)} for v in detail.versions]


def _link(target: Path | None, page_dir: Path) -> str | None:
    """A relative link from a page in ``page_dir`` to a file of the data directory."""
    return None if target is None else os.path.relpath(target, page_dir)


@dataclass
class _Site:
    releases: list[dict[str, Any]]
    effective: list[str]
    details: dict[str, q.ReleaseDetail]
    codes: set[str]  # the pages come from q.codes, one at a time
    refused: list[dict[str, Any]]
    charts: list[charts.Chart]
    latest_run: dict[str, Any] | None


def _collect(con: duckdb.DuckDBPyConnection, data_dir: Path,
             latest_run: dict[str, Any] | None) -> _Site:
    rels = q.releases(con)
    effective = q.effective_release_ids(con)
    runs = q.runs(data_dir)  # a run writing its report is not on disk yet: it comes first
    runs = [latest_run, *runs] if latest_run is not None else runs
    kinds = q.codes_by_kind(con)
    return _Site(
        releases=rels, effective=effective,
        details=q.release_details(con),
        codes=q.code_ids(con),
        refused=q.refused(runs, {r["raw_sha256"] for r in rels}),
        charts=[
            charts.stacked("kinds", "Codes by kind", "Procedure codes and modifiers in each "
                           "effective release.", kinds, effective, "kind", "codes"),
            charts.stacked("betos", "Codes by BETOS family", "Codes of each Berenson-Eggers "
                           "type-of-service family (the BETOS code's first character) in each "
                           "effective release.", q.codes_by_betos_family(con), effective,
                           "family", "codes"),
            charts.grouped("changes", "Additions, discontinuations and changes",
                           "Codes added, discontinued (termination date set), dropped from the "
                           "file, changed, and given back or a new meaning, in each release "
                           "against the one before.", q.change_counts(rels), effective,
                           "change", "codes"),
            charts.grouped("silent", "Changes CMS did not announce",
                           "Field changes on codes whose record says N (no maintenance), and "
                           "codes gone from the file without a termination date.",
                           q.silent_counts(rels), effective, "kind", "changes"),
        ],
        latest_run=runs[0] if runs else None,
    )


def _search_index(rows: list[list[str]]) -> bytes:
    """``search-index.js``: every code with its descriptions and status, as a script (a page
    opened from ``file://`` may not fetch a JSON file)."""
    body = json.dumps(rows, ensure_ascii=True, separators=(",", ":")).replace("</", "<\\/")
    return f"window.HCPCS_CODES = {body};\n".encode()


def _write(path: Path, text: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    path.write_bytes(data)
    return len(data)


def _render(site: _Site, con: duckdb.DuckDBPyConnection, tmp: Path, out: Path,
            data_dir: Path) -> dict[str, int]:
    """Every page into ``tmp`` (links computed as if it were ``out``); page path -> bytes."""
    env = _environment()
    latest = site.effective[-1] if site.effective else ""
    pages: dict[str, int] = {}
    env.globals["known_codes"] = site.codes  # globals reach the imported macros too
    common = {"latest": latest, "max_rows": MAX_ROWS}
    raw = {f.sha256: f.path for f in RawStore(DataDir(data_dir).raw).list()}  # listed once

    def page(path: str, template: str, **values: Any) -> None:
        root = "../" * path.count("/")
        pages[path] = _write(tmp / path, env.get_template(template).render(
            root=root, **common, **values))

    page("index.html", "overview.html", releases=site.releases, charts=site.charts,
         refused=site.refused, run=site.latest_run, code_count=len(site.codes))
    page("search.html", "search.html")
    page("fields.html", "fields.html", fields=DATA_FIELDS, domains=DOMAINS,
         used={f.domain for f in DATA_FIELDS if f.domain})
    for rel in site.releases:
        rid = rel["release_id"]
        manifest = DataDir(data_dir).release(rid) / "manifest.json"
        page(f"releases/{rid}.html", "release.html", rel=rel, d=site.details[rid],
             manifest=_link(manifest if manifest.exists() else None, out / "releases"),
             raw=_link(raw.get(rel["raw_sha256"]), out / "releases"))
    for ref in site.refused:
        page(f"refused/{ref['release_id']}-{ref['sha256'][:12]}.html", "refused.html", ref=ref,
             raw=_link(raw.get(ref["sha256"]), out / "refused"))
    template = env.get_template("code.html")
    searched = []
    for detail in q.codes(con):
        p, status = detail.page, code_status(detail, latest)
        searched.append([p["code"], p["short_description"] or "", p["long_description"] or "",
                         status])
        path = f"codes/{p['code']}.html"
        pages[path] = _write(tmp / path, template.render(
            root="../", **common, d=detail, fields=field_rows(p), status=status,
            releases=site.effective, timeline=timeline(detail, site.effective)))
    index = _search_index(searched)
    (tmp / "search-index.js").write_bytes(index)
    pages["search-index.js"] = len(index)
    for asset in sorted((HERE / "static").iterdir()):
        shutil.copyfile(asset, tmp / asset.name)
        pages[asset.name] = asset.stat().st_size
    return pages


def build(data_dir: Path, out: Path | None = None,
          latest_run: dict[str, Any] | None = None) -> Report:
    """Write the report of ``data_dir`` into ``out`` (default ``reports/site`` of the data
    directory), replacing an earlier report whole. ``latest_run``: the run report to show as the
    latest (a run building its own report passes its summary; default the newest on disk)."""
    started = time.monotonic()
    db = DataDir(data_dir).database
    if not db.exists():
        raise ReportError(f"{db}: no database yet; run `hcpcs run` (or `hcpcs backfill`) first")
    out = Path(os.path.abspath(out or DataDir(data_dir).site))
    if problem := not_replaceable(out, REPORT_JSON, "report"):
        raise ReportError(problem)
    try:
        with duckdb.connect(str(db), read_only=True) as con:
            if problem := outdated(con, db):
                raise ReportError(problem)
            site = _collect(con, data_dir, latest_run)
            with replacing_folder(out) as tmp:
                pages = _render(site, con, tmp, out, data_dir)
                done = Report(out, len(site.releases), len(site.refused), len(site.codes),
                              sum(p.endswith(".html") for p in pages),
                              round(time.monotonic() - started, 2))
                doc = {**asdict(done), "out": str(out), "files": dict(sorted(pages.items()))}
                (tmp / REPORT_JSON).write_text(json.dumps(doc, indent=1) + "\n")
    except OSError as exc:
        raise ReportError(f"{out}: cannot write the report ({exc.strerror or exc}); choose a "
                          "folder you can write to, on a disk with room") from None
    return done
