"""The overview's charts: Altair specifications rendered to SVG at build time by ``vl-convert``.

The SVG goes inline into the page, so the site needs no JavaScript and no network to show them.
Each chart takes plain rows (``report.data``) and returns the SVG text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import altair as alt
import vl_convert

WIDTH = 640
HEIGHT = 240


@dataclass(frozen=True)
class Chart:
    """One chart of the overview: a title, what it shows, its SVG, and the rows it draws."""

    key: str
    title: str
    caption: str
    svg: str
    rows: list[dict[str, Any]]


def _svg(chart: alt.Chart) -> str:
    """The chart as inline SVG; no rows, no chart (the page says there is nothing to draw)."""
    if not chart.data.values:
        return ""
    spec = chart.properties(width=WIDTH, height=HEIGHT).configure_view(stroke=None).to_dict()
    svg = vl_convert.vegalite_to_svg(spec)
    return svg[svg.index("<svg"):]  # inline: no XML declaration


def _release_axis(releases: list[str]) -> alt.X:
    angle = 0 if len(releases) <= 12 else -90  # many releases: labels upright would overlap
    return alt.X("release:N", sort=releases, title="release", axis=alt.Axis(labelAngle=angle))


def stacked(key: str, title: str, caption: str, rows: list[dict[str, Any]], releases: list[str],
            series: str, value: str) -> Chart:
    """Bars per release, stacked by ``series``."""
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        _release_axis(releases), alt.Y(f"{value}:Q", title=value),
        alt.Color(f"{series}:N", title=series), tooltip=[f"{series}:N", f"{value}:Q"])
    return Chart(key, title, caption, _svg(chart), rows)


def grouped(key: str, title: str, caption: str, rows: list[dict[str, Any]], releases: list[str],
            series: str, value: str) -> Chart:
    """Bars per release, side by side by ``series``."""
    chart = alt.Chart(alt.Data(values=rows)).mark_bar().encode(
        _release_axis(releases), alt.Y(f"{value}:Q", title=value),
        alt.XOffset(f"{series}:N"), alt.Color(f"{series}:N", title=series),
        tooltip=[f"{series}:N", f"{value}:Q"])
    return Chart(key, title, caption, _svg(chart), rows)
