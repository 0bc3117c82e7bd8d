"""Resolve target strings to Python objects by importing and walking, never by ``eval``.

A target is an import string (``pkg.mod``, ``pkg.mod:attr.sub``, ``pkg.mod.attr``) or a
namespace path (``name.attr.key``). Every segment is data: it is looked up with
``getattr`` or ``[]``. Without an allow-list every name resolves, dunders included, as in
liaison 1.0; with one, names that lead to interpreter internals are refused and every
object reached must belong to an allowed module (docs/security.md has the rule).
"""

from __future__ import annotations

import functools
import importlib
import re
import sys
import types
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..protocol.errors import InvalidTarget, ModuleNotAllowed, NameNotFound

__all__ = ["REFERENCE", "REFERENCE_PREFIX", "Resolver", "is_reference_name", "is_refused_name"]

# The `$name.attr` form liaison 1.0 recognised; other strings starting with `$` are literals.
REFERENCE = re.compile(r"\$(\w+(?:\.\w+)*)")
# Names the liaison makes for references (references.py): the prefix and a number.
REFERENCE_PREFIX = "_ref"


def is_reference_name(name: str) -> bool:
    """True for a name of the form the liaison gives references (``_ref12``)."""
    return name.startswith(REFERENCE_PREFIX) and name[len(REFERENCE_PREFIX) :].isdigit()


_MODULE_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")

# Under an allow-list: attributes that are not dunders but still hand out frames, globals
# or code objects.
_REFUSED_NAMES = frozenset(
    {
        "f_globals", "f_locals", "f_builtins", "f_back", "f_code",
        "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame", "ag_code",
        "tb_frame", "tb_next", "func_globals", "co_code",
    }
)  # fmt: skip


# Under an allow-list, the only dunders left: they read the object already reached (its
# items) and take no attribute name. `__getattribute__("__globals__")` would end-run the
# name rule, and `__setattr__` would let a client switch the guard off
# (`companion.resolver.__setattr__ "allowed_modules" null`), so both stay refused.
_PROTOCOL_DUNDERS = frozenset({"__getitem__", "__contains__", "__len__"})


def is_refused_name(segment: str) -> bool:
    """True for the names an allow-list refuses in a path.

    That is every dunder (``__globals__``, ``__class__``, ``__subclasses__``,
    ``__setattr__``, ...) except the item-reading ones above, and the frame/code
    attributes above.
    """
    if segment.startswith("__") and segment.endswith("__"):
        return segment not in _PROTOCOL_DUNDERS
    return segment in _REFUSED_NAMES


class Resolver:
    """Turns target strings into objects, enforcing an optional allow-list of modules.

    ``allowed_modules``: module names a client may import (each covers its submodules);
    ``None`` allows every module and every name, as liaison 1.0 did. Immutable: code a
    client runs may reach this object (``$companion.resolver``), and setting
    ``allowed_modules`` by name (``operator.methodcaller("__setattr__", ...)``) would
    switch the guard off. No ``__dict__`` either, so nothing can be added or shadowed.
    """

    __slots__ = ("allowed_modules",)
    allowed_modules: frozenset[str] | None

    def __init__(self, allowed_modules: Iterable[str] | None = None) -> None:
        if hasattr(self, "allowed_modules"):  # `methodcaller("__init__", None)`
            raise AttributeError("the resolver is immutable: it cannot be initialised again")
        allowed = None if allowed_modules is None else frozenset(allowed_modules)
        object.__setattr__(self, "allowed_modules", allowed)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"the resolver is immutable: {name!r} cannot be set")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"the resolver is immutable: {name!r} cannot be deleted")

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
            module_name, names, attributes = _split_import_target(target)
            if self.allowed_modules is not None:  # no call without an allow-list
                self._check_names(target, names)
                self._check_module(module_name)
            module = _loaded_module(module_name) or importlib.import_module(module_name)
            return self._walk(module, attributes, module_name)
        segments = _segments(target, target)
        head = segments[0]
        if head in namespace:
            # The head is a key of the namespace the client filled, not an attribute.
            self._check_names(target, segments[1:])
            obj = namespace[head]
            if self.allowed_modules is not None:
                self._check_owner(obj, head)
            return self._walk(obj, segments[1:], head)
        if is_reference_name(head):  # no module has such a name: say what happened
            raise NameNotFound(
                f"{head!r} is not a live reference: it was released, or the connection "
                "that made it closed"
            )
        self._check_names(target, segments)
        return self._import_longest_prefix(target, segments)

    def _check_names(self, target: str, segments: Sequence[str]) -> None:
        if self.allowed_modules is None:
            return
        for segment in segments:
            if is_refused_name(segment):
                raise InvalidTarget(
                    f"{target!r}: access to {segment!r} is refused by --allow-module"
                )

    def _check_module(self, name: str) -> None:
        if not self.is_module_allowed(name):
            raise ModuleNotAllowed(f"importing {name!r} is not allowed by --allow-module")

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

    def _walk(self, obj: Any, segments: Sequence[str], path: str) -> Any:
        for segment in segments:
            if self.allowed_modules is not None and _is_private(obj, segment):
                refusal = f"access to private {segment!r} is refused by --allow-module"
                raise InvalidTarget(f"{path}.{segment}: {refusal}")
            parent = obj
            obj = _step(obj, segment, path)
            path = f"{path}.{segment}"
            if self.allowed_modules is not None:
                self._check_reached(obj, path, parent, segment)
        return obj

    def _check_reached(self, obj: Any, path: str, parent: Any, segment: str) -> None:
        # Walking out of an allowed module (`json:codecs.open`) must not reach another.
        if isinstance(obj, types.ModuleType):
            # A module is judged by its own name, or by the allowed name it is imported
            # as (`os:path` is `posixpath`, imported as `os.path`).
            if self.is_module_allowed(obj.__name__) or (
                sys.modules.get(path) is obj and self.is_module_allowed(path)
            ):
                return
            raise ModuleNotAllowed(f"{path!r} is module {obj.__name__!r}, not allowed")
        if isinstance(parent, types.ModuleType) and _exports(parent, segment):
            return  # `operator:add` comes from `_operator`, `os:system` from `posix`
        self._check_owner(obj, path)

    def _check_owner(self, obj: Any, path: str) -> None:
        if isinstance(obj, types.ModuleType):
            owner = obj.__name__
        elif isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
            owner = getattr(obj, "__module__", None) or ""
            # Builtin types (`dict`, `list`) pass, and methods (no module), but not the
            # builtins' functions: `eval`, `exec`, `getattr`, `open` reached in a dict.
            if owner == "" or (owner == "builtins" and isinstance(obj, type)):
                return
        else:
            return
        if not self.is_module_allowed(owner) and not self._is_exported(obj):
            raise ModuleNotAllowed(f"{path!r} belongs to module {owner!r}, not allowed")

    def _is_exported(self, obj: Any) -> bool:
        # A namespace entry reached no module path: accept it if an allowed module exports
        # it, so `register add operator:add` leaves `run add` usable. Refusals only.
        name = getattr(obj, "__name__", None)
        if not isinstance(name, str):
            return False
        return any(
            isinstance(module, types.ModuleType)
            and vars(module).get(name) is obj
            and self.is_module_allowed(module_name)
            and _exports(module, name)
            for module_name, module in list(sys.modules.items())
        )


@functools.lru_cache(maxsize=1024)
def _split_import_target(target: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """``pkg.mod:attr.sub`` as its module name, all its names and the attribute path;
    raises InvalidTarget. Cached: a client calls the same few targets over and over,
    and splitting and checking one anew costs ~0.5 us (the import and the walk are not
    cached: modules and attributes may change)."""
    module_name, _, path = target.partition(":")
    if not _MODULE_PATH.fullmatch(module_name):
        raise InvalidTarget(f"{target!r}: {module_name!r} is not a module name")
    segments = tuple(_segments(target, path))
    return module_name, (*module_name.split("."), *segments), segments


def _segments(target: str, path: str) -> list[str]:
    segments = path.split(".")
    if not all(segments):
        raise InvalidTarget(f"{target!r} has an empty name in its path")
    return segments


def _exports(module: types.ModuleType, name: str) -> bool:
    """Whether ``from module import *`` binds ``name``: listed in ``__all__``, or public."""
    exported = vars(module).get("__all__")
    if exported is None:
        return not name.startswith("_")
    return isinstance(exported, (list, tuple)) and name in exported


def _is_private(obj: Any, segment: str) -> bool:
    """Whether ``segment`` is a private attribute of an object (``_walk``, ``_stop``):
    what the liaison keeps behind such names (its resolver's walk, which skips the name
    rule; its stop) would undo the guard. A module's names are judged by what it exports
    instead (``_check_reached``), a mapping's keys are data (``{"_id": 1}``), and the
    item-reading dunders only read."""
    if not segment.startswith("_") or segment in _PROTOCOL_DUNDERS:
        return False
    if type(obj) is types.ModuleType:
        return False
    return not (isinstance(obj, Mapping) and segment in obj)


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
