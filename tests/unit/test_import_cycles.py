"""No import cycles inside the package: a module that imports its importer (even lazily, or
only for type hints) is two modules that cannot be understood, tested or split apart alone."""

from __future__ import annotations

import ast
from pathlib import Path

from securitybot.ingest.adapters.names import ADAPTER_NAMES
from securitybot.ingest.adapters.registry import names

PACKAGE = Path(__file__).resolve().parents[2] / "securitybot"

# Cycles left, each through a lazy or type-checking-only import: shrink this, never grow it.
KNOWN: set[frozenset[str]] = set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        nodes = tree.body if top_level_only else list(ast.walk(tree))
        edges: set[str] = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = {f"{node.module}.{a.name}" for a in node.names} & set(mods)
                edges |= subs if len(subs) == len(node.names) else subs | {node.module}
        graph[name] = {e for e in edges if e in mods and e != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.add(frozenset([v, *component]))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_its_importer_at_import_time() -> None:
    assert _cycles(_graph(top_level_only=True)) == set()


def test_no_new_cycles_even_through_lazy_imports() -> None:
    cycles = _cycles(_graph(top_level_only=False))
    assert cycles <= KNOWN, f"new import cycles: {cycles - KNOWN}"


def test_the_configuration_knows_the_adapters_the_registry_has() -> None:
    assert tuple(names()) == ADAPTER_NAMES
