"""Choose and read the fixed-width data file inside a CMS release ZIP, safely.

Member names drift every year (``HCPC17_CONTR_ANWEB.txt``, ``HCPC2018_CONTR_ANWEB_disc.txt``,
``HCPC2025_JAN_ANWEB_12172024.txt``, ``HCPC2026_OCT_ANWEB_v2.txt``...), so the member is chosen by
pattern, never by a fixed name. Nothing is extracted to disk: the member is read into memory with a
cap on its decompressed size (ZIP bombs), so hostile member names (path traversal) are harmless.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from contracts.errors import TerminalError
from contracts.settings import FetchSettings

MAX_MEMBER_BYTES = FetchSettings().max_member_bytes  # real files are 2.4-5.4 MB

_DATA_MEMBER = re.compile(r"(?i)(?:^|/)HCPC\d{2,4}_[^/]*(?:ANWEB|A-N)[^/]*\.txt$")
_VERSION = re.compile(r"(?i)_v(\d+)(?=\.txt$)")
_STAMP = re.compile(r"_(\d{2})(\d{2})(\d{4})(?=\.txt$)")  # _MMDDYYYY


class ArchiveError(TerminalError, ValueError):
    """The ZIP cannot give one trustworthy data file (none, ambiguous, corrupt, encrypted, big)."""


@dataclass(frozen=True)
class DataMember:
    name: str
    data: bytes


def member_rank(name: str) -> tuple[int, str]:
    """Later re-issues sort higher: the ``_vN`` number, else the ``_MMDDYYYY`` stamp as YYYYMMDD."""
    if m := _VERSION.search(name):
        return (int(m.group(1)), "")
    if m := _STAMP.search(name):
        return (0, m.group(3) + m.group(1) + m.group(2))
    return (0, "")


def select_data_member(names: list[str], where: str = "archive") -> str:
    """The data file among ``names``; the latest revision when CMS put several in one ZIP."""
    candidates = [n for n in names if _DATA_MEMBER.search(n) and "recordlayout" not in n.lower()]
    if not candidates:
        raise ArchiveError(
            f"{where}: no HCPCS fixed-width data file (HCPCnnnn_...ANWEB....txt) among its "
            f"{len(names)} members: {', '.join(sorted(names)) or '(empty)'}"
        )
    ranked = sorted(candidates, key=member_rank, reverse=True)
    if len(ranked) > 1 and member_rank(ranked[0]) == member_rank(ranked[1]):
        tied = [n for n in ranked if member_rank(n) == member_rank(ranked[0])]
        raise ArchiveError(
            f"{where}: ambiguous data file, {len(tied)} candidates with no revision order: "
            f"{', '.join(sorted(tied))}"
        )
    return ranked[0]


def read_data_member(
    source: bytes | Path, max_bytes: int = MAX_MEMBER_BYTES, where: str | None = None
) -> DataMember:
    """Open a release ZIP (bytes or path), choose its data file and return its bytes."""
    where = where or (str(source) if isinstance(source, Path) else "archive")
    try:
        zf = zipfile.ZipFile(source if isinstance(source, Path) else io.BytesIO(source))
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{where}: not a readable ZIP archive ({exc})") from exc
    with zf:
        infos = {i.filename: i for i in zf.infolist() if not i.is_dir()}
        name = select_data_member(list(infos), where)
        if name.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", name):
            raise ArchiveError(f"{where}: unsafe member name {name!r} (absolute or climbs with ..)")
        info = infos[name]
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
            raise ArchiveError(
                f"{where}: member {name} decompresses past the {max_bytes:,}-byte cap"
            )
        return DataMember(name=name, data=data)


def read_release_file(path: Path) -> DataMember:
    """A release as users hand it over: a ZIP, or the extracted fixed-width ``.txt`` itself.

    A file named .zip or starting like one is read as a ZIP, so a damaged archive is reported as
    such rather than parsed as text.
    """
    with path.open("rb") as fh:
        magic = fh.read(4)
    if zipfile.is_zipfile(path) or path.suffix.lower() == ".zip" or magic == b"PK\x03\x04":
        return read_data_member(path)
    return DataMember(name=path.name, data=path.read_bytes())
