"""The README is a front page and every generated block of docs/ matches the data it shows."""

from __future__ import annotations

import re

from flows import render_docs
from tests.conftest import ROOT


def test_every_generated_block_is_current() -> None:
    assert render_docs.stale() == [], "run `make docs`"


def test_every_block_is_in_its_file_once() -> None:
    for name, (file, _) in render_docs.BLOCKS.items():
        text = (render_docs.DOCS / file).read_text()
        assert text.count(f"<!-- generated:{name} -->") == 1, (file, name)


def test_a_stale_block_is_found(tmp_path, monkeypatch) -> None:
    for file in {f for f, _ in render_docs.BLOCKS.values()}:
        (tmp_path / file).write_text((render_docs.DOCS / file).read_text())
    monkeypatch.setattr(render_docs, "DOCS", tmp_path)
    layout = tmp_path / "format.md"
    layout.write_text(layout.read_text().replace("| `statute` | 171-180", "| `statute` | 170-179"))
    assert render_docs.stale() == [str(layout)]
    assert render_docs.main([]) == 0 and render_docs.stale() == []


def test_readme_is_a_front_page_linking_every_docs_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "make run" in readme and "make test" in readme
    linked = set(re.findall(r"\(docs/([a-z_-]+\.md)\)", readme))
    assert linked == {p.name for p in (ROOT / "docs").glob("*.md")}
