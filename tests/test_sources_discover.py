"""Discovery of release ZIP links on CMS-shaped pages, static and served by a real local server."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from contracts.release import ReleaseFile
from contracts.settings import FetchSettings
from sources.demo import write_demo_releases
from sources.discover import discover, extract_release_links
from sources.fetch import FetchError, fetch
from sources.rawstore import RawStore
from sources.registry import resolve_source

HTML = Path(__file__).parent / "fixtures" / "html"
CMS = "https://www.cms.gov"
HCPCS = "/medicare/coding-billing/healthcare-common-procedure-system"
QUARTERLY = f"{HCPCS}/quarterly-update"
DL = f"{CMS}/Medicare/Coding/HCPCSReleaseCodeSets/Downloads"
ITEM_2024 = f"{HCPCS}/alpha-numeric-hcpcs-items/2024-alpha-numeric-hcpcs-file"


def page(name: str) -> str:
    return (HTML / name).read_text()


def test_2019_page_relative_links_and_companion_files() -> None:
    base = f"{CMS}/Medicare/Coding/HCPCSReleaseCodeSets/Alpha-Numeric-HCPCS.html"
    assert extract_release_links(page("cms-2019-alpha-numeric-hcpcs.html"), base) == [
        f"{DL}/2019-Alpha-Numeric-HCPCS-File.zip",
        f"{CMS}/Medicare/Coding/Downloads/2018-Alpha-Numeric-HCPCS-File.zip",  # '../Downloads/'
        f"{DL}/2017-Alpha-Numeric-HCPCS-File.zip",  # href="Downloads/..."
        f"{DL}/2015-Annual-Alpha-Numeric-HCPCS-File.zip",
        "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets/Downloads/14anweb.zip",
    ]  # corrections, record layout, NOC codes, PDFs and the repeated link are left out


def test_current_page_json_unquoted_uppercase_plural_and_entities() -> None:
    assert extract_release_links(page("cms-2025-quarterly-update.html"), CMS + QUARTERLY) == [
        f"{CMS}/files/zip/october-2025-alpha-numeric-hcpcs-file.zip",  # "\/files\/zip\/..." in JSON
        f"{CMS}/files/zip/july-2025-alpha-numeric-hcpcs-file.zip",  # not also its title= name
        f"{CMS}/files/zip/april-2025-alpha-numeric-hcpcs-file.zip",  # href=... unquoted
        f"{CMS}/files/zip/January-2025-Alpha-Numeric-HCPCS-File.ZIP?download=1&v=2",
        f"{CMS}/files/zip/october-2024-alpha-numeric-hcpcs-files.zip",
    ]


def test_links_in_prose_or_plain_text() -> None:
    text = (
        "Get it at https://www.cms.gov/files/zip/july-2026-alpha-numeric-hcpcs-file.zip, "
        "or see 2026-alpha-numeric-hcpcs-file.zip in the archive; "
        '<a href="/x/a.zip">other</a> '
        "<a href='/files/zip/2020-corrections-alpha-numeric-hcpcs-file.zip'>corrections</a>"
    )
    assert extract_release_links(text, "https://example.org/page") == [
        "https://www.cms.gov/files/zip/july-2026-alpha-numeric-hcpcs-file.zip"
    ]


@pytest.fixture
def cms_site(httpserver: HTTPServer) -> HTTPServer:
    httpserver.expect_request(QUARTERLY).respond_with_data(
        page("cms-2025-quarterly-update.html"), content_type="text/html"
    )
    httpserver.expect_request(ITEM_2024).respond_with_data(
        page("cms-2024-item-page.html"), content_type="text/html"
    )
    return httpserver


def test_discover_follows_item_pages_on_a_real_server(cms_site: HTTPServer) -> None:
    local = cms_site.url_for("/").rstrip("/")
    entries = discover(cms_site.url_for(QUARTERLY), settings=FetchSettings(timeout=5))
    assert entries == [
        ReleaseFile("2024-Q1", f"{local}/files/zip/2024-alpha-numeric-hcpcs-file.zip"),
        ReleaseFile("2024-Q2", f"{local}/files/zip/april-2024-alpha-numeric-hcpcs-files.zip"),
        ReleaseFile("2024-Q3", f"{local}/files/zip/july-2024-alpha-numeric-hcpcs-file.zip"),
        ReleaseFile("2024-Q4", f"{local}/files/zip/october-2024-alpha-numeric-hcpcs-files.zip"),
        ReleaseFile(
            "2025-Q1", f"{CMS}/files/zip/January-2025-Alpha-Numeric-HCPCS-File.ZIP?download=1&v=2"
        ),
        ReleaseFile("2025-Q2", f"{local}/files/zip/april-2025-alpha-numeric-hcpcs-file.zip"),
        ReleaseFile("2025-Q3", f"{local}/files/zip/july-2025-alpha-numeric-hcpcs-file.zip"),
        ReleaseFile("2025-Q4", f"{local}/files/zip/october-2025-alpha-numeric-hcpcs-file.zip"),
    ]
    assert [r.path for r, _ in cms_site.log] == [QUARTERLY, ITEM_2024]  # other hosts not followed


def test_page_url_as_source_then_fetch_a_discovered_zip(cms_site: HTTPServer, tmp_path) -> None:
    demo = {p.name: p for p in write_demo_releases(tmp_path / "demo")}
    zip_path = "/files/zip/july-2025-alpha-numeric-hcpcs-file.zip"
    cms_site.expect_request(zip_path).respond_with_data(
        demo["july-2025-alpha-numeric-hcpcs-file.zip"].read_bytes(), content_type="application/zip"
    )
    entries = resolve_source(cms_site.url_for(QUARTERLY), tmp_path)
    entry = next(e for e in entries if e.source_url.endswith(zip_path))
    result = fetch(entry.source_url, RawStore(tmp_path / "raw"), release=entry.release_id)
    assert (result.release_id, result.member_name, result.status) == (
        "2025-Q3", "HCPC2025_JUL_ANWEB.txt", "new"
    )  # fmt: skip


def test_missing_page_is_a_clear_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request(QUARTERLY).respond_with_data("gone", status=404)
    url = httpserver.url_for(QUARTERLY)
    with pytest.raises(FetchError) as err:
        discover(url, settings=FetchSettings(timeout=5))
    assert str(err.value) == f"{url}: HTTP 404 NOT FOUND (attempt 1 of 3, not retried)"
