"""Lists of release files read from local catalogs: the known CMS URLs (a CSV shipped with the
package and extendable by the user), a CSV or URL list of the user's, a folder of release files.

Each reader returns ``ReleaseFile``s with ``release_id`` the quarter (``YYYY-Qn``) when the name
tells it, or ``None`` when only the downloaded data member will (``fetch`` reads it from there).
``sources.registry`` decides which reader a source string goes to.
"""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from contracts.errors import TerminalError
from contracts.release import (
    ReleaseFile,
    ReleaseIdError,
    names_other_release,
    quarter_of,
    release_from_folder,
    release_from_name,
    sort_files,
)
from sources.archive import (
    DATA_FORMATS,
    ArchiveError,
    data_format,
    select_data_member,
    select_report,
)

SHIPPED_CATALOG = Path(__file__).with_name("cms_catalog.csv")
USER_CATALOG_ENV = "HCPCS_CATALOG"  # path of a CSV (release,url) that extends the shipped one


class CatalogError(TerminalError, ValueError):
    """A catalog file or source argument that cannot be read; the message names file and line."""


def local_path(source: str) -> Path | None:
    """The file a ``file://`` URL or plain path names; ``None`` for http(s); ``CatalogError``
    for any other scheme."""
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return None
    if scheme == "file":
        return Path(url2pathname(urlsplit(source).path))
    if scheme and len(scheme) > 1:  # one letter is a Windows drive, not a scheme
        raise CatalogError(
            f"{source}: unsupported scheme {scheme!r} (use https, http, file or a local path)"
        )
    return Path(source)


def _entry(release: str, url: str, where: str) -> ReleaseFile:
    url = url.strip()
    if not url:
        raise CatalogError(f"{where}: no URL")
    release = release.strip() or release_from_name(url) or ""
    if not release:
        raise CatalogError(f"{where}: cannot tell the release of {url}; write it as release,url")
    try:
        return ReleaseFile(quarter_of(release), url)
    except ReleaseIdError as exc:
        raise CatalogError(f"{where}: {exc}") from None


def _content_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError:  # e.g. a transaction-report workbook given as the source
        raise CatalogError(
            f"{path}: not a release file (a ZIP, HCPC...ANWEB....txt or ANWEB workbook) "
            f"nor a text list of URLs"
        ) from None
    return [
        (n, ln.strip())
        for n, ln in enumerate(text.splitlines(), 1)
        if ln.strip() and not ln.lstrip().startswith("#")
    ]


def read_catalog_csv(path: Path) -> list[ReleaseFile]:
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


def cms_catalog(extra: Path | None = None) -> list[ReleaseFile]:
    """The shipped CMS URLs plus the user's (``extra`` or ``$HCPCS_CATALOG``); user wins per URL."""
    if extra is None and os.environ.get(USER_CATALOG_ENV):
        extra = Path(os.environ[USER_CATALOG_ENV])
    by_url = {e.source_url: e for e in read_catalog_csv(SHIPPED_CATALOG)}
    if extra is not None:
        by_url.update({e.source_url: e for e in read_catalog_csv(extra)})
    return sort_files(list(by_url.values()))


def url_list_catalog(path: Path) -> list[ReleaseFile]:
    """One source per line: ``url``, ``release url`` or ``release,url`` (``#`` comments)."""
    out = []
    for number, line in _content_lines(Path(path)):
        parts = line.replace(",", " ").split()
        if len(parts) > 2:
            raise CatalogError(f"{path}:{number}: expected 'url' or 'release url', got {line!r}")
        release, url = parts if len(parts) == 2 else ("", parts[0])
        out.append(_entry(release, url, f"{path}:{number}"))
    return out


def is_data_file(path: Path) -> bool:
    """A bare data file, by its name: the fixed-width ``HCPC…ANWEB….txt`` or an ANWEB workbook
    (``HCPC2020_OCT_ANWEB.xlsx``, ``HCPC2020_ANWEB_w_disclaimer.xls``, a mirror's ``anweb.xlsx``).
    """
    return data_format(path.name) is not None


def release_of_file(path: Path) -> str | None:
    """The quarter of a release file: from its name, else its data member's name, else the
    folders it sits in (``2020-Q2-april/anweb.xlsx``). None when it holds no data file."""
    if release := release_from_name(path.name):
        return release
    if is_data_file(path):
        member = path.name
    elif path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                member = select_data_member(zf.namelist(), str(path))
        except (ArchiveError, zipfile.BadZipFile, OSError):
            return None
    else:
        return None
    return release_from_name(member) or next(
        (q for q in map(release_from_folder, path.parent.parts[::-1]) if q), None
    )


def sibling_report(path: Path, release: str) -> Path | None:
    """The transaction report CMS ships beside a bare data file (the 2016 TXT, a 2020
    ``anweb.xlsx``) in the same folder, chosen as in a ZIP (``select_report``) among the files
    whose name does not say they belong to another release; None when there is none."""
    try:
        names = [f.name for f in path.parent.iterdir()
                 if f.is_file() and not names_other_release(f.name, release)]
    except OSError:  # an unreadable folder: the data file was read, its report is not needed
        return None
    chosen = select_report(names)
    return path.parent / chosen if chosen else None


def folder_catalog(path: Path) -> list[ReleaseFile]:
    """Every release ZIP and bare data file (``.txt``, ANWEB workbook) under ``path``, recursively.

    Companion files (corrections, NOC codes, record layouts, transaction reports) and unrelated
    files are left out. A workbook beside a TXT of the same release is that TXT's copy (CMS
    ships both), not a second issue of the release: only the TXT, the source of record, is offered.
    """
    out = []
    loose: dict[tuple[Path, str], list[tuple[int, Path]]] = {}  # folder, release -> (format, file)
    for file in sorted(Path(path).rglob("*")):
        if not file.is_file() or file.name.startswith("."):
            continue
        kind = data_format(file.name)
        if not (kind or file.suffix.lower() == ".zip"):
            continue
        if (release := release_of_file(file)) is None:
            continue
        if kind is None:
            out.append(ReleaseFile(release, str(file)))
        else:
            loose.setdefault((file.parent, release), []).append((DATA_FORMATS.index(kind), file))
    for (_, release), files in loose.items():
        best = min(rank for rank, _ in files)
        out += [ReleaseFile(release, str(f)) for rank, f in files if rank == best]
    return sort_files(out)
