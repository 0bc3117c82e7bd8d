"""The package's public surface and shape: exports, names, imports. Plain calls only."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import orjson
import pytest

import liaison
from liaison.core import CommandCancelled, CommandTimedOut
from liaison.protocol.replies import error_reply

SOURCE = Path(liaison.__file__).parent


def modules() -> list[str]:
    names = [info.name for info in pkgutil.walk_packages(liaison.__path__, "liaison.")]
    return ["liaison", *names]


def module(name: str) -> ModuleType:
    if name.startswith("liaison.client"):
        pytest.importorskip("websockets")
    return importlib.import_module(name)


@pytest.mark.parametrize("name", modules())
def test_all_lists_exactly_what_the_module_defines_in_public(name: str) -> None:
    mod = module(name)
    exported = getattr(mod, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert sorted(exported) == sorted(set(exported)), "duplicates"
    assert [n for n in exported if not hasattr(mod, n)] == []
    defined = {
        n for n, v in vars(mod).items()
        if not n.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v))
        and v.__module__ == name
    }  # fmt: skip
    assert sorted(defined - set(exported)) == [], "public but not in __all__"


@pytest.mark.parametrize("name", modules())
def test_no_export_shadows_a_builtin(name: str) -> None:
    shadowing = set(getattr(module(name), "__all__", [])) & set(dir(builtins))
    assert shadowing == set()


def test_the_package_exports_resolve() -> None:
    assert liaison.progress is importlib.import_module("liaison.server.jobs").progress
    assert liaison.Companion is importlib.import_module("liaison.core").Companion


@pytest.mark.parametrize(
    ("error", "wire_name"),
    [(CommandCancelled("the command was cancelled"), "CancelledError"),
     (CommandTimedOut("the command ran past its timeout of 0.5 s"), "TimeoutError")],
)  # fmt: skip
def test_cancelled_and_timed_out_keep_their_wire_names(error: Exception, wire_name: str) -> None:
    reply = orjson.loads(error_reply(error, {"id": 1}, 1))
    assert reply["exception"] == {"type": wire_name, "message": str(error)}
    assert reply["error"] == [f"liaison.protocol.errors.{wire_name}: {error}\n"]


def imports_of(path: Path, name: str) -> set[str]:
    """The liaison modules ``path`` imports anywhere (top level, functions, TYPE_CHECKING)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - max(node.level - 1, 0)]
            target = ".".join([*base, node.module or ""]).strip(".") if node.level else node.module
            found.update(f"{target}.{alias.name}" for alias in node.names)
            found.add(target or "")
    return found


def test_no_import_cycles() -> None:
    paths = {}
    for path in SOURCE.rglob("*.py"):
        parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: (imports_of(path, name) & set(paths)) - {name} for name, path in paths.items()}

    def cycle_from(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return trail
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
        return None

    cycles = [cycle for name in sorted(graph) if (cycle := cycle_from(name))]
    assert cycles == []
