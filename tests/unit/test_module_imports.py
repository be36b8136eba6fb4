"""No import cycles inside posterr/, not even under TYPE_CHECKING: each module's imports are read
from its source, so a cycle hidden from the interpreter is found too. This checks the package as a
whole, not one module, so it sits at the top of tests/unit instead of beside a module's tests."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "posterr"


def module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path, modules: set[str]) -> set[str]:
    """The posterr modules `path` imports: `from posterr.x import y` is posterr.x.y when that is a
    module, else posterr.x."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                found.add(f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found & modules


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: imports_of(path, modules) - {name} for name, path in paths.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, done, path = [], set(), []

    def visit(node: str) -> None:
        path.append(node)
        for child in sorted(graph[node]):
            if child in path:
                found.append(path[path.index(child):] + [child])
            elif child not in done:
                visit(child)
        path.pop()
        done.add(node)

    for node in sorted(graph):
        if node not in done:
            visit(node)
    return found


def test_no_module_of_posterr_imports_another_that_imports_it_back():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": set()}, []),
    ({"a": {"b"}, "b": {"a"}}, [["a", "b", "a"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c", "a"]]),
])
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert cycles(graph) == expected


def test_the_graph_holds_imports_of_modules_and_of_names_from_them(tmp_path):
    (tmp_path / "posterr").mkdir()
    source = tmp_path / "posterr" / "a.py"
    source.write_text("from typing import TYPE_CHECKING\nfrom posterr import b\nif TYPE_CHECKING:\n"
                      "    from posterr.c import Thing\n")
    assert imports_of(source, {"posterr.a", "posterr.b", "posterr.c"}) == {"posterr.b", "posterr.c"}
