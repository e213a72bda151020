"""Dev tooling: write each blocking shell from its asyncio twin, as httpcore's scripts/unasync.py does.

    python scripts/unasync.py          # rewrite simulator/_sync/*.py (all but backend.py) and main.py
    python scripts/unasync.py --check  # exit 1, naming each file that is not what it would write

The asyncio code is the one written by hand; the blocking code is derived from it, token by
token: `async def` becomes `def`, `async with` and `async for` lose their `async`, `await`
goes, and the names in RENAMES become their twins' (`AsyncCacheAside` -> `CacheAside`,
`simulator._async` -> `simulator._sync`, ...). Strings and comments are left as they are.
What tasks and threads do differently lives in the two hand-written backends, so this is all
there is to it, but for main.py: it keeps by hand the few functions whose concurrency is the
point of the twins (HAND_WRITTEN, each with why). The output is formatted with ruff, as every
file here is. tests/test_generated.py runs the check, so a stale sync file fails the suite.
"""

from __future__ import annotations

import argparse
import ast
import io
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each async file and the sync file written from it.
PAIRS = [
    (f"simulator/_async/{name}.py", f"simulator/_sync/{name}.py")
    for name in ("cache_aside", "database", "seeding", "namespace", "inventory", "load")
]
PAIRS += [(f"labs/_async/{name}.py", f"labs/_sync/{name}.py") for name in ("runner", "memory")]
PAIRS += [("main_async.py", "main.py")]

# async name -> its sync twin's (whole names only, wherever they stand in the code)
RENAMES = {
    "_async": "_sync",
    "AsyncCacheAside": "CacheAside",
    "AsyncSeeder": "Seeder",
    "AsyncBackgroundSeed": "BackgroundSeed",
    "AsyncDatabase": "Database",
    "AsyncConnector": "Connector",
    "AsyncSqliteConnector": "SqliteConnector",
    "async_client": "sync_client",
    "AsyncClient": "SyncClient",
    "AsyncIterator": "Iterator",
    "AsyncIterable": "Iterable",
    "asynccontextmanager": "contextmanager",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "aclose": "close",
    "aopen_connector": "open_connector",
    "aconnect": "connect",
    "aread_lines": "read_lines",
}
UNWRAPPED = {"Awaitable"}  # `Awaitable[X]` -> `X`

# main.py's functions written by hand, and why: each is where the twins' concurrency differs by design.
HAND_WRITTEN = {
    "main.py": {
        "(docstring)": "it says which twin this is",
        "(imports)": "the functions kept by hand need names of their own (threads, signals, the blocking reader)",
        "MAX_LOOKUPS_IN_FLIGHT": "(async only) the bound of InFlight",
        "main": "the async twin runs inside asyncio.run, the sync one under terminate_on_signals",
        "serve": "the async twin keeps reading input while lookups run (InFlight); the sync one answers in turn",
        "respond": "the async twin starts each command as a task, in the user's order; the sync one runs it",
        "start_seed": "the sync twin seeds in a thread (threaded) or blocking with a bar; the async one, as a task",
        "InFlight": "(async only) the commands in flight and their order: the sync twin has one at a time",
    }
}


def unasync_source(source: str) -> str:
    """The sync twin of async `source`: `async` and `await` dropped, RENAMES applied, nothing else changed."""
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(position: tuple[int, int]) -> int:
        return starts[position[0] - 1] + position[1]

    edits: list[tuple[int, int, str]] = []
    for index, token in enumerate(tokens):
        if token.type != tokenize.NAME:
            continue
        following = tokens[index + 1] if index + 1 < len(tokens) else token
        if token.string == "await" or (token.string == "async" and following.string in ("def", "with", "for")):
            edits.append((offset(token.start), offset(following.start), ""))  # the word, and the space after it
        elif token.string in UNWRAPPED and following.string == "[":
            closing = _matching_bracket(tokens, index + 1)
            edits.append((offset(token.start), offset(following.end), ""))
            edits.append((offset(closing.start), offset(closing.end), ""))
        elif token.string in RENAMES:
            edits.append((offset(token.start), offset(token.end), RENAMES[token.string]))
    text = source
    for start, end, replacement in reversed(edits):
        text = text[:start] + replacement + text[end:]
    return text


def _matching_bracket(tokens: list[tokenize.TokenInfo], opening: int) -> tokenize.TokenInfo:
    depth = 0
    for token in tokens[opening:]:
        depth += {"[": 1, "]": -1}.get(token.string, 0) if token.type == tokenize.OP else 0
        if depth == 0:
            return token
    raise ValueError("an unclosed [")


def _definitions(source: str) -> dict[str, tuple[int, int]]:
    """The lines (1-based, first to last) of each top-level function, class (with its decorators) and
    assigned name, of the module docstring ("(docstring)") and of its imports ("(imports)")."""
    found: dict[str, tuple[int, int]] = {}
    body = ast.parse(source).body
    imports = [node for node in body if isinstance(node, ast.Import | ast.ImportFrom)]
    if imports:
        found["(imports)"] = (imports[0].lineno, imports[-1].end_lineno or imports[-1].lineno)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        found["(docstring)"] = (body[0].lineno, body[0].end_lineno or body[0].lineno)
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            found[node.name] = (first, node.end_lineno or node.lineno)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = (node.lineno, node.end_lineno or node.lineno)
    return found


def keep_hand_written(generated: str, current: str, names: dict[str, str]) -> str:
    """`generated`, with each of `names` as `current` has it (or left out, if `current` has none)."""
    lines, kept = generated.splitlines(keepends=True), current.splitlines(keepends=True)
    spans, theirs = _definitions(generated), _definitions(current)
    for name in sorted((name for name in names if name in spans), key=lambda name: -spans[name][0]):
        first, last = spans[name]
        replacement = kept[theirs[name][0] - 1 : theirs[name][1]] if name in theirs else []
        lines[first - 1 : last] = replacement
    return "".join(lines)


def formatted(text: str, target: str) -> str:
    """`text` as ruff leaves it: imports sorted, unused ones gone, and formatted (every file here is)."""
    for command in (["check", "--fix", "--quiet", "--exit-zero"], ["format", "--quiet"]):
        text = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--stdin-filename", target, "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    return text


def sync_twin(source_path: str, target_path: str) -> str:
    """What `target_path` should hold: the sync twin of `source_path`."""
    header = f"# Written by scripts/unasync.py from {source_path}: edit that file, then run the script.\n"
    text = unasync_source((ROOT / source_path).read_text())
    hand_written = HAND_WRITTEN.get(target_path)
    if hand_written:
        header = f"# Written by scripts/unasync.py from {source_path}, but for HAND_WRITTEN's {target_path} parts.\n"
        text = keep_hand_written(text, (ROOT / target_path).read_text(), hand_written)
    return formatted(header + text, target_path)


def stale() -> list[str]:
    """The sync files that are not what this script would write."""
    return [
        target
        for source, target in PAIRS
        if not (ROOT / target).exists() or (ROOT / target).read_text() != sync_twin(source, target)
    ]


def main(argv: list[str] | None = None) -> int:
    """Rewrite the sync files, or with --check say which are stale (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if any sync file is stale")
    check = parser.parse_args(argv).check
    if check:
        found = stale()
        for target in found:
            print(f"{target} is stale: run python scripts/unasync.py")
        return 1 if found else 0
    for source, target in PAIRS:
        (ROOT / target).write_text(sync_twin(source, target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
