"""Every kind of source a user can name, as one table: how it is recognised, how it becomes a list
of release files, and whether it is local (needs no network to resolve or to fetch).

``resolve_source`` (the flows), the docs and the ``--source`` help of the command line all read
``SOURCE_KINDS``: a new kind of source is one new entry. The table is
tried in order; the first kind whose ``matches`` accepts the source string wins. Importing this
module stays cheap (standard library only): discovery and the demo are imported when used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from contracts.paths import DataDir
from contracts.release import ReleaseFile, quarter_of, release_from_name, sort_files
from contracts.urls import strip_credentials
from sources.catalog import (
    CatalogError,
    cms_catalog,
    folder_catalog,
    is_data_file,
    local_path,
    read_catalog_csv,
    release_of_file,
    url_list_catalog,
)


@dataclass(frozen=True)
class SourceKind:
    """One kind of source: ``example`` and ``help`` are what ``hcpcs run --help`` shows."""

    name: str
    example: str
    help: str
    local: bool
    matches: Callable[[str], bool]
    resolve: Callable[[str, DataDir], list[ReleaseFile]]  # the files it offers


def _is_http(source: str) -> bool:
    return urlsplit(source).scheme.lower() in ("http", "https")


def _path(source: str) -> Path | None:
    """The local path a source names (plain path or ``file://``), else None."""
    try:
        return local_path(source)  # None for http(s)
    except CatalogError:
        return None


def _is_file(source: str, *suffixes: str) -> bool:
    path = _path(source)
    return path is not None and path.is_file() and (not suffixes or path.suffix.lower() in suffixes)


def _is_release_file(source: str) -> bool:
    path = _path(source)
    return (
        path is not None
        and path.is_file()
        and (path.suffix.lower() == ".zip" or is_data_file(path))
    )


def _demo(source: str, data_dir: DataDir) -> list[ReleaseFile]:
    from sources.demo import DEMO_QUARTERS, write_demo_releases

    paths = write_demo_releases(data_dir.demo)
    pairs = zip(DEMO_QUARTERS, paths, strict=True)
    return [ReleaseFile(quarter_of(q.release), str(p)) for q, p in pairs]


def _discover(source: str, data_dir: DataDir) -> list[ReleaseFile]:
    from sources.discover import discover

    return discover(source)


Resolver = Callable[[str, DataDir], list[ReleaseFile]]


def _local(read: Callable[[Path], list[ReleaseFile]]) -> Resolver:
    """A reader of a local path as a resolver of a source string."""
    return lambda source, data_dir: read(_path(source) or Path(source))


def _one_file(source: str, data_dir: DataDir) -> list[ReleaseFile]:
    path = _path(source) or Path(source)
    return [ReleaseFile(release_of_file(path), source)]


def _zip_url(source: str, data_dir: DataDir) -> list[ReleaseFile]:
    return [ReleaseFile(release_from_name(source), source)]


# fmt: off
SOURCE_KINDS: tuple[SourceKind, ...] = (
    SourceKind("demo", "demo", "the embedded demo quarters (no network)", True,
               lambda s: s == "demo", _demo),
    SourceKind("cms", "cms", "CMS's catalog of release URLs (sources/cms_catalog.csv, plus a CSV "
               "of yours in $HCPCS_CATALOG)", False, lambda s: s == "cms",
               lambda s, d: cms_catalog()),
    SourceKind("zip-url", "https://.../....zip", "one release ZIP by URL", False,
               lambda s: _is_http(s) and urlsplit(s).path.lower().endswith(".zip"), _zip_url),
    SourceKind("page", "https://...", "a CMS page whose release links are discovered", False,
               _is_http, _discover),
    SourceKind("folder", "DIR", "every release ZIP, data .txt or ANWEB workbook below a folder",
               True, lambda s: (p := _path(s)) is not None and p.is_dir(), _local(folder_catalog)),
    SourceKind("file", "FILE.zip|HCPC....txt|anweb.xlsx", "one release ZIP, extracted data .txt or "
               "ANWEB workbook (.xlsx, .xls)", True, _is_release_file, _one_file),
    SourceKind("catalog", "FILE.csv", "a catalog CSV (release,url per line)", True,
               lambda s: _is_file(s, ".csv"), _local(lambda p: sort_files(read_catalog_csv(p)))),
    SourceKind("url-list", "FILE", "a list of URLs (url, or release url, per line)", True,
               _is_file, _local(url_list_catalog)),
)
# fmt: on


def source_kind(source: str) -> SourceKind:
    """The kind of ``source``; ``CatalogError`` listing the accepted kinds when none matches."""
    for kind in SOURCE_KINDS:
        if kind.matches(source):
            return kind
    accepted = ", ".join(k.example for k in SOURCE_KINDS)
    raise CatalogError(f"{source}: no such file or folder, and not a known source ({accepted})")


def resolve_source(source: str, data_dir: Path) -> list[ReleaseFile]:
    """The release files ``source`` offers (see ``SOURCE_KINDS``), their URLs without
    credentials (kept in this process for the download: ``contracts.urls``)."""
    offered = source_kind(source).resolve(source, DataDir(data_dir))
    return [replace(f, source_url=strip_credentials(f.source_url)) for f in offered]


def sources_help() -> str:
    """The accepted sources, one per kind, for ``--source`` help."""
    return "; ".join(f"{k.example}: {k.help}" for k in SOURCE_KINDS)


def sources_markdown() -> str:
    """``SOURCE_KINDS`` as a Markdown table (the docs' copy is generated from this)."""
    rows = ["| kind | source | gives | local |", "|---|---|---|---|"]
    rows += [
        f"| `{k.name}` | `{k.example}` | {k.help} | {'yes' if k.local else 'no'} |"
        for k in SOURCE_KINDS
    ]
    return "\n".join(rows)
