"""Choose and read the data file of a CMS release, safely: a ZIP's member, or a file handed over.

The data of a release is the fixed-width TXT (the source of record) or, for the releases CMS
published only as a workbook (2020-2024), its ANWEB ``.xlsx`` / legacy ``.xls``. Member names
drift every year (``HCPC17_CONTR_ANWEB.txt``, ``HCPC2025_JAN_ANWEB_12172024.txt``,
``HCPC2021_JULY_ANWEB_v2.xlsx``, ``HCPC2020_ANWEB_w_disclaimer.xls``, a mirror's ``anweb.xlsx``),
so the member is chosen by pattern, never by a fixed name. Nothing is extracted to disk: the member
is read into memory with a cap on its decompressed size (ZIP bombs), so hostile member names (path
traversal) are harmless. An ``.xlsx`` is itself a ZIP: it is told from a release ZIP by its parts.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from contracts.errors import TerminalError
from contracts.release import (
    REPORT_FORMATS,
    WORKBOOK_FORMATS,
    is_companion,
    is_transaction_report,
)
from contracts.settings import FetchSettings

MAX_MEMBER_BYTES = FetchSettings().max_member_bytes  # real files are 0.7-5.4 MB

#: Data file formats, the source of record first: a ZIP's TXT wins over its workbook.
DATA_FORMATS = (".txt", *WORKBOOK_FORMATS)
_FORMAT = r"\.(?:txt|xlsx|xls)$"
# On the name's last segment: HCPCnnnn_...ANWEB... (or A-N, 2013), or a mirror's bare anweb.xlsx.
_DATA_NAME = re.compile(rf"(?i)^(?:HCPC\d{{2,4}}_.*(?:ANWEB|A-N)|ANWEB).*{_FORMAT}")
_VERSION = re.compile(rf"(?i)_v(\d+)(?={_FORMAT})")
_STAMP = re.compile(rf"(?i)_(\d{{2}})(\d{{2}})(\d{{4}})(?={_FORMAT})")  # _MMDDYYYY
_BY_CODE = re.compile(r"(?i)by[ _-]?hcpc")  # Changes_by_HCPCSCode, ChangesbyHCPC
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (and password-protected .xlsx)
_OLE2_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")  # the stream of an encrypted workbook
_WORKBOOK_PARTS = {"[Content_Types].xml", "xl/workbook.xml"}


class ArchiveError(TerminalError, ValueError):
    """No trustworthy data file (none, ambiguous, corrupt, encrypted, too big, not a workbook)."""


@dataclass(frozen=True)
class DataMember:
    """A release's data file: ``name`` ends in .txt, .xlsx or .xls, saying how to parse ``data``."""

    name: str
    data: bytes


def _base(name: str) -> str:
    return re.split(r"[/\\]", name)[-1]


def data_format(name: str) -> str | None:
    """``.txt``, ``.xlsx`` or ``.xls`` when ``name`` is a release's data file, else None
    (transaction reports, corrections, NOC codes and record layouts are companions)."""
    base = _base(name)
    if not _DATA_NAME.search(base) or is_companion(base):
        return None
    return PurePosixPath(base.lower()).suffix


def member_rank(name: str) -> tuple[int, str]:
    """Later re-issues sort higher: the ``_vN`` number, else the ``_MMDDYYYY`` stamp as YYYYMMDD."""
    if m := _VERSION.search(name):
        return (int(m.group(1)), "")
    if m := _STAMP.search(name):
        return (0, m.group(3) + m.group(1) + m.group(2))
    return (0, "")


def _latest(names: list[str], where: str) -> str:
    """The latest revision among data files of one format; a tie is an error, never a guess."""
    ranked = sorted(names, key=member_rank, reverse=True)
    tied = [n for n in ranked if member_rank(n) == member_rank(ranked[0])]
    if len(tied) > 1:
        raise ArchiveError(
            f"{where}: ambiguous data file, {len(tied)} candidates with no revision order: "
            f"{', '.join(sorted(tied))}"
        )
    return ranked[0]


def _of_best_format(names: list[str], formats: tuple[str, ...]) -> list[str]:
    """The names of the first format in ``formats`` that any of them has."""
    by_format = {f: [n for n in names if data_format(n) == f] for f in formats}
    return next((found for found in by_format.values() if found), [])


def select_data_member(names: list[str], where: str = "archive") -> str:
    """The data file among ``names``: the TXT, else the workbook; the latest revision of it when
    CMS put several in one ZIP."""
    candidates = _of_best_format(names, DATA_FORMATS)
    if not candidates:
        raise ArchiveError(
            f"{where}: no HCPCS data file (HCPCnnnn_...ANWEB....txt, or its .xlsx/.xls workbook) "
            f"among its {len(names)} members: {', '.join(sorted(names)) or '(empty)'}"
        )
    return _latest(candidates, where)


def select_cross_check(names: list[str], where: str = "archive") -> str | None:
    """The ANWEB workbook beside the TXT the release is read from (to compare the two), else
    None: a workbook-only release has nothing to check against."""
    if data_format(select_data_member(names, where)) != ".txt":
        return None
    workbooks = _of_best_format(names, WORKBOOK_FORMATS)
    return _latest(workbooks, where) if workbooks else None


def report_format(name: str) -> str | None:
    """``.xlsx``, ``.xls``, ``.txt`` or ``.prn`` when ``name`` is a transaction report, else
    None."""
    base = _base(name)
    suffix = PurePosixPath(base.lower()).suffix
    return suffix if suffix in REPORT_FORMATS and is_transaction_report(base) else None


def _report_rank(name: str) -> tuple:
    """Higher is preferred: the format (``REPORT_FORMATS``), then the listing by code (each code
    once: the listing by action code has the same rows in another order), then the latest
    revision; the name breaks a tie, so the choice never depends on the listing order."""
    fmt = report_format(name) or ""
    return (-REPORT_FORMATS.index(fmt), bool(_BY_CODE.search(_base(name))), member_rank(name))


def select_report(names: list[str]) -> str | None:
    """The one transaction report to read among ``names`` (a ZIP's members, a folder's files),
    else None. CMS ships it two or three times (by action code, by HCPCS code, as a workbook)."""
    reports = sorted(n for n in names if report_format(n))
    return max(reports, key=_report_rank) if reports else None


def _workbook_name(name: str, data: bytes, max_bytes: int, where: str) -> str:
    """``name`` with the suffix the bytes call for (.xlsx or .xls), so the parser is chosen by
    content; ``ArchiveError`` when they are no usable workbook."""
    if data.startswith(_OLE2):
        if _OLE2_ENCRYPTED in data:
            raise ArchiveError(f"{where}: workbook {name} is encrypted (password-protected)")
        return str(PurePosixPath(name).with_suffix(".xls"))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            parts = book.infolist()
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"{where}: {name} is not a readable workbook ({exc})") from exc
    if not {p.filename for p in parts} >= _WORKBOOK_PARTS:
        raise ArchiveError(f"{where}: {name} is not an Excel workbook (no xl/workbook.xml)")
    if any(p.flag_bits & 0x1 for p in parts):
        raise ArchiveError(f"{where}: workbook {name} is encrypted")
    if (inflated := sum(p.file_size for p in parts)) > max_bytes:  # a bomb inside the workbook
        raise ArchiveError(
            f"{where}: workbook {name} declares {inflated:,} bytes uncompressed, over the "
            f"{max_bytes:,}-byte cap"
        )
    return str(PurePosixPath(name).with_suffix(".xlsx"))


def _read_member(zf: zipfile.ZipFile, name: str, max_bytes: int, where: str) -> DataMember:
    """One member's bytes, refusing unsafe names, encryption, corruption and sizes over the cap."""
    if name.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", name):
        raise ArchiveError(f"{where}: unsafe member name {name!r} (absolute or climbs with ..)")
    info = zf.getinfo(name)
    if info.flag_bits & 0x1:
        raise ArchiveError(f"{where}: member {name} is encrypted")
    if info.file_size > max_bytes:
        raise ArchiveError(
            f"{where}: member {name} declares {info.file_size:,} bytes, over the "
            f"{max_bytes:,}-byte cap"
        )
    try:
        with zf.open(info) as fh:
            data = fh.read(max_bytes + 1)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
        raise ArchiveError(f"{where}: member {name} is corrupt ({exc})") from exc
    if len(data) > max_bytes:
        raise ArchiveError(f"{where}: member {name} decompresses past the {max_bytes:,}-byte cap")
    if data_format(name) in WORKBOOK_FORMATS:
        name = _workbook_name(name, data, max_bytes, where)
    return DataMember(name=name, data=data)


def _open_zip(source: bytes | Path, where: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(source if isinstance(source, Path) else io.BytesIO(source))
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{where}: not a readable ZIP archive ({exc})") from exc


def _members(zf: zipfile.ZipFile) -> list[str]:
    return [i.filename for i in zf.infolist() if not i.is_dir()]


def read_data_member(
    source: bytes | Path, max_bytes: int = MAX_MEMBER_BYTES, where: str | None = None
) -> DataMember:
    """Open a release ZIP (bytes or path), choose its data file and return its bytes."""
    where = where or (str(source) if isinstance(source, Path) else "archive")
    with _open_zip(source, where) as zf:
        return _read_member(zf, select_data_member(_members(zf), where), max_bytes, where)


def file_format(path: Path, name: str | None = None) -> str:
    """What a file is, by its bytes: ``.zip`` (a release ZIP), ``.xlsx`` / ``.xls`` (a workbook)
    or ``.txt``. A damaged file keeps the kind its magic or the suffix of its ``name`` (default:
    the path's) claims, so it is reported as a damaged archive or workbook, not read as text."""
    with path.open("rb") as fh:
        head = fh.read(len(_OLE2))
    if head.startswith(_OLE2):
        return ".xls"
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                return ".xlsx" if set(zf.namelist()) >= _WORKBOOK_PARTS else ".zip"
        except (zipfile.BadZipFile, OSError):
            pass
    suffix = PurePosixPath(name or path.name).suffix.lower()
    if suffix in WORKBOOK_FORMATS:
        return suffix
    return ".zip" if suffix == ".zip" or head.startswith(b"PK\x03\x04") else ".txt"


def read_release_file(
    path: Path,
    max_bytes: int = MAX_MEMBER_BYTES,
    *,
    name: str | None = None,
    where: str | None = None,
) -> DataMember:
    """A release as users hand it over (a ZIP, the fixed-width ``.txt``, an ANWEB workbook) or
    as the raw store keeps it: its source-of-record data file.

    The format comes from the bytes, and the member's name gets the matching suffix, so a stored
    ``<sha256>.xlsx`` or a download called ``anweb`` still parses as a workbook. ``name`` is the
    file's real name when ``path`` is a temporary copy.
    """
    where = where or str(path)
    name = name or path.name
    kind = file_format(path, name)
    if kind == ".zip":
        return read_data_member(path, max_bytes, where)
    if (size := path.stat().st_size) > max_bytes:
        raise ArchiveError(f"{where}: {size:,} bytes, over the {max_bytes:,}-byte cap")
    data = path.read_bytes()
    if kind in WORKBOOK_FORMATS:
        return DataMember(_workbook_name(name, data, max_bytes, where), data)
    return DataMember(str(PurePosixPath(name).with_suffix(".txt")), data)


def read_report_member(path: Path, max_bytes: int = MAX_MEMBER_BYTES) -> DataMember | None:
    """The transaction report inside a release ZIP (``select_report``), with the caps and checks
    of any member; None for a ZIP without one and for a bare data file (the raw store keeps a
    loose file's report beside it: ``RawStore.transaction_report``)."""
    if file_format(path) != ".zip":
        return None
    where = str(path)
    with _open_zip(path, where) as zf:
        report = select_report(_members(zf))
        return _read_member(zf, report, max_bytes, where) if report else None


def read_cross_check(path: Path, max_bytes: int = MAX_MEMBER_BYTES) -> DataMember | None:
    """The ANWEB workbook of a release ZIP that also holds its TXT (2017, 2019, 2026: CMS ships
    both, and they disagree in places), else None (a workbook-only ZIP, a bare file)."""
    if file_format(path) != ".zip":
        return None
    where = str(path)
    with _open_zip(path, where) as zf:
        workbook = select_cross_check(_members(zf), where)
        return _read_member(zf, workbook, max_bytes, where) if workbook else None
