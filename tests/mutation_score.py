"""The mutation score of ``make mutants``, per module and per module group, and every survivor.

mutmut keeps each mutant's outcome in ``mutants/<file>.meta`` and the lines of each generated
function in ``mutants/<file>.spans``; this reads both (nothing is re-run) and prints, for every
file of ``[tool.mutmut] only_mutate``: killed / total and the share, then each mutant that no
test killed as ``file:line function: original -> mutated`` (the line is the source's, not the
mutated copy's), so a survivor can be found, and killed or explained in docs/mutants.md.

Killed counts a timeout (the mutant made a test hang: a test noticed) and a crash; survived
counts a mutant no test saw fail, including one no selected test ever runs ("no tests"). A
mutant an interrupted run left "not checked" is counted in neither.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import random
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parents[1]
#: The module groups issue 17 names, each scored as a whole too.
GROUPS: dict[str, tuple[str, ...]] = {
    "layout and parser": ("contracts/layout.py", "transforms/fixed_width.py"),
    "gate rules": ("expectations/suite.py", "expectations/frame.py", "expectations/vanished.py"),
    "history and changes": ("warehouse/history.py", "warehouse/changes.py"),
}
SEED = 17
DETECTED = {"killed", "timeout", "segfault"}
UNDETECTED = {"survived", "no tests"}


@dataclass(frozen=True)
class Mutant:
    """One mutant of a file: its mutmut name and what mutmut made of it."""

    name: str
    status: str


def mutated_files(root: Path) -> list[str]:
    """The files ``make mutants`` mutates, as ``pyproject.toml`` lists them."""
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def mutants_of(root: Path, file: str) -> list[Mutant]:
    """Every mutant of ``file`` with its status; [] when mutmut made none (or has not run)."""
    meta = root / "mutants" / f"{file}.meta"
    if not meta.exists():
        return []
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return [Mutant(name, status_by_exit_code[code]) for name, code in sorted(codes.items())]


def _function_lines(source: str) -> dict[str, int]:
    """mutmut's name of each function and method (``x_f``, ``xǁClassǁm``) -> its ``def`` line."""
    lines: dict[str, int] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            lines[f"x_{node.name}"] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for method in node.body:
                if isinstance(method, ast.FunctionDef):
                    lines[f"xǁ{node.name}ǁ{method.name}"] = method.lineno
    return lines


def _def_index(lines: list[str]) -> int:
    return next(i for i, line in enumerate(lines) if line.lstrip().startswith("def "))


def where(root: Path, file: str, mutant: str) -> tuple[str, int, str]:
    """The function a mutant is in, the source line it changes, and the change itself
    (``original -> mutated``, that line of each, stripped)."""
    generated = mutant.rpartition(".")[2]
    function = generated.partition("__mutmut_")[0]
    spans = json.loads((root / "mutants" / f"{file}.spans").read_text())["spans"]
    mutated = (root / "mutants" / file).read_text().splitlines()
    orig_start, orig_end = spans[f"{function}__mutmut_orig"]
    new_start, new_end = spans[generated]
    before = [
        line.replace(f"{function}__mutmut_orig", function)
        for line in mutated[orig_start - 1 : orig_end]
    ]
    after = [line.replace(generated, function) for line in mutated[new_start - 1 : new_end]]
    before, after = before[_def_index(before) :], after[_def_index(after) :]
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    _, i1, i2, j1, j2 = next(op for op in matcher.get_opcodes() if op[0] != "equal")
    old = " ".join(line.strip() for line in before[i1:i2]) or "(nothing)"
    new = " ".join(line.strip() for line in after[j1:j2]) or "(removed)"
    line = _function_lines((root / file).read_text())[function] + i1
    name = function.removeprefix("x_").replace("xǁ", "").replace("ǁ", ".")
    return name, line, f"{old}  ->  {new}"


def sample(mutants: list[Mutant], file: str, size: int | None) -> list[Mutant]:
    """``size`` of a file's mutants drawn at random, the same ones on every call (all when None or
    when it has fewer): a full run takes hours on two cores, a sample of each module minutes."""
    if size is None or len(mutants) <= size:
        return mutants
    return sorted(random.Random(f"{SEED}:{file}").sample(mutants, size), key=lambda m: m.name)


def _tried(mutants: list[Mutant]) -> list[Mutant]:
    """The mutants a run has tried (an interrupted run leaves some "not checked")."""
    return [m for m in mutants if m.status != "not checked"]


def _row(label: str, mutants: list[Mutant], of: int) -> str:
    count = Counter(m.status for m in mutants)
    killed = sum(count[s] for s in DETECTED)
    total = len(_tried(mutants))
    share = f"{100 * killed / total:5.1f} %" if total else "    - "
    others = ", ".join(f"{n} {s}" for s, n in sorted(count.items()) if s not in DETECTED)
    return f"{label:<28} {killed:>5} / {total:<5} {of:>6} {share}   {others}"


def _estimate(label: str, parts: list[tuple[list[Mutant], int]]) -> str:
    """A group's share of killed mutants: each module's share weighted by its number of mutants
    (a sample stands for its whole module)."""
    parts = [(_tried(ms), of) for ms, of in parts]
    weighted = sum(of * sum(m.status in DETECTED for m in ms) / len(ms) for ms, of in parts if ms)
    total = sum(of for ms, of in parts if ms)
    share = f"{100 * weighted / total:5.1f} %" if total else "    - "
    killed = sum(m.status in DETECTED for ms, _ in parts for m in ms)
    return f"{label:<28} {killed:>5} / {sum(len(ms) for ms, _ in parts):<5} {total:>6} {share}"


def report(root: Path, size: int | None = None) -> str:
    """The score table (modules, then groups, then all) and the survivors, as printed; with
    ``size``, over the sample of each module that ``--names`` lists."""
    files = mutated_files(root)
    every = {f: mutants_of(root, f) for f in files}
    if not any(every.values()):
        return "no results under mutants/: run `make mutants` first"
    by_file = {f: sample(every[f], f, size) for f in files}
    out = [f"{'module':<28} killed / tried     of       %   not killed"]
    out += [_row(f, by_file[f], len(every[f])) for f in files]
    out.append("")
    for group, members in (*GROUPS.items(), ("all", tuple(files))):
        out.append(_estimate(group, [(by_file[f], len(every[f])) for f in members]))
    out += ["", "Not killed (file:line function: original -> mutated):"]
    for f in files:
        for m in by_file[f]:
            if m.status in UNDETECTED:
                function, line, change = where(root, f, m.name)
                out.append(f"  {f}:{line} {function} [{m.status}] {m.name}: {change}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: here)")
    parser.add_argument("--sample", type=int, metavar="N",
                        help="score only the N mutants per module that --names N lists")
    parser.add_argument("--names", type=int, metavar="N",
                        help="print the names of N mutants per module (drawn once, seeded) for "
                             "`mutmut run`, and nothing else")
    args = parser.parse_args(argv)
    if args.names:
        names = [m.name for f in mutated_files(args.root)
                 for m in sample(mutants_of(args.root, f), f, args.names)]
        print(" ".join(names))
        return 0
    print(report(args.root, args.sample))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
