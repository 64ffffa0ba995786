"""Regenerate the README's gate tables from the data: ``python -m expectations.readme``.

The gate section of README.md holds two generated blocks, between ``<!-- gate:checks -->`` and
``<!-- gate:domains -->`` markers (each closed by ``<!-- /gate:... -->``); a test checks they match.
"""

from __future__ import annotations

import re
from pathlib import Path

from expectations.domains import domains_markdown
from expectations.suite import checks_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def render(text: str) -> str:
    """``text`` with every generated block replaced by its current content."""
    for name, content in (("checks", checks_markdown()), ("domains", domains_markdown())):
        pattern = re.compile(rf"(<!-- gate:{name} -->\n).*?(<!-- /gate:{name} -->)", re.S)
        text = pattern.sub(lambda m, c=content: m.group(1) + c + "\n" + m.group(2), text)
    return text


if __name__ == "__main__":
    README.write_text(render(README.read_text()))
