"""snnc's modules import each other without cycles, and each imports alone.

The import graph is read from the source with ``ast``: an edge from a module to every snnc
module it imports, at module level or inside a function (a lazy import is still a dependency,
and a cycle through one only moves the failure to run time). Imports under
``if TYPE_CHECKING:`` never run and are left out.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

REPO = Path(__file__).resolve().parents[2]
#: source folder -> import name (an implicit ``snnc`` namespace, see STACK.md)
PACKAGES = {"compiler": "snnc.compiler", "frontends": "snnc.frontends", "backends": "snnc.backends"}


def snnc_modules() -> dict[str, Path]:
    """Every module of the three packages by import name."""
    modules = {}
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """The import statements that can run: all but those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for child in node.orelse for n in _imports_in(child))
            continue
        yield from _imports_in(node)


def _imports_in(node: ast.AST):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _imports(node)


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The snnc modules ``name`` imports: for ``from X import y``, ``X.y`` where that is a
    module, else ``X``."""
    found = set()
    for node in _imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = name if path.name == "__init__.py" else name.rpartition(".")[0]
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            origin = node.module if not node.level else ".".join(p for p in (base, node.module) if p)
            targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in modules else origin for a in node.names]
        found |= {t for t in targets if t in modules and t != name}
    return found


def import_graph() -> nx.DiGraph:
    modules = snnc_modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        graph.add_edges_from((name, target) for target in imported_modules(name, path, modules))
    return graph


def test_the_import_graph_sees_relative_and_absolute_imports():
    graph = import_graph()
    assert graph.has_edge("snnc.compiler.graph", "snnc.compiler.wellformed")  # from .wellformed import ...
    assert graph.has_edge("snnc.backends.refsim.simulator", "snnc.backends.refsim.compiled")  # from . import compiled
    assert graph.has_edge("snnc.backends.refsim.plan", "snnc.compiler.ops")  # from snnc.compiler import ops
    assert graph.has_edge("snnc.compiler.driver", "snnc.compiler.simulate")  # inside a function
    assert not graph.has_edge("snnc.compiler.wellformed", "snnc.compiler.graph")  # only under TYPE_CHECKING


def test_snnc_modules_import_each_other_without_cycles():
    graph = import_graph()
    cycles = [c for c in nx.simple_cycles(graph)]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join([*c, c[0]]) for c in sorted(cycles, key=len)[:5])


@pytest.mark.slow
def test_each_module_imports_alone_in_a_fresh_interpreter():
    """Each module imported first, in its own interpreter (about a minute: some import
    TensorFlow or NengoLoihi)."""
    failures = []
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for name in snnc_modules():
        done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, env=env)
        if done.returncode:
            failures.append(f"{name}: {done.stderr.strip().splitlines()[-1]}")
    assert not failures, "\n".join(failures)
