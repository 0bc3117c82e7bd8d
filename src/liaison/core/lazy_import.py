"""Import a module with one of its dependencies left out unless it is really used.

websockets imports ``importlib.metadata`` (which pulls in email, zipfile, csv, ...: ~10%
of a liaison's start-up) for a code path only its unreleased builds run. The clean fix is
upstream (import it inside ``if not released`` in ``websockets/version.py``); until then
the transport is imported within :func:`imported_without`.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Iterator
from typing import Any

__all__ = ["imported_without"]


class _StandIn(types.ModuleType):
    """Takes a module's place in ``sys.modules``; the first attribute asked of it
    imports the real module, which takes its place, and answers from it."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


@contextlib.contextmanager
def imported_without(module_name: str) -> Iterator[None]:
    """Within the block, ``import module_name`` (not yet imported) gives a stand-in that
    imports the real module only if used; after the block, imports are as usual."""
    if module_name in sys.modules:
        yield
        return
    stand_in = _StandIn(module_name)
    sys.modules[module_name] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(module_name) is stand_in:
            del sys.modules[module_name]
        parent_name, _, child = module_name.rpartition(".")
        parent = sys.modules.get(parent_name)
        if getattr(parent, child, None) is stand_in:
            delattr(parent, child)
