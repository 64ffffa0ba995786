"""Find Alpha-Numeric HCPCS release ZIPs on CMS web pages.

CMS has rebuilt its site several times (``/Medicare/Coding/HCPCSReleaseCodeSets/Downloads/...``,
``/files/zip/...``, item pages, quarterly-update pages), so links are matched by what they point to,
never by page structure: any URL-like token ending in ``.zip`` (in an attribute, quoted or not, in
inline JSON, in text) whose name ``release_from_name`` recognises. Relative links are resolved
against the page, ``&amp;`` and ``\\/`` escapes are undone, case does not matter.

Discovery keeps the fetch's limits: every page is read by ``http_get``, and all the pages of one
discovery share one deadline, ``max_total_seconds``. Credentials in the page URL (or a link) are
kept for the download (``contracts.urls.strip_credentials``); the links returned are redacted.
"""

from __future__ import annotations

import html
import io
import re
import time
from dataclasses import replace
from urllib.parse import urljoin, urlsplit

from contracts.release import ReleaseFile, release_from_name, sort_files
from contracts.settings import FetchSettings
from contracts.urls import strip_credentials
from sources.fetch import FetchError, http_get

MAX_PAGE_BYTES = 5 * 1024 * 1024
MAX_FOLLOWED_PAGES = 40
_ZIP = re.compile(r"""(?i)[^\s"'<>()\[\]{},=]+\.zip(?![a-z0-9])(?:\?[^\s"'<>]*)?""")
# Pages that may list release ZIPs: CMS item pages and per-year / quarterly-update pages.
_PAGE = re.compile(
    r"""(?i)[^\s"'<>()\[\]{},=]*(?:alpha-numeric-hcpcs-items/|hcpcs-quarterly-update|"""
    r"""quarterly-update)[^\s"'<>()\[\]{},=#]*"""
)


_LINK_ATTRIBUTE = re.compile(r"""(?i)(?:href|src)\s*=\s*["']?$""")


def _tokens(pattern: re.Pattern[str], text: str, base_url: str) -> list[str]:
    """URL-like tokens, resolved. Absolute and root-relative ones count anywhere (inline JSON,
    scripts); a page-relative one only as an href/src value: in prose, a comment or a title it is
    a name, not a link."""
    text = html.unescape(text.replace("\\/", "/"))
    out: dict[str, None] = {}
    for m in pattern.finditer(text):
        token = m.group(0)
        absolute = token.startswith(("/", "http:", "https:"))
        if absolute or _LINK_ATTRIBUTE.search(text, max(0, m.start() - 12), m.start()):
            out.setdefault(urljoin(base_url, token), None)
    return list(out)


def extract_release_links(html_text: str, base_url: str) -> list[str]:
    """Absolute URLs of every release ZIP linked from a page, in page order, without duplicates."""
    return [u for u in _tokens(_ZIP, html_text, base_url) if release_from_name(u)]


def _page_links(html_text: str, base_url: str) -> list[str]:
    host = urlsplit(base_url).netloc
    return [
        u
        for u in _tokens(_PAGE, html_text, base_url)
        if urlsplit(u).netloc == host and urlsplit(u).scheme in ("http", "https")
    ]


def _get_page(url: str, settings: FetchSettings, deadline: float) -> str:
    """The text of one page, within what is left of the discovery's deadline."""
    if time.monotonic() >= deadline:
        raise FetchError(
            f"{url}: not read: discovery passed its {settings.max_total_seconds:g} s time limit "
            f"(HCPCS_FETCH_MAX_TOTAL_SECONDS)",
            transient=True,
        )
    sink = io.BytesIO()
    page = replace(settings, max_bytes=MAX_PAGE_BYTES, max_attempts=min(settings.max_attempts, 3))
    http_get(url, sink, settings=page, deadline_at=deadline)
    return sink.getvalue().decode("utf-8", errors="replace")


def discover(page_url: str, *, settings: FetchSettings | None = None) -> list[ReleaseFile]:
    """Release ZIPs linked from ``page_url`` and from the item/year pages it links to (one level).

    Raises ``FetchError`` when a page cannot be read: a silent gap would look like "no release".
    """
    settings = settings or FetchSettings()
    deadline = time.monotonic() + settings.max_total_seconds
    page_url = strip_credentials(page_url)
    first = _get_page(page_url, settings, deadline)
    links = [strip_credentials(u) for u in extract_release_links(first, page_url)]
    seen = {page_url}
    for page in map(strip_credentials, _page_links(first, page_url)[:MAX_FOLLOWED_PAGES]):
        if page in seen:
            continue
        seen.add(page)
        found = extract_release_links(_get_page(page, settings, deadline), page)
        links += [u for u in map(strip_credentials, found) if u not in links]
    return sort_files([ReleaseFile(release_from_name(u), u) for u in links])
