"""The rooms show the design: small modules, imports that only go down, and comments that stay in the repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

PACKAGES = ("config", "simulator", "cli", "labs", "benchmarks", "scripts")
MODULES = sorted(
    [PROJECT_ROOT / "main.py", PROJECT_ROOT / "main_async.py"]
    + [path for package in PACKAGES for path in (PROJECT_ROOT / package).rglob("*.py")]
)
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The project's modules `path` imports (at the top, or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] in (*PACKAGES, "main", "main_async")}
    known = {module_name(path) for path in MODULES}
    return {name for name in found if name in known}


GRAPH = {module_name(path): imports_of(path) - {module_name(path)} for path in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PROJECT_ROOT)))
def test_no_module_is_over_600_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_config_imports_nothing_from_the_layers_above_it() -> None:
    for module, imported in GRAPH.items():
        if module.startswith("config"):
            assert not {name for name in imported if not name.startswith("config")}, module


def test_simulator_imports_nothing_from_the_prompt() -> None:
    for module, imported in GRAPH.items():
        if module.startswith("simulator"):
            assert not {name for name in imported if name.startswith(("cli", "main", "labs", "benchmarks"))}, module


def test_there_is_no_import_cycle() -> None:
    """Depth-first search over the import graph; a module met again on the current path is a cycle."""
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(GRAPH.get(module, ())):
            if state.get(imported) == "open":
                cycle = [*path[path.index(imported) :], imported] if imported in path else [module, imported]
                raise AssertionError(" -> ".join(cycle))
            if imported not in state:
                visit(imported, [*path, imported])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


# Words that point a reader at something outside the repository: an issue tracker, a review, a design
# document, another person's machine.
OUTSIDE = re.compile(r"\bissue #?\d+|\bthe review\b|\bdesign document\b|/work/|\.\./shared", re.IGNORECASE)


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PROJECT_ROOT)))
def test_no_comment_points_outside_the_repository(path: Path) -> None:
    assert not OUTSIDE.search(path.read_text())
