"""Release identity: ``YYYY-Qn`` (a quarter) plus ``rN`` when CMS re-issues that quarter.

CMS names its ZIPs and data files differently almost every year, so the quarter is read from any
of the names a release carries: the URL slug (``january-2026-alpha-numeric-hcpcs-file.zip``,
``october-2023-alpha-numeric-hcpcs-files.zip``), the annual ZIP
(``2019-Alpha-Numeric-HCPCS-File.zip``, ``2015-Annual-...``: the January = Q1 release), the
old ``14anweb.zip``, or the data member itself (``HCPC2025_JAN_ANWEB_12172024.txt``,
``HCPC17_CONTR_ANWEB.txt``). Companion files (corrections, NOC codes, record layouts, indexes) are
not releases and give ``None``.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

#: Month words CMS uses in slugs and member names -> quarter (January is also the annual file).
MONTH_QUARTER: dict[str, int] = {
    "january": 1, "jan": 1, "april": 2, "apr": 2, "july": 3, "jul": 3, "october": 4, "oct": 4,
}  # fmt: skip

_NOT_A_RELEASE = re.compile(r"(?i)correction|noc|record-?layout|index|table-of-drugs")
_MONTH = "|".join(sorted(MONTH_QUARTER, key=len, reverse=True))
# Patterns are tried in order on the last path segment, lower-cased.
_SLUG_MONTH = re.compile(rf"^({_MONTH})-(\d{{4}})-alpha-numeric-hcpcs-files?\b")
_SLUG_ANNUAL = re.compile(r"^(\d{4})-(?:annual-)?alpha-numeric-hcpcs-files?\b")
_OLD_ANWEB = re.compile(r"^(\d{2})anweb\.zip$")
_MEMBER = re.compile(rf"^hcpc(\d{{4}}|\d{{2}})_(?:(?:contr|{_MONTH})_)?(?:anweb|a-n)(?![a-z])")
_MEMBER_MONTH = re.compile(rf"^hcpc\d{{2,4}}_({_MONTH})_")
_RELEASE_ID = re.compile(r"(\d{4})-Q([1-4])(?:r([2-9]|[1-9]\d+))?")


class ReleaseIdError(ValueError):
    """A release id that is not ``YYYY-Qn`` or ``YYYY-QnrN`` (N >= 2)."""


def _year(text: str) -> int:
    year = int(text)
    return year + 2000 if year < 100 else year


def release_from_name(name: str) -> str | None:
    """The quarter (``YYYY-Qn``) a URL, slug, ZIP or data-member name belongs to, else ``None``."""
    path = urlsplit(name).path if "://" in name else name
    segment = unquote(path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]).lower()
    if not segment or _NOT_A_RELEASE.search(segment):
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
