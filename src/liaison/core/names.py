"""Resolve target strings to Python objects by importing and walking, never by ``eval``.

A target is an import string (``pkg.mod``, ``pkg.mod:attr.sub``, ``pkg.mod.attr``) or a
namespace path (``name.attr.key``). Every segment is data: it is looked up with
``getattr`` or ``[]``, and segments that lead to interpreter internals are refused.
"""

from __future__ import annotations

import importlib
import re
import sys
import types
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidTarget, ModuleNotAllowed, NameNotFound

__all__ = ["REFERENCE", "REFERENCE_PREFIX", "Resolver", "is_reference_name", "is_refused_name"]

# The `$name.attr` form liaison 1.0 recognised; other strings starting with `$` are literals.
REFERENCE = re.compile(r"\$(\w+(?:\.\w+)*)")
# Names the liaison makes for references (references.py): the prefix and a number.
REFERENCE_PREFIX = "_ref"


def is_reference_name(name: str) -> bool:
    """True for a name of the form the liaison gives references (``_ref12``)."""
    return name.startswith(REFERENCE_PREFIX) and name[len(REFERENCE_PREFIX) :].isdigit()


_MODULE_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")

# Attributes that are not dunders but still hand out frames, globals or code objects.
_REFUSED_NAMES = frozenset(
    {
        "f_globals", "f_locals", "f_builtins", "f_back", "f_code",
        "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code",
        "tb_frame", "tb_next", "func_globals", "co_code",
    }
)  # fmt: skip


def is_refused_name(segment: str) -> bool:
    """True for dunders (``__globals__``) and the frame/code attributes listed above."""
    return (segment.startswith("__") and segment.endswith("__")) or segment in _REFUSED_NAMES


class Resolver:
    """Turns target strings into objects, enforcing an optional allow-list of modules.

    ``allowed_modules``: module names a client may import (each covers its submodules);
    ``None`` allows every module.
    """

    def __init__(self, allowed_modules: Iterable[str] | None = None) -> None:
        self.allowed_modules = None if allowed_modules is None else frozenset(allowed_modules)

    def is_module_allowed(self, name: str) -> bool:
        if self.allowed_modules is None:
            return True
        return any(name == a or name.startswith(a + ".") for a in self.allowed_modules)

    def resolve(self, target: object, namespace: Mapping[str, Any]) -> Any:
        """The object ``target`` names; namespace names take precedence over modules.

        Raises InvalidTarget, NameNotFound, ModuleNotAllowed or the import's own error.
        """
        if not isinstance(target, str) or not target:
            got = type(target).__name__ if not isinstance(target, str) else "an empty string"
            raise InvalidTarget(f"target must be a non-empty string, got {got}")
        if ":" in target:
            module_name, _, path = target.partition(":")
            if not _MODULE_PATH.fullmatch(module_name):
                raise InvalidTarget(f"{target!r}: {module_name!r} is not a module name")
            segments = self._segments(target, path)
            return self._walk(self._import(module_name), segments, module_name)
        segments = self._segments(target, target)
        head = segments[0]
        if head in namespace:
            return self._walk(namespace[head], segments[1:], head)
        if is_reference_name(head):  # no module has such a name: say what happened
            raise NameNotFound(
                f"{head!r} is not a live reference: it was released, or the connection "
                "that made it closed"
            )
        return self._import_longest_prefix(target, segments)

    def _segments(self, target: str, path: str) -> list[str]:
        segments = path.split(".")
        for segment in segments:
            if not segment:
                raise InvalidTarget(f"{target!r} has an empty name in its path")
            if is_refused_name(segment):
                raise InvalidTarget(f"{target!r}: access to {segment!r} is refused")
        return segments

    def _import(self, name: str) -> types.ModuleType:
        if not self.is_module_allowed(name):
            raise ModuleNotAllowed(f"importing {name!r} is not allowed by --allow-module")
        return _loaded_module(name) or importlib.import_module(name)

    def _import_longest_prefix(self, target: str, segments: list[str]) -> Any:
        if not _MODULE_PATH.fullmatch(target):
            raise NameNotFound(f"{segments[0]!r} is neither a namespace name nor a module")
        for end in range(len(segments), 0, -1):
            name = ".".join(segments[:end])
            if not self.is_module_allowed(name):
                continue
            loaded = _loaded_module(name)
            if loaded is not None:
                return self._walk(loaded, segments[end:], name)
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as error:
                # Only a missing *prefix* means "try a shorter one"; a module that fails
                # to import one of its own dependencies is a real error.
                missing = error.name or ""
                if end > 1 and (name == missing or name.startswith(missing + ".")):
                    continue
                raise
            return self._walk(module, segments[end:], name)
        raise ModuleNotAllowed(f"importing {segments[0]!r} is not allowed by --allow-module")

    def _walk(self, obj: Any, segments: list[str], path: str) -> Any:
        checked = self.allowed_modules is not None
        if checked:
            self._check_allowed(obj, path)
        for segment in segments:
            obj = _step(obj, segment, path)
            path = f"{path}.{segment}"
            if checked:
                self._check_allowed(obj, path)
        return obj

    def _check_allowed(self, obj: Any, path: str) -> None:
        # Walking out of an allowed module (`numpy:os.system`) must not reach another.
        if self.allowed_modules is None:
            return
        if isinstance(obj, types.ModuleType):
            owner = obj.__name__
        elif isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            owner = getattr(obj, "__module__", None) or ""
            if owner in ("builtins", ""):
                return
        else:
            return
        if not self.is_module_allowed(owner):
            raise ModuleNotAllowed(f"{path!r} belongs to module {owner!r}, not allowed")


def _step(obj: Any, segment: str, path: str) -> Any:
    # A module is no Mapping; skipping the ABC check for it saves ~1 us a step.
    if type(obj) is not types.ModuleType and isinstance(obj, Mapping):
        if segment in obj:
            return obj[segment]
        if segment.isdigit() and int(segment) in obj:
            return obj[int(segment)]
    try:
        return getattr(obj, segment)
    except AttributeError:
        pass
    if segment.isdigit() and isinstance(obj, (list, tuple)):
        try:
            return obj[int(segment)]
        except IndexError:
            pass
    raise NameNotFound(f"{path!r} has no attribute or key {segment!r}")


def _loaded_module(name: str) -> types.ModuleType | None:
    """The module ``name`` if it is fully imported, else None.

    A module another thread is still importing is already in sys.modules, half
    initialised; importlib.import_module waits for it to finish, so leave it to that.
    """
    module = sys.modules.get(name)
    if module is None or getattr(getattr(module, "__spec__", None), "_initializing", False):
        return None
    return module
