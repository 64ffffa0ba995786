"""Source benchmarks: demo generation, fetch of real CMS ZIPs (path, local HTTP), link extraction.

Run with ``make bench``; figures are printed, never asserted.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from sources.demo import write_demo_releases
from sources.discover import extract_release_links
from sources.fetch import fetch
from sources.rawstore import RawStore

pytestmark = pytest.mark.bench

HTML = Path(__file__).parents[1] / "fixtures" / "html" / "cms-2025-quarterly-update.html"


def _median(run, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_bench_demo_generation(tmp_path: Path) -> None:
    counter = iter(range(100))
    seconds = _median(lambda: write_demo_releases(tmp_path / str(next(counter))))
    size = sum(p.stat().st_size for p in (tmp_path / "0").iterdir())
    print(f"\ndemo: 9 ZIPs ({size:,} bytes) generated in {seconds * 1000:.0f} ms (median of 5)")


def test_bench_fetch_real_zip(cms_dir: Path, tmp_path: Path, httpserver) -> None:
    zip_path = cms_dir / "2019-annual/2019-Alpha-Numeric-HCPCS-File.zip"
    data = zip_path.read_bytes()
    httpserver.expect_request("/2019-Alpha-Numeric-HCPCS-File.zip").respond_with_data(data)
    url = httpserver.url_for("/2019-Alpha-Numeric-HCPCS-File.zip")
    counter = iter(range(100))
    local = _median(lambda: fetch(str(zip_path), RawStore(tmp_path / f"p{next(counter)}")))
    remote = _median(lambda: fetch(url, RawStore(tmp_path / f"h{next(counter)}")))
    store = RawStore(tmp_path / "again")
    fetch(url, store)
    noop = _median(lambda: fetch(url, store))
    mb = len(data) / 1e6
    print(
        f"\nfetch 2019 ZIP ({mb:.2f} MB, member verified): path {local * 1000:.0f} ms, "
        f"local HTTP {remote * 1000:.0f} ms ({mb / remote:.0f} MB/s), "
        f"re-fetch no-op {noop * 1000:.0f} ms (median of 5)"
    )


def test_bench_link_extraction() -> None:
    page = HTML.read_text()
    big = page * 200  # ~1000 links, about the size of a long CMS archive page
    seconds = _median(lambda: extract_release_links(big, "https://www.cms.gov/x/quarterly-update"))
    print(f"\nlink extraction: {len(big):,} characters of HTML in {seconds * 1000:.1f} ms")
