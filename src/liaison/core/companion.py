"""The Companion: a namespace and the commands that act on it.

It executes requests but knows nothing of sockets, threads or queues: the execution
layer decides when and where :meth:`Companion.execute` runs.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any

from ..protocol.commands import COMMANDS, unknown_command
from ..protocol.errors import InvalidArguments, InvalidTarget, LiaisonInterrupt
from ..protocol.request import Request
from .names import REFERENCE, Resolver
from .references import References, needs_reference

__all__ = ["Companion"]

# JSON values that can hold no reference, by exact type (bool is not an int here).
_LEAVES = frozenset([int, float, bool, type(None)])


class Companion:
    """Executes commands against its ``namespace``.

    ``allowed_modules``: if given, every import made for a client is limited to these
    modules and their submodules (names already in the namespace stay usable).

    Clients reach this object (``$companion``), so it keeps its guard out of their
    hands: slots (no ``__dict__`` to edit, no method to shadow) and a ``resolver`` that
    cannot be replaced (docs/security.md).
    """

    __slots__ = (
        "_literal_commands", "_positional_ranges", "_signatures", "commands",
        "current_owner", "namespace", "references", "resolver",
    )  # fmt: skip
    resolver: Resolver

    def __init__(self, allowed_modules: Iterable[str] | None = None) -> None:
        if hasattr(self, "resolver"):  # `methodcaller("__init__", None)` on `$companion`
            raise AttributeError("the Companion cannot be initialised again")
        self.namespace: dict[str, Any] = {"companion": self}
        object.__setattr__(self, "resolver", Resolver(allowed_modules))
        self.references = References(self.namespace)
        # Who sent the running command (its connection), for `release`; the execution
        # layer sets this, since only it knows which command runs on which thread.
        self.current_owner: Callable[[], Any] = lambda: None
        # The ordered commands of the table (core/commands.py), bound to their methods.
        self.commands: dict[str, Callable[..., Any]] = {
            name: getattr(self, command.handler)
            for name, command in COMMANDS.items()
            if not command.control
        }
        # The commands that resolve `$` references, as they run a message that holds none.
        self._literal_commands: dict[str, Callable[..., Any]] = {
            "run": lambda fcn, /, *args, **kwargs: self._call(fcn, args, kwargs, False),
            "init": lambda name, cls, /, *args, **kwargs: self._initialize(
                name, cls, args, kwargs, False
            ),
            "try": lambda fcn, /, *args, **kwargs: self._attempt(fcn, args, kwargs, False),
        }
        self._signatures = {name: inspect.signature(f) for name, f in self.commands.items()}
        # Positional counts that need no Signature.bind (about 3 us) when there are no kwargs.
        self._positional_ranges = {
            name: _positional_range(signature) for name, signature in self._signatures.items()
        }

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "resolver":
            raise AttributeError("the Companion's resolver cannot be replaced")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if name == "resolver":
            raise AttributeError("the Companion's resolver cannot be deleted")
        object.__delattr__(self, name)

    # -- the execution layer's entry points -------------------------------------------

    def check(self, request: Request) -> None:
        """Raise UnknownCommand or InvalidArguments unless ``request`` can be executed."""
        signature = self._signatures.get(request.command)
        if signature is None:
            raise unknown_command(request.command)
        if not request.kwargs:
            least, most = self._positional_ranges[request.command]
            if least <= len(request.args) <= most:
                return
        if request.args or request.kwargs:
            try:
                signature.bind(*request.args, **request.kwargs)
            except TypeError as error:
                raise InvalidArguments(f"{request.command}: {error}") from None
        elif _required_count(signature):
            raise InvalidArguments(
                f"{request.command} needs {_required_names(signature)}, got no arguments"
            )

    def execute(self, request: Request) -> Any:
        """Run the request's command and return its raw result (maybe a generator).

        The arguments of a ``literal`` request (its message held no ``$``) hold no
        reference: they go to the function as they are, unwalked.
        """
        command = self._literal_commands.get(request.command) if request.literal else None
        if command is None:
            command = self.commands[request.command]
        return command(*request.args, **request.kwargs)

    def response(self, request: Request, result: Any, owner: Any) -> Any:
        """What the reply carries for ``result``: itself, or, as the request's ``ref``
        option asks, a reference object for it owned by ``owner``."""
        ref = request.ref
        if ref is True or (ref == "auto" and needs_reference(result)):
            return self.references.create(owner, result)
        return result

    # -- resolution ---------------------------------------------------------------------

    def resolve(self, target: str) -> Any:
        """Get the object a target names (``get``)."""
        return self.resolver.resolve(target, self.namespace)

    def actualize(self, value: Any) -> Any:
        """``value`` with every ``$name.path`` string (also nested) replaced by its object.

        Arrays and objects holding no reference are returned as they are, not copied.
        """
        if isinstance(value, str):
            if value.startswith("$"):
                match = REFERENCE.fullmatch(value)
                if match:
                    return self.resolve(match.group(1))
            return value
        if isinstance(value, (list, dict)):
            out: Any = None
            for key, item in enumerate(value) if isinstance(value, list) else value.items():
                kind = type(item)
                if kind in _LEAVES or (kind is str and not item.startswith("$")):
                    continue  # most items: no call
                new = self.actualize(item)
                if new is not item:
                    if out is None:
                        out = value.copy()  # copied only if something is replaced
                    out[key] = new
            return value if out is None else out
        return value

    # -- commands -----------------------------------------------------------------------

    def exists(self, target: str) -> bool:
        """Whether ``target`` resolves (``exists``); any failure to resolve means false.

        Also an import that raises SystemExit (``unittest.__main__``), as in liaison
        1.0.1. A stop aimed at the command (Ctrl-C, cancel, timeout, shutdown) is no
        answer: it propagates.
        """
        try:
            self.resolve(target)
        except (KeyboardInterrupt, LiaisonInterrupt):
            raise
        except BaseException:
            return False
        return True

    def initialize(self, name: str, cls: str, /, *args: Any, **kwargs: Any) -> str:
        """Store ``cls(*args, **kwargs)`` as ``name`` (``init``); return ``name``.

        ``name`` and ``cls`` are positional-only, so the object's own keyword arguments
        may be called ``name`` or ``cls`` too (likewise ``fcn`` for ``run`` and ``try``).
        """
        return self._initialize(name, cls, args, kwargs, True)

    def call(self, fcn: str, /, *args: Any, **kwargs: Any) -> Any:
        """``fcn(*args, **kwargs)`` with ``$`` references resolved (``run``)."""
        return self._call(fcn, args, kwargs, True)

    def attempt(self, fcn: str, /, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Like ``run`` but never fails: ``{"success": bool, "result": value or error}``."""
        return self._attempt(fcn, args, kwargs, True)

    def _initialize(
        self, name: str, cls: str, args: tuple[Any, ...], kwargs: dict[str, Any], refer: bool
    ) -> str:
        _check_name(name)
        self._keep(name, self._call(cls, args, kwargs, refer))
        return name

    def _call(self, fcn: str, args: tuple[Any, ...], kwargs: dict[str, Any], refer: bool) -> Any:
        """``fcn(*args, **kwargs)``, resolving references in the arguments if ``refer``."""
        function = self.resolve(fcn)
        if not callable(function):
            raise InvalidTarget(f"{fcn!r} is not callable (it is a {type(function).__name__})")
        if not refer:
            return function(*args, **kwargs)
        return function(
            *[self.actualize(arg) for arg in args],
            **{key: self.actualize(value) for key, value in kwargs.items()},
        )

    def _attempt(
        self, fcn: str, args: tuple[Any, ...], kwargs: dict[str, Any], refer: bool
    ) -> dict[str, Any]:
        try:
            result = self._call(fcn, args, kwargs, refer)
            if inspect.isgenerator(result):
                result = list(result)
        except Exception as error:
            return {"success": False, "result": error}
        return {"success": True, "result": result}

    def register(self, name: str | None, target: str) -> str:
        """Store the object ``target`` names as ``name`` (``register``); return ``name``."""
        element = self.resolve(target)
        if name is None:
            name = getattr(element, "__name__", None)
            if not isinstance(name, str):
                raise InvalidArguments(f"no name given and {target!r} has no __name__")
        _check_name(name)
        self._keep(name, element)
        return name

    def store(self, name: str, value: Any) -> str:
        """Store ``value`` as ``name`` (``store``); return ``name``."""
        _check_name(name)
        self._keep(name, value)
        return name

    def _keep(self, name: str, value: Any) -> None:
        """Store ``value`` as ``name`` by choice: no longer a reference, if it was one."""
        # Adopted first: stored first, the reference's owner closing in between (on the
        # I/O thread) would free the name, and with it the value just stored.
        self.references.adopt(name)
        self.namespace[name] = value

    def ping(self) -> str:
        """Return ``"pong"`` (``run companion.ping``; the ``ping`` command is a control one)."""
        return "pong"

    def names(self) -> list[str]:
        """The names in the namespace, sorted."""
        return sorted(self.namespace)

    def release(self, *names: Any) -> list[str]:
        """Free references made for this connection (``release``); all or none.

        Returns the names released. Raises NameNotFound naming each name that is not a
        live reference of this connection (never made, already released, another's).
        """
        for name in names:
            if not isinstance(name, str):
                got = type(name).__name__
                raise InvalidArguments(f"release takes reference names (strings), got {got}")
        return self.references.release(self.current_owner(), names)

    def describe(self, target: str) -> dict[str, Any]:
        """Kind, signature, parameters and doc of what ``target`` names, for building forms."""
        from .describe import describe

        return describe(self.resolve(target), target)


def _check_name(name: object) -> None:
    # Any other string is a usable key, dunders included (liaison 1.0 took any); a dotted
    # name could never be looked up, as targets split at dots.
    if not isinstance(name, str) or not name:
        got = type(name).__name__ if not isinstance(name, str) else "an empty string"
        raise InvalidArguments(f"name must be a non-empty string, got {got}")
    if "." in name:
        raise InvalidArguments(f"name {name!r} cannot be stored: it has a dot")


def _required(signature: inspect.Signature) -> list[str]:
    return [
        p.name
        for p in signature.parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def _positional_range(signature: inspect.Signature) -> tuple[int, float]:
    """The least and most positional arguments ``signature`` accepts."""
    least, most = 0, 0.0
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            most = math.inf
        elif parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            most += 1
            if parameter.default is parameter.empty:
                least += 1
    return least, most


def _required_count(signature: inspect.Signature) -> int:
    return len(_required(signature))


def _required_names(signature: inspect.Signature) -> str:
    names = _required(signature)
    return f"{len(names)} argument{'s' if len(names) > 1 else ''} ({', '.join(names)})"
