"""The shape of the code: stages import downward only, through one shared contracts layer, with no
import cycles, and heavy frameworks stay in their own stage.

Every import counts, including those inside functions and ``TYPE_CHECKING`` blocks: a lazy import
is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ROOT

#: Stage -> the first-party packages it may import (itself included).
ALLOWED: dict[str, set[str]] = {
    "contracts": {"contracts"},
    "transforms": {"contracts", "transforms"},
    "sources": {"contracts", "transforms", "sources"},
    "expectations": {"contracts", "transforms", "expectations"},
    "warehouse": {"contracts", "transforms", "sources", "expectations", "warehouse"},
    "report": {"contracts", "sources", "warehouse", "report"},
    "flows": {"contracts", "transforms", "sources", "expectations", "warehouse", "report",
              "flows"},
}
#: Third-party frameworks and the only stages that may import them.
CONFINED: dict[str, set[str]] = {
    "prefect": {"flows"},
    "great_expectations": {"expectations"},
    "duckdb": {"warehouse", "report", "flows"},
    "httpx": {"sources"},
    "altair": {"report"},
    "vl_convert": {"report"},
    "jinja2": {"report"},
}


def _modules(root: Path) -> Iterator[tuple[str, Path]]:
    for stage in ALLOWED:
        for path in sorted((root / stage).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            yield ".".join(p for p in parts if p != "__init__"), path


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            # ``from pkg import module`` imports the module too
            yield from ((node.lineno, f"{node.module}.{a.name}") for a in node.names)


def violations(root: Path) -> list[str]:
    """Every import that breaks the direction, leaves its stage's frameworks, or closes a cycle."""
    modules = dict(_modules(root))
    graph: dict[str, set[str]] = {m: set() for m in modules}
    out = []
    for module, path in modules.items():
        stage = module.split(".")[0]
        for line, name in _imports(path):
            top = name.split(".")[0]
            where = f"{path.relative_to(root)}:{line} imports {name}"
            if top in ALLOWED and top not in ALLOWED[stage]:
                out.append(f"{where}: {stage} may import only {sorted(ALLOWED[stage])}")
            if top in CONFINED and stage not in CONFINED[top]:
                out.append(f"{where}: {top} belongs in {sorted(CONFINED[top])}")
            if name in modules and name != module:
                graph[module].add(name)
    out += [f"import cycle: {' -> '.join(c)}" for c in _cycles(graph)]
    return sorted(set(out))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (depth-first search)."""
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                found.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_stages_import_downward_only_without_cycles() -> None:
    assert violations(ROOT) == []


def test_a_sideways_import_and_a_cycle_are_caught(tmp_path: Path) -> None:
    for stage in ALLOWED:
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "__init__.py").write_text("")
    (tmp_path / "sources" / "a.py").write_text("def f():\n    from warehouse import b\n")
    (tmp_path / "warehouse" / "b.py").write_text("import duckdb\nfrom warehouse import c\n")
    (tmp_path / "warehouse" / "c.py").write_text("from warehouse.b import x\n")
    (tmp_path / "contracts" / "d.py").write_text("import prefect\n")
    found = violations(tmp_path)
    assert [f.split(":")[0] for f in found] == [
        "contracts/d.py", "import cycle", "sources/a.py", "sources/a.py"], found
    assert found[0] == "contracts/d.py:1 imports prefect: prefect belongs in ['flows']"
    assert found[1] == "import cycle: warehouse.b -> warehouse.c -> warehouse.b"
    assert found[3] == ("sources/a.py:2 imports warehouse: sources may import only "
                        "['contracts', 'sources', 'transforms']")
