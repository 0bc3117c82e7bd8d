"""Python objects in the liaison, used from the client as if they were local.

``client.module("numpy")`` is a :class:`Remote` for a module; attribute access builds a
longer target without a round trip, and calling sends ``run`` with ``"ref": "auto"``:
a plain JSON result comes back as a value, any other as a :class:`Remote` for a
reference (docs/protocol.md, "References"), whose methods and attributes work the same
way. One class serves both clients: it holds the :class:`AsyncClient` and a *drive*
function, which returns the coroutine as is (AsyncClient: the caller awaits it) or runs
it to its result (Client: its loop thread), so no logic is written twice.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Protocol

from ..protocol.replies import REF_KEY

__all__ = ["AsyncCaller", "Remote", "as_is", "refusing_module_paths", "target_of", "unwrap", "wrap"]

# The shared encoder never fails (a result must always encode), so it swallows the
# TypeError of a module path's getJSON and sends str(remote) instead. While a client
# encodes its arguments, the refusals are also collected here, to be raised after.
_refusals: ContextVar[list[TypeError] | None] = ContextVar("liaison_refusals", default=None)


@contextmanager
def refusing_module_paths() -> Iterator[None]:
    """Encoding a module-path Remote anywhere in a message, however deeply nested,
    inside this block raises its TypeError when the block ends."""
    refusals: list[TypeError] = []
    token = _refusals.set(refusals)
    try:
        yield
    finally:
        _refusals.reset(token)
    if refusals:
        raise refusals[0]


class AsyncCaller(Protocol):
    """What a Remote needs of its client: an AsyncClient's ``call`` and ``release``.

    A protocol rather than AsyncClient itself, which imports this module.
    """

    async def call(
        self, command: str, args: Any = (), kwargs: Any = None, *, ref: Any = False
    ) -> Any: ...

    async def release(self, *references: Any) -> list[str]: ...


Drive = Callable[[Coroutine[Any, Any, Any]], Any]


def as_is(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """An AsyncClient's drive: its Remotes hand their coroutines to the caller to await."""
    return coroutine


class Remote:
    """A module, a reference or an attribute path under one of them, in the liaison.

    ``remote.attr`` is another Remote; ``remote(*args, **kwargs)`` calls it; with an
    AsyncClient, ``await remote`` reads its value (with a Client: ``client.get(remote)``).
    A reference is freed by :meth:`release`, by leaving its ``with``/``async with``
    block, or when its connection closes; passed as an argument it travels as
    ``"$name"``. Names starting with ``_`` are not forwarded.
    """

    __slots__ = ("_client", "_drive", "_reference", "_target")

    def __init__(
        self, client: AsyncCaller, drive: Drive, target: str, reference: dict[str, Any] | None
    ) -> None:
        self._client = client
        self._drive = drive
        self._target = target  # "pkg.mod:attr.sub" or "_ref7.attr.sub"
        self._reference = reference  # the reference object of the root, or None

    def __repr__(self) -> str:
        if self._reference is not None and "." not in self._target:
            return f"<Remote {self._target} {self._reference.get('repr', '')}>"
        return f"<Remote {self._target}>"

    def __getattr__(self, name: str) -> Remote:
        if name.startswith("_"):
            raise AttributeError(name)
        joint = "." if self._reference is not None or ":" in self._target else ":"
        return Remote(self._client, self._drive, f"{self._target}{joint}{name}", self._reference)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        kwargs = {key: unwrap(value) for key, value in kwargs.items()}
        return self._drive(self._ask("run", [self._target, *map(unwrap, args)], kwargs))

    def __await__(self) -> Generator[Any, None, Any]:
        if self._drive is not as_is:  # checked first: a Client's drive would block on a get
            raise TypeError("only an AsyncClient's Remote can be awaited: use client.get(remote)")
        return self._ask("get", [self._target], {}).__await__()

    async def _ask(self, command: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        response = await self._client.call(command, args, kwargs, ref="auto")
        return wrap(self._client, self._drive, response)

    def getJSON(self) -> str:  # the encoder's hook (core/encoding.py)
        """``"$name.path"``: how a reference travels as an argument."""
        if self._reference is None:
            error = TypeError(f"{self._target!r} is a module path, not a reference")
            refusals = _refusals.get()
            if refusals is not None:
                refusals.append(error)
            raise error
        return f"${self._target}"

    def release(self) -> Any:
        """Free the reference in the liaison (a coroutine with an AsyncClient)."""
        if self._reference is None or "." in self._target:
            raise TypeError(f"{self._target!r} is not a reference: there is nothing to release")
        return self._drive(self._client.release(self._target))

    def __enter__(self) -> Remote:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> Remote:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()


def wrap(client: AsyncCaller, drive: Drive, response: Any) -> Any:
    """``response`` of a call made with ``"ref"``: a Remote if it is a reference object."""
    if isinstance(response, dict) and isinstance(response.get(REF_KEY), str):
        return Remote(client, drive, response[REF_KEY], response)
    return response


def unwrap(value: Any) -> Any:
    """A top-level Remote argument as its ``"$name"``; a module path is refused here
    (nested ones are encoded by their ``getJSON``, under :func:`refusing_module_paths`)."""
    return value.getJSON() if isinstance(value, Remote) else value


def target_of(target: str | Remote) -> str:
    """The target string of ``target``, a string or a Remote."""
    return target._target if isinstance(target, Remote) else target
