"""The package's imports form no circle, and ``functional`` imports nothing above it but leaves.

Every module of ``lightning_liegg`` is parsed (not imported), each ``import`` and ``from ...
import`` resolved to the package's modules (relative forms included, and ``from . import x``
counted as an import of the module ``x``), also the imports inside functions, and the module
graph searched for a cycle; a failure prints the cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lightning_liegg

PACKAGE = "lightning_liegg"
ROOT = Path(lightning_liegg.__file__).parent
#: the package-level modules that ``functional`` may import: leaves that import no other module
#: of the package but each other
FUNCTIONAL_MAY_IMPORT = {f"{PACKAGE}.exceptions", f"{PACKAGE}._checks"}


def module_names() -> dict[str, Path]:
    """``{dotted module name: file}`` for every module of the package (packages by __init__)."""
    names = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in its file."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, one level up per extra dot
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from a import b``: the module a.b if it is one (also ``from . import b``), else a
            targets = []
            for alias in node.names:
                full = f"{prefix}.{alias.name}" if prefix else alias.name
                targets.append(full if full in modules else prefix)
        else:
            continue
        for target in targets:
            while target and target not in modules:  # ``import a.b.c`` of a name inside a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    names = module_names()
    return {name: imports_of(name, path, set(names)) for name, path in names.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a closed path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 30 and f"{PACKAGE}.functional.actions.base" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_functional_imports_only_itself_and_the_leaves() -> None:
    graph = import_graph()
    prefix = f"{PACKAGE}.functional"
    upward = {
        (name, target)
        for name, targets in graph.items()
        if name.startswith(prefix)
        for target in targets
        if not target.startswith(prefix) and target not in FUNCTIONAL_MAY_IMPORT
    }
    assert not upward, f"functional imports upward: {sorted(upward)}"
    for leaf in FUNCTIONAL_MAY_IMPORT:
        assert graph[leaf] <= FUNCTIONAL_MAY_IMPORT, (leaf, graph[leaf])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from . import b", {"p.b"}),
        ("from .b import thing", {"p.b"}),
        ("from .. import q", {"q"}),
        ("from ..q import thing", {"q"}),
        ("import p.b", {"p.b"}),
        ("def f():\n    from .b import thing", {"p.b"}),
    ],
)
def test_the_walk_resolves_relative_and_nested_imports(tmp_path, source, expected) -> None:
    """The resolver on a small tree: module ``p.a`` beside ``p.b`` in package ``p``."""
    path = tmp_path / "a.py"
    path.write_text(source)
    assert imports_of("p.a", path, {"p", "p.a", "p.b", "q"}) == expected


def test_a_cycle_is_found_and_printed() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
