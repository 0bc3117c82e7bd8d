"""References: results kept in the namespace under fresh names, owned by one connection.

A message with ``"ref": true`` (or ``"ref": "auto"`` and a result that is not plain
JSON) gets a reference object instead of the encoded result; the result itself stays in
the namespace under a fresh name until the owner releases it or closes. Owners are
opaque objects (the transport's connections); this module knows nothing of sockets.

Threads: references are made on the thread that ran the command (main or worker),
released by ``release`` (ordered) and by the owner's close (the I/O thread), so the
bookkeeping is behind a lock; the namespace dict's single-key operations are atomic.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Iterable, MutableMapping
from typing import Any

from ..protocol.encoding import NotPlainJSON, check_plain
from ..protocol.errors import NameNotFound
from ..protocol.replies import REF_KEY
from .names import REFERENCE_PREFIX

__all__ = ["REF_KEY", "REPR_LIMIT", "References", "describe_reference", "needs_reference"]

# A repr is a hint for humans and debuggers: bounded, so a large array stays large only
# on the Python side.
REPR_LIMIT = 200
# Fresh names are the prefix and a counter (`_ref7`): identifiers, so they work as
# `$_ref7` and as the head of a target (`_ref7.method`). A name already taken is skipped.


def needs_reference(value: Any) -> bool:
    """True if ``value`` (anywhere inside) is not plain JSON: under ``"ref": "auto"`` it
    then becomes a reference as a whole.

    Plain: what orjson encodes natively, and the conversions that keep the data
    (tuples, sets, bytes, dates, paths, enums, dataclasses, numpy, mappings, ``getJSON``,
    exceptions as their traceback text). Not plain: modules, classes, functions and
    methods (today ``python:///`` strings), iterators (today drained to an array; a
    generator that a command returns is still collected first), and every other
    object that would be encoded as ``str(value)``. A dict holding a ``$ref`` key also becomes a
    reference, so that a reference object is never ambiguous.
    """
    if isinstance(value, dict) and REF_KEY in value:
        return True
    try:
        check_plain(value)
    except NotPlainJSON:
        return True
    return False


def describe_reference(name: str, value: Any) -> dict[str, Any]:
    """The reference object that travels instead of ``value``."""
    cls = type(value)
    module = cls.__module__
    type_name = cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
    try:
        text = repr(value)
    except Exception:
        text = f"<unprintable {type_name}>"
    if len(text) > REPR_LIMIT:
        text = text[: REPR_LIMIT - 3] + "..."
    return {REF_KEY: name, "type": type_name, "repr": text, "callable": callable(value)}


class References:
    """Which namespace names are references, and which owner holds each.

    ``namespace`` is the Companion's; references live in it so that every target and
    ``$name`` resolves them as it resolves any other name.
    """

    def __init__(self, namespace: MutableMapping[str, Any]) -> None:
        self._namespace = namespace
        self._owners: dict[str, Any] = {}  # reference name -> owner
        self._by_owner: dict[Any, set[str]] = {}  # owner -> its reference names
        # Owners already closed: a command of theirs that finishes later (a worker
        # thread) must not leave a reference nobody can release. Weak: once no job
        # holds a closed connection, it can make no more references.
        self._closed: weakref.WeakSet[Any] = weakref.WeakSet()
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def __contains__(self, name: object) -> bool:
        return name in self._owners

    def __len__(self) -> int:
        return len(self._owners)

    def create(self, owner: Any, value: Any) -> dict[str, Any]:
        """Store ``value`` under a fresh name owned by ``owner``; return its reference object."""
        with self._lock:
            name = self._fresh_name()
            if owner not in self._closed:
                self._owners[name] = owner
                self._by_owner.setdefault(owner, set()).add(name)
                self._namespace[name] = value
        return describe_reference(name, value)

    def _fresh_name(self) -> str:
        while True:
            name = f"{REFERENCE_PREFIX}{next(self._counter)}"
            if name not in self._namespace:
                return name

    def release(self, owner: Any, names: Iterable[str]) -> list[str]:
        """Free ``names``, references of ``owner``; all or none.

        Raises NameNotFound naming every name that is not a live reference of
        ``owner`` (never made, already released, or another connection's); then
        nothing is released. A name given twice is released once.
        """
        names = list(dict.fromkeys(names))  # a repeat would be freed twice: a KeyError
        with self._lock:
            unknown = [name for name in names if self._owners.get(name, _NO_OWNER) is not owner]
            if unknown:
                raise NameNotFound(
                    "not a reference of this connection (already released?): "
                    + ", ".join(repr(name) for name in unknown)
                )
            for name in names:
                self._forget(name)
                self._namespace.pop(name, None)
        return names

    def release_owner(self, owner: Any) -> int:
        """Free every reference of ``owner`` (it closed); returns how many there were."""
        with self._lock:
            self._closed.add(owner)
            names = self._by_owner.pop(owner, set())
            for name in names:
                del self._owners[name]
                self._namespace.pop(name, None)
        return len(names)

    def adopt(self, name: str) -> None:
        """``name`` was stored by choice (``store``, ``init``, ``register``): it is no
        longer a reference, and its owner's release or close leaves it alone."""
        with self._lock:
            if name in self._owners:
                self._forget(name)

    def _forget(self, name: str) -> None:
        owner = self._owners.pop(name)
        names = self._by_owner[owner]
        names.discard(name)
        if not names:
            del self._by_owner[owner]


_NO_OWNER = object()
