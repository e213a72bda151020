"""The mirror cannot drift: the sync twins (the shells, the database, and main.py) are derived from
the async ones, mechanically, and compared.

As unasync (and httpcore's check of its sync code) does: take the async code's syntax tree,
turn `async def` into `def`, drop every `await`, `async with` and `async for`, rename the
async names to their sync twins, and compare with the sync code's tree (so comments,
docstrings and line breaks do not count). Any difference fails, except in the few methods
listed in ALLOWED with the reason they differ: how concurrent work runs (threads or tasks)
and how it ends. A change made to one twin only is caught here, whatever the tests of
behaviour happen to cover.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent

# async name -> its sync twin (names only: attributes and calls are renamed wherever they appear)
RENAMES = {
    "AsyncCacheAside": "CacheAside",
    "AsyncSeeder": "Seeder",
    "AsyncSingleFlight": "SingleFlight",
    "AsyncBackgroundSeed": "BackgroundSeed",
    "AsyncClient": "SyncClient",
    "AsyncDatabase": "Database",
    "AsyncConnector": "Connector",
    "AsyncIterator": "Iterator",
    "arun_script": "run_script",
    "arun_load": "run_load",
    "atake_inventory": "take_inventory",
    "aopen_connector": "open_connector",
    "aconnect": "connect",
    "aclaim_namespace": "claim_namespace",
    "aclose": "close",
}

DOTTED_RENAMES = {"asyncio.sleep": "time.sleep"}


def _allowed(path: str, owner: str, **why: str) -> dict[tuple[str, str, str], str]:
    """(path, owner, function): why, for each function of `owner` (a class, or "" for the module) named in `why`."""
    return {(path, owner, function): reason for function, reason in why.items()}


# (file, class or "" for a module function, function): why the twins differ there. Nothing else may.
ALLOWED = {
    **_allowed(
        "simulator/simulate_cache_db_flow.py",
        "CacheAside",
        stampede="threads against tasks",
        close="join the refresh threads, or cancel the tasks",
        _refresh_if_due="start a thread, or a task",
        _refresh="a thread forgets itself; a task's callback",
        __init__="a set of threads, or of tasks",
    ),
    **_allowed(
        "simulator/simulate_cache_db_flow.py",
        "Seeder",
        _seed="a pool of two threads, or two tasks",
        _send="the async bulk client bounds each round trip",
        _send_one="the same bound, one command",
    ),
    **_allowed(
        "simulator/simulate_cache_db_flow.py",
        "BackgroundSeed",
        __init__="a thread, or a task made by start",
        start="start a thread, or create a task",
        wait="join the thread, or await the task",
    ),
    **_allowed("simulator/database.py", "Database", _words_ready="the async twin draws the words off the event loop"),
    **_allowed(
        "main.py",
        "",
        main="asyncio.run and the signal handlers of an event loop; the twin's name",
        respond="the async twin runs each command as a task, in the order InFlight keeps",
        serve="the async twin reads input while lookups run, and waits for them at the end",
        start_seed="a background seed in a thread, or a task",
    ),
}

TWINS = [
    ("simulator/simulate_cache_db_flow.py", "AsyncCacheAside", "CacheAside"),
    ("simulator/simulate_cache_db_flow.py", "AsyncSeeder", "Seeder"),
    ("simulator/simulate_cache_db_flow.py", "AsyncBackgroundSeed", "BackgroundSeed"),
    ("simulator/simulate_cache_db_flow.py", "", ""),  # the module's functions: run_script and arun_script
    ("simulator/database.py", "AsyncDatabase", "Database"),
    ("simulator/namespace.py", "", ""),  # claim_namespace and aclaim_namespace
]


class Unasync(ast.NodeTransformer):
    """The async syntax tree, turned into what its sync twin should be."""

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        fields = {field: getattr(node, field) for field in node._fields}
        fields["name"] = RENAMES.get(node.name, node.name)
        return ast.copy_location(ast.FunctionDef(**fields), node)

    def visit_Await(self, node: ast.Await) -> ast.expr:
        return self.visit(node.value)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> ast.With:
        self.generic_visit(node)
        return ast.copy_location(ast.With(items=node.items, body=node.body, type_comment=node.type_comment), node)

    def visit_AsyncFor(self, node: ast.AsyncFor) -> ast.For:
        self.generic_visit(node)
        return ast.copy_location(ast.For(**{field: getattr(node, field) for field in node._fields}), node)

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = RENAMES.get(node.id, node.id)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        self.generic_visit(node)
        if (dotted := DOTTED_RENAMES.get(ast.unparse(node))) is not None:
            return ast.copy_location(ast.parse(dotted, mode="eval").body, node)
        node.attr = RENAMES.get(node.attr, node.attr)
        return node


def _without_docstrings(node: ast.AST) -> ast.AST:
    for child in ast.walk(node):
        body = getattr(child, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            child.body = body[1:] or [ast.Pass()]
    return node


def _functions(tree: ast.Module, class_name: str) -> dict[str, ast.AST]:
    """The methods of `class_name` (or the module's own functions, for "")."""
    if not class_name:
        body: list[ast.stmt] = tree.body
    else:
        found = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == class_name]
        assert found, f"no class {class_name}"
        body = found[0].body
    return {node.name: node for node in body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def _pairs(source: str, async_class: str, sync_class: str) -> Iterator[tuple[str, str, ast.AST | None, ast.AST | None]]:
    tree = ast.parse(source)
    async_functions = _functions(tree, async_class)
    sync_functions = _functions(tree, sync_class)
    if not async_class:  # module level: the async functions named in RENAMES, and the sync functions they become
        async_functions = {name: node for name, node in async_functions.items() if name in RENAMES}
        sync_functions = {RENAMES[name]: sync_functions[RENAMES[name]] for name in async_functions}
    async_functions = {RENAMES.get(name, name): node for name, node in async_functions.items()}
    for name in sorted(async_functions.keys() | sync_functions.keys()):
        yield sync_class, name, async_functions.get(name), sync_functions.get(name)


def unasynced(node: ast.AST) -> str:
    """The sync code the async `node` mirrors, as source without comments or docstrings."""
    copy = ast.parse(ast.unparse(node))  # a fresh tree: the transformer changes what it visits
    return ast.unparse(_without_docstrings(Unasync().visit(copy)))


def drift(path: str, async_class: str, sync_class: str, source: str | None = None) -> list[str]:
    """Every difference between the sync twin and the unasynced async twin in `path`, outside ALLOWED."""
    found = []
    source = (PROJECT / path).read_text() if source is None else source
    for owner, name, async_node, sync_node in _pairs(source, async_class, sync_class):
        if (path, owner, name) in ALLOWED:
            continue
        if async_node is None or sync_node is None:
            found.append(f"{owner or path}.{name}: only the {'sync' if async_node is None else 'async'} twin has it")
            continue
        expected, actual = unasynced(async_node), ast.unparse(_without_docstrings(ast.parse(ast.unparse(sync_node))))
        if expected != actual:
            diff = difflib.unified_diff(
                actual.splitlines(), expected.splitlines(), "sync", "unasync(async)", lineterm=""
            )
            found.append(f"{owner or path}.{name}:\n" + "\n".join(diff))
    return found


@pytest.mark.parametrize(("path", "async_class", "sync_class"), TWINS)
def test_the_sync_twin_is_the_async_twin_unasynced(path: str, async_class: str, sync_class: str) -> None:
    assert drift(path, async_class, sync_class) == []


def test_every_allowed_difference_names_a_method_that_exists() -> None:
    for path, class_name, name in ALLOWED:
        tree = ast.parse((PROJECT / path).read_text())
        assert name in _functions(tree, class_name), f"ALLOWED names {class_name or path}.{name}, which is gone"


def test_a_change_to_one_twin_only_is_caught() -> None:
    """The change the review found passing all tests: the async `_read` taking any other ResponseError as "down"."""
    path = "simulator/simulate_cache_db_flow.py"
    source = (PROJECT / path).read_text()
    async_read = source.index("    async def _read(")
    one_sided = source[:async_read] + source[async_read:].replace(
        "            return self._read_failed(node, error)",
        "            return WRONG_TYPE if is_wrong_type(error) else UNAVAILABLE",
        1,
    )
    assert one_sided != source
    found = drift(path, "AsyncCacheAside", "CacheAside", one_sided)
    assert len(found) == 1
    assert found[0].startswith("CacheAside._read:")
    assert "else UNAVAILABLE" in found[0]


def entry_script_drift(async_path: str = "main_async.py", sync_path: str = "main.py") -> list[str]:
    """Every difference between the functions of main.py and those of main_async.py, unasynced, outside ALLOWED."""
    found = []
    async_functions = _functions(ast.parse((PROJECT / async_path).read_text()), "")
    sync_functions = _functions(ast.parse((PROJECT / sync_path).read_text()), "")
    for name in sorted(async_functions.keys() | sync_functions.keys()):
        if (sync_path, "", name) in ALLOWED:
            continue
        if name not in async_functions or name not in sync_functions:
            found.append(f"{name}: only in {sync_path if name in sync_functions else async_path}")
            continue
        expected = unasynced(async_functions[name])
        actual = ast.unparse(_without_docstrings(ast.parse(ast.unparse(sync_functions[name]))))
        if expected != actual:
            diff = difflib.unified_diff(actual.splitlines(), expected.splitlines(), sync_path, async_path, lineterm="")
            found.append(f"{name}:\n" + "\n".join(diff))
    return found


def test_the_sync_entry_script_is_the_async_one_unasynced() -> None:
    assert entry_script_drift() == []
