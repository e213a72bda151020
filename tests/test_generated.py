"""The sync twin is generated from the async one, and stays so: one checker for every shell and main.py.

scripts/unasync.py writes simulator/_sync/ from simulator/_async/ and main.py from main_async.py
(but for the few functions it keeps by hand, each with why). Here: nothing it would write
differs from what is committed; a change made to one twin only is caught; the two backends,
the only other hand-written pair, offer the same names with the same parameters.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

import pytest

from simulator._async import backend as async_backend
from simulator._sync import backend as sync_backend
from tests.conftest import PROJECT_ROOT


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync_script", PROJECT_ROOT / "scripts" / "unasync.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


unasync = _load_script()


def test_every_sync_shell_is_what_the_script_writes() -> None:
    assert unasync.stale() == [], "run: python scripts/unasync.py"


def test_every_async_shell_has_a_generated_twin() -> None:
    written_by_hand = {"__init__.py", "backend.py"}
    for package in ("simulator", "labs"):
        shells = {path.name for path in (PROJECT_ROOT / package / "_async").glob("*.py")} - written_by_hand
        assert {Path(source).name for source, _ in unasync.PAIRS if source.startswith(f"{package}/")} == shells
    assert ("main_async.py", "main.py") in unasync.PAIRS


@pytest.mark.parametrize(
    ("path", "original", "one_sided"),
    [
        # the four one-sided changes that once passed every test, and others like them
        (
            "simulator/_async/cache_aside.py",
            "        with tracing(None), contextlib.suppress(*BACKGROUND_ERRORS):",
            "        with tracing(None):",
        ),
        (
            "simulator/_async/cache_aside.py",
            "        await backend.stop_all(self.refreshes, REFRESH_JOIN_SECONDS)",
            "        pass",
        ),
        (
            "simulator/_async/database.py",
            "            rows = await session.query(sql.SELECT_USER, (user_id,))",
            "            rows = []",
        ),
        ("main_async.py", "    return render_load_report(report, json_output)", "    return ''"),
    ],
)
def test_a_change_to_the_async_twin_alone_is_caught(path: str, original: str, one_sided: str) -> None:
    source = (PROJECT_ROOT / path).read_text()
    assert original in source
    target = next(target for source_path, target in unasync.PAIRS if source_path == path)
    changed = unasync.unasync_source(source.replace(original, one_sided, 1))
    if target == "main.py":
        changed = unasync.keep_hand_written(changed, (PROJECT_ROOT / target).read_text(), unasync.HAND_WRITTEN[target])
    assert unasync.formatted(changed, target) != (PROJECT_ROOT / target).read_text()


def test_each_function_kept_by_hand_says_why_and_exists() -> None:
    [(target, kept)] = unasync.HAND_WRITTEN.items()
    defined = set(unasync._definitions((PROJECT_ROOT / target).read_text()))
    defined |= set(unasync._definitions((PROJECT_ROOT / "main_async.py").read_text()))
    for name, why in kept.items():
        assert len(why) > 20, name
        assert name in defined, name
    assert len(kept) <= 8  # few: everything else in main.py is generated


def test_the_unasync_rules_turn_async_code_into_sync_code() -> None:
    source = (
        "async def f(client: AsyncClient, call: Callable[[], Awaitable[int]]) -> None:\n"
        "    async with backend.deadline(1, 'x'):\n"
        "        async for key in client.scan_iter():\n"
        "            await client.aclose()\n"
        "    '''await stays in strings'''  # and in comments: await\n"
    )
    assert unasync.unasync_source(source) == (
        "def f(client: SyncClient, call: Callable[[], int]) -> None:\n"
        "    with backend.deadline(1, 'x'):\n"
        "        for key in client.scan_iter():\n"
        "            client.close()\n"
        "    '''await stays in strings'''  # and in comments: await\n"
    )


def test_the_two_backends_offer_the_same_names_with_the_same_parameters() -> None:
    def public(module: ModuleType) -> dict[str, object]:
        return {
            name: value
            for name, value in vars(module).items()
            if not name.startswith("_")
            and (inspect.isfunction(value) or inspect.isclass(value) or name == "CANCELS")
            and getattr(value, "__module__", module.__name__) == module.__name__
        }

    sync_names, async_names = public(sync_backend), public(async_backend)
    assert sync_names.keys() == async_names.keys()
    assert sync_backend.CANCELS is False
    assert async_backend.CANCELS is True
    for name, value in async_names.items():
        if inspect.isfunction(value):
            assert list(inspect.signature(value).parameters) == list(inspect.signature(sync_names[name]).parameters)
        elif inspect.isclass(value):
            methods = {method for method in vars(value) if not method.startswith("_") or method == "__init__"}
            assert methods == {
                method for method in vars(sync_names[name]) if not method.startswith("_") or method == "__init__"
            }
