"""Render every generated block of ``docs/`` from the data it documents: ``make docs``.

A block sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->`` in one docs
file; ``BLOCKS`` says which file and which function renders it. ``python -m flows.render_docs``
rewrites them; ``--check`` (and ``tests/test_docs.py``, so ``make test``) fails when one is stale.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from contracts.domains import DOMAINS
from contracts.layout import domain_columns, layout_markdown
from expectations.suite import checks_markdown
from sources.demo import demo_markdown
from sources.registry import sources_markdown
from transforms.reconcile import differences_markdown
from warehouse.database import schema_markdown
from warehouse.export import contract_markdown
from warehouse.views import views_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs"


def domains_markdown() -> str:
    """Every code domain as a section with a code/meaning table."""
    parts: list[str] = []
    for name, d in DOMAINS.items():
        cols = ", ".join(f"`{c}`" for c in domain_columns(name))
        cols = cols or "(structure: the parser's `kind`)"
        rows = [f"| `{code}` | {meaning}{' *(obsolete: warning)*' if code in d.obsolete else ''} |"
                for code, meaning in d.values.items()]
        parts.append(f"#### `{name}` ({len(d.values)} values)\n\n{d.description} Decodes: {cols}. "
                     f"Source: {d.source}.\n\n| code | meaning |\n|---|---|\n" + "\n".join(rows))
    return "\n\n".join(parts)


#: Block name -> (docs file, renderer).
BLOCKS: dict[str, tuple[str, Callable[[], str]]] = {
    "layout": ("format.md", layout_markdown),
    "differences": ("format.md", differences_markdown),
    "checks": ("validation.md", checks_markdown),
    "domains": ("validation.md", domains_markdown),
    "demo": ("sources.md", demo_markdown),
    "sources": ("sources.md", sources_markdown),
    "schema": ("warehouse.md", schema_markdown),
    "views": ("warehouse.md", views_markdown),
    "export": ("downstream.md", contract_markdown),
}


def render(text: str, names: list[str]) -> str:
    """``text`` with the named blocks replaced by their current content; a missing block is an
    error (a renamed marker must not silently stop a table from being checked)."""
    for name in names:
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(<!-- /generated:{name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"no <!-- generated:{name} --> block")
        content = BLOCKS[name][1]()
        text = pattern.sub(lambda m, c=content: m.group(1) + c + "\n" + m.group(2), text)
    return text


def _files() -> dict[Path, list[str]]:
    files: dict[Path, list[str]] = {}
    for name, (file, _) in BLOCKS.items():
        files.setdefault(DOCS / file, []).append(name)
    return files


def stale() -> list[str]:
    """Docs files whose generated blocks differ from what the data renders now."""
    return [str(path) for path, names in _files().items()
            if render(path.read_text(), names) != path.read_text()]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        out = stale()
        for path in out:
            print(f"stale generated block in {path}: run `make docs`", file=sys.stderr)
        return 1 if out else 0
    for path, names in _files().items():
        path.write_text(render(path.read_text(), names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
