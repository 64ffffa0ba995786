"""Where releases come from: the known CMS URLs (a CSV shipped with the package and extendable by
the user), a folder of ZIPs, a file listing URLs, a CMS page to discover, or the embedded demo.

``resolve_source`` turns whatever the user typed into a list of ``CatalogEntry``; fetching them is
``sources.fetch``'s job. ``CatalogEntry.release`` is the quarter (``YYYY-Qn``) when the name tells
it, or ``None`` when only the downloaded data member will (``fetch`` reads it from there).
"""

from __future__ import annotations

import csv
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sources.archive import ArchiveError, select_data_member
from sources.release import ReleaseIdError, quarter_of, release_from_name, release_sort_key

SHIPPED_CATALOG = Path(__file__).with_name("cms_catalog.csv")
USER_CATALOG_ENV = "HCPCS_CATALOG"  # path of a CSV (release,url) that extends the shipped one


@dataclass(frozen=True)
class CatalogEntry:
    release: str | None  # the quarter, YYYY-Qn; None = read it from the data member after download
    url: str  # https://, http://, file:// or a local path


class CatalogError(ValueError):
    """A catalog file or source argument that cannot be read; the message names file and line."""


def sort_entries(entries: Iterable[CatalogEntry]) -> list[CatalogEntry]:
    """Oldest release first (unknown releases last), then by URL: a stable, readable order."""
    return sorted(
        entries,
        key=lambda e: (e.release is None, release_sort_key(e.release) if e.release else (), e.url),
    )


def _entry(release: str, url: str, where: str) -> CatalogEntry:
    url = url.strip()
    if not url:
        raise CatalogError(f"{where}: no URL")
    release = release.strip() or release_from_name(url) or ""
    if not release:
        raise CatalogError(f"{where}: cannot tell the release of {url}; write it as release,url")
    try:
        return CatalogEntry(quarter_of(release), url)
    except ReleaseIdError as exc:
        raise CatalogError(f"{where}: {exc}") from None


def _content_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return [
        (n, ln.strip())
        for n, ln in enumerate(text.splitlines(), 1)
        if ln.strip() and not ln.lstrip().startswith("#")
    ]


def read_catalog_csv(path: Path) -> list[CatalogEntry]:
    """A ``release,url`` CSV (header optional, ``#`` comments); a blank release is derived."""
    out = []
    for number, line in _content_lines(Path(path)):
        cells = next(csv.reader([line]))
        if [c.strip().lower() for c in cells] == ["release", "url"]:
            continue
        if len(cells) != 2:
            raise CatalogError(f"{path}:{number}: expected release,url, got {line!r}")
        out.append(_entry(cells[0], cells[1], f"{path}:{number}"))
    return out


def cms_catalog(extra: Path | None = None) -> list[CatalogEntry]:
    """The shipped CMS URLs plus the user's (``extra`` or ``$HCPCS_CATALOG``); user wins per URL."""
    if extra is None and os.environ.get(USER_CATALOG_ENV):
        extra = Path(os.environ[USER_CATALOG_ENV])
    by_url = {e.url: e for e in read_catalog_csv(SHIPPED_CATALOG)}
    if extra is not None:
        by_url.update({e.url: e for e in read_catalog_csv(extra)})
    return sort_entries(by_url.values())


def url_list_catalog(path: Path) -> list[CatalogEntry]:
    """One source per line: ``url``, ``release url`` or ``release,url`` (``#`` comments)."""
    out = []
    for number, line in _content_lines(Path(path)):
        parts = line.replace(",", " ").split()
        if len(parts) > 2:
            raise CatalogError(f"{path}:{number}: expected 'url' or 'release url', got {line!r}")
        release, url = parts if len(parts) == 2 else ("", parts[0])
        out.append(_entry(release, url, f"{path}:{number}"))
    return out


def _is_data_txt(path: Path) -> bool:
    try:
        select_data_member([path.name])
    except ArchiveError:
        return False
    return True


def _release_of_file(path: Path) -> str | None:
    """The quarter of a release file, from its name or else from its data member's name."""
    if release := release_from_name(path.name):
        return release
    if path.suffix.lower() != ".zip":
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            return release_from_name(select_data_member(zf.namelist(), str(path)))
    except (ArchiveError, zipfile.BadZipFile, OSError):
        return None


def folder_catalog(path: Path) -> list[CatalogEntry]:
    """Every release ZIP (or bare data ``.txt``) under ``path``, recursively.

    Companion files (corrections, NOC codes, record layouts) and unrelated files are left out.
    """
    out = []
    for file in sorted(Path(path).rglob("*")):
        if not file.is_file() or file.name.startswith("."):
            continue
        is_zip = file.suffix.lower() == ".zip"
        if not (is_zip or _is_data_txt(file)):
            continue
        if (release := _release_of_file(file)) is not None:
            out.append(CatalogEntry(release, str(file)))
    return sort_entries(out)


def _local(source: str) -> Path | None:
    parts = urlsplit(source)
    if parts.scheme.lower() == "file":
        from urllib.request import url2pathname

        return Path(url2pathname(parts.path))
    return None if parts.scheme.lower() in ("http", "https") else Path(source)


def resolve_source(source: str, *, demo_dir: Path) -> list[CatalogEntry]:
    """What to fetch for ``source``: ``demo``, ``cms``, a folder, a release file, a catalog CSV or
    URL list, a ``file://`` URL, a URL of a ZIP, or a URL of a CMS page (discovery)."""
    if source == "demo":
        from sources.demo import DEMO_QUARTERS, write_demo_releases

        paths = write_demo_releases(demo_dir)
        pairs = zip(DEMO_QUARTERS, paths, strict=True)
        return [CatalogEntry(quarter_of(q.release), str(p)) for q, p in pairs]
    if source == "cms":
        return cms_catalog()
    path = _local(source)
    if path is None:  # http(s)
        if urlsplit(source).path.lower().endswith(".zip"):
            return [CatalogEntry(release_from_name(source), source)]
        from sources.discover import discover

        return discover(source)
    if path.is_dir():
        return folder_catalog(path)
    if not path.is_file():
        raise CatalogError(f"{source}: no such file or folder (and not 'demo', 'cms' or a URL)")
    if path.suffix.lower() == ".zip" or _is_data_txt(path):
        return [CatalogEntry(_release_of_file(path), source)]
    if path.suffix.lower() == ".csv":
        return sort_entries(read_catalog_csv(path))
    return url_list_catalog(path)
