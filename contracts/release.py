"""Release identity (``YYYY-Qn``, plus ``rN`` when CMS re-issues that quarter), the record of one
release file as it moves through the pipeline, and the manifest of a published release.

CMS names its ZIPs and data files differently almost every year, so the quarter is read from any
of the names a release carries: the URL slug (``january-2026-alpha-numeric-hcpcs-file.zip``,
``october-2023-alpha-numeric-hcpcs-files.zip``), the annual ZIP
(``2019-Alpha-Numeric-HCPCS-File.zip``, ``2015-Annual-...``: the January = Q1 release), the
old ``14anweb.zip``, or the data member itself (``HCPC2025_JAN_ANWEB_12172024.txt``,
``HCPC17_CONTR_ANWEB.txt``), and for a renamed data file from its folder (``2020-Q2-april``).
Companion files (corrections, NOC codes, record layouts, indexes, transaction reports) are not
releases and give ``None``.
"""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from contracts.errors import TerminalError

#: Month words CMS uses in slugs and member names -> quarter (January is also the annual file).
MONTH_QUARTER: dict[str, int] = {
    "january": 1, "jan": 1, "april": 2, "apr": 2, "july": 3, "jul": 3, "october": 4, "oct": 4,
}  # fmt: skip

#: A transaction report's name: ``HCPC2016_TransReport_...``, ``HCPCS2017_Trans Report_...``,
#: ``HCPC2019_Trans_Alpha``, ``trans_alpha``, or 2019's bare ``Changes_by_ActionCode``.
_TRANSACTION_REPORT = r"trans|changes[-_ ]?by"
_COMPANION = re.compile(
    rf"(?i)correction|noc|record[-_ ]?layout|index|table-of-drugs|{_TRANSACTION_REPORT}"
)
_REPORT = re.compile(rf"(?i){_TRANSACTION_REPORT}")
#: CMS's workbook formats, the modern one first: it wins over a legacy .xls.
WORKBOOK_FORMATS = (".xlsx", ".xls")
#: Transaction report formats, preferred first: a workbook lists every code with CMS's whole
#: change text (the 2019 .prn cuts it at its SHORT DESCRIPTION column; 2020 ships only the xlsx).
REPORT_FORMATS = (*WORKBOOK_FORMATS, ".txt", ".prn")
_MONTH = "|".join(sorted(MONTH_QUARTER, key=len, reverse=True))
# Patterns are tried in order on the last path segment, lower-cased.
_SLUG_MONTH = re.compile(rf"^({_MONTH})-(\d{{4}})-alpha-numeric-hcpcs-files?\b")
_SLUG_ANNUAL = re.compile(r"^(\d{4})-(?:annual-)?alpha-numeric-hcpcs-files?\b")
_OLD_ANWEB = re.compile(r"^(\d{2})anweb\.zip$")
_MEMBER = re.compile(  # HCPC2021_APR_CONTR_ANWEB: month and CONTR may both come first
    rf"^hcpc(\d{{4}}|\d{{2}})_(?:(?:contr|{_MONTH})_){{0,2}}(?:anweb|a-n)(?![a-z])"
)
_MEMBER_MONTH = re.compile(rf"^hcpc\d{{2,4}}_({_MONTH})_")
_FOLDER = re.compile(r"^(\d{4})-(?:q([1-4])|annual)(?![0-9a-z])")  # 2020-Q2-april, 2016-annual
_NAME_YEAR = re.compile(r"(?:hcpcs?)?(20\d{2})|hcpcs?(\d{2})")  # a year token: 2020, hcpc17
_RELEASE_ID = re.compile(r"(\d{4})-Q([1-4])(?:r([2-9]|[1-9]\d+))?")


class ReleaseIdError(TerminalError, ValueError):
    """A release id that is not ``YYYY-Qn`` or ``YYYY-QnrN`` (N >= 2)."""


def _year(text: str) -> int:
    year = int(text)
    return year + 2000 if year < 100 else year


def _last_segment(name: str) -> str:
    path = urlsplit(name).path if "://" in name else name
    return unquote(path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]).lower()


def is_companion(name: str) -> bool:
    """A file that travels with a release but is not one (corrections, NOC codes, a record
    layout, an index, a transaction report): never a release, whatever year its name carries."""
    return bool(_COMPANION.search(_last_segment(name)))


def is_transaction_report(name: str) -> bool:
    """A CMS transaction report (one of the companions), whatever its format, by its name."""
    return bool(_REPORT.search(_last_segment(name)))


def names_other_release(name: str, release_id: str) -> bool:
    """Whether a companion's name says it belongs to another year or quarter than
    ``release_id`` (``HCPC2017_...`` beside 2016's data file, ``..._JUL_...`` beside April's): a
    folder may hold several releases' loose files. A name that says nothing (``trans_alpha``)
    fits any."""
    year, quarter, _ = release_sort_key(release_id)
    for token in re.split(r"[^a-z0-9]+", _last_segment(name)):
        if (m := _NAME_YEAR.fullmatch(token)) and _year(m.group(1) or m.group(2)) != year:
            return True
        if token in MONTH_QUARTER and MONTH_QUARTER[token] != quarter:
            return True
    return False


def release_from_name(name: str) -> str | None:
    """The quarter (``YYYY-Qn``) a URL, slug, ZIP or data-member name belongs to, else ``None``."""
    segment = _last_segment(name)
    if not segment or _COMPANION.search(segment):
        return None
    if m := _SLUG_MONTH.search(segment):
        return f"{m.group(2)}-Q{MONTH_QUARTER[m.group(1)]}"
    if m := _SLUG_ANNUAL.search(segment):
        return f"{m.group(1)}-Q1"
    if m := _OLD_ANWEB.search(segment):
        return f"{_year(m.group(1))}-Q1"
    if m := _MEMBER.search(segment):
        month = _MEMBER_MONTH.search(segment)
        return f"{_year(m.group(1))}-Q{MONTH_QUARTER[month.group(1)] if month else 1}"
    return None


def release_from_folder(name: str) -> str | None:
    """The quarter a folder's name gives, for data files whose own name tells nothing (CMS's
    ``anweb.xlsx`` renamed by a mirror): ``2020-Q2-april`` -> ``2020-Q2``, ``2016-annual`` ->
    ``2016-Q1``, or any release name (the folder of an extracted ZIP); else ``None``."""
    segment = _last_segment(name)
    if not segment or _COMPANION.search(segment):
        return None
    if m := _FOLDER.search(segment):
        return f"{m.group(1)}-Q{m.group(2) or 1}"
    return release_from_name(segment)


def validate_release_id(release_id: str) -> str:
    """``release_id`` unchanged when well formed; ``ReleaseIdError`` saying what is wrong if not."""
    if not isinstance(release_id, str) or not _RELEASE_ID.fullmatch(release_id):
        raise ReleaseIdError(
            f"invalid release id {release_id!r}: expected YYYY-Qn (quarter 1-4, e.g. 2026-Q1), "
            f"optionally followed by rN for CMS's N-th issue of that quarter (N >= 2: 2026-Q1r2)"
        )
    return release_id


def release_sort_key(release_id: str) -> tuple[int, int, int]:
    """(year, quarter, revision) for ordering; a plain quarter is revision 1."""
    m = _RELEASE_ID.fullmatch(validate_release_id(release_id))
    assert m is not None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)


def quarter_of(release_id: str) -> str:
    """The quarter of a (possibly revision-qualified) release id: ``2026-Q1r2`` -> ``2026-Q1``."""
    year, quarter, _ = release_sort_key(release_id)
    return f"{year}-Q{quarter}"


def revision_id(quarter: str, revision: int) -> str:
    """The id of the ``revision``-th distinct issue of ``quarter`` (1 -> the plain quarter)."""
    if revision < 1:
        raise ReleaseIdError(f"revision must be >= 1, got {revision}")
    return quarter_of(quarter) + (f"r{revision}" if revision > 1 else "")


FileStatus = Literal["offered", "new", "unchanged", "reissue", "stored"]


@dataclass(frozen=True)
class ReleaseFile:
    """One release file, from the moment a source offers it to its place in the raw store.

    A source fills ``release_id`` (the quarter, or None when only the data member will tell) and
    ``source_url``; the fetch adds the bytes' identity (``sha256``, ``path``, ``member_name``,
    ``size``, ``fetched_at``), the revision-qualified ``release_id`` and what it found
    (``status``, ``attempts``). Publishing writes the same facts into the manifest.
    """

    release_id: str | None
    source_url: str
    sha256: str = ""
    path: Path | None = None
    member_name: str = ""
    size: int = 0
    fetched_at: str = ""  # ISO-8601 UTC of the first fetch of these bytes
    status: FileStatus = "offered"
    attempts: int = 0

    @property
    def quarter(self) -> str | None:
        return quarter_of(self.release_id) if self.release_id else None


def sort_files(files: list[ReleaseFile]) -> list[ReleaseFile]:
    """Oldest release first (unknown releases last), then by URL: a stable, readable order."""
    return sorted(
        files,
        key=lambda f: (
            f.release_id is None,
            release_sort_key(f.release_id) if f.release_id else (),
            f.source_url,
        ),
    )


@dataclass(frozen=True)
class FileEntry:
    """One file of a published release: its sha256, size and (for tables) row count."""

    sha256: str
    bytes: int
    rows: int | None


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` of a published release: what it is, where it came from, what it holds.

    Downstream loads read it; ``to_json`` is deterministic (sorted keys), so the same release
    gives the same bytes.
    """

    release_id: str
    quarter: str
    revision: int
    source_url: str | None
    raw_sha256: str
    member_name: str | None
    fetched_at: str | None
    counts: dict[str, int]  # codes, procedures, modifiers, rejects
    schema_version: int
    schema_fingerprint: str
    pipeline_version: str
    files: dict[str, FileEntry] = field(default_factory=dict)
    content_sha256: str | None = None
    """sha256 of the published codes' content, whatever file or ZIP they came from (see
    ``warehouse.identity.content_sha256``); None in manifests written before it existed."""
    transaction_report: str | None = None
    """File name of CMS's transaction report the release's ``transactions.parquet`` was read from
    (a ZIP member, or the file beside a loose data file); None when the release has none, and in
    manifests written before it existed."""
    transaction_report_error: str | None = None
    """Why that report could not be read (file, line or row, value); ``transactions.parquet`` is
    then empty. The release is published all the same: the data file is the source of record."""

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "manifest.json") -> Manifest:
        """Parse a manifest; anything else raises ``ManifestError`` naming ``where``."""
        try:
            doc: dict[str, Any] = json.loads(text)
            names = {f.name for f in fields(cls)}
            required = {f.name for f in fields(cls)
                        if f.default is MISSING and f.default_factory is MISSING}
            missing = sorted(required - set(doc))
            if missing:
                raise ValueError(f"missing {', '.join(missing)}")
            doc = {k: v for k, v in doc.items() if k in names}
            doc["files"] = {n: FileEntry(**e) for n, e in doc["files"].items()}
            return cls(**doc)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ManifestError(
                f"{where}: not a valid release manifest ({exc}); `hcpcs doctor --repair` "
                "quarantines the release so the next run derives it again from its raw file"
            ) from None


class ManifestError(TerminalError, ValueError):
    """A manifest that cannot be read; the message names the file."""
