"""The command table: every command a client can send, declared once.

Routing (:mod:`.routing`), argument checks, the ``commands`` command, the docs' tables
and both clients' parity tests read this table. To add a command, add one
:class:`Command` here and its handler: a :class:`~.companion.Companion` method for an
ordered command, a :class:`~liaison.server.dispatch.Dispatcher` method for a control command.
"""

from __future__ import annotations

from typing import Any

from .errors import UnknownCommand

__all__ = ["COMMANDS", "Command", "describe_commands", "unknown_command"]


class Command:
    """One command as clients see it. Treat it as immutable.

    ``name``: the wire name (``command.command``). ``parameters``: as ``commands``
    lists them (``*args``, ``**kwargs`` for variadic ones). ``doc``: one line.
    ``control``: answered by the I/O thread at once, even while a command runs;
    otherwise ordered: executed by the Companion in arrival order. ``handler``: the
    name of the method that serves it, on the Companion (ordered) or the Dispatcher
    (control). ``method``: the clients' method for it (``try`` is a keyword in Python
    and JavaScript, so theirs is ``attempt``).
    """

    # A plain class, as Request: a dataclass costs start-up time to build.
    __slots__ = (
        "control", "doc", "handler", "method", "name", "parameters", "positional_count",
        "takes_kwargs",
    )  # fmt: skip

    def __init__(
        self,
        name: str,
        parameters: tuple[str, ...],
        doc: str,
        *,
        control: bool,
        handler: str,
        method: str | None = None,
    ) -> None:
        self.name = name
        self.parameters = parameters
        self.doc = doc
        self.control = control
        self.handler = handler
        self.method = name if method is None else method
        # What control commands' arity checks need (the Companion checks ordered ones).
        self.positional_count = sum(1 for p in parameters if not p.startswith("*"))
        self.takes_kwargs = any(p.startswith("**") for p in parameters)

    def __repr__(self) -> str:
        kind = "control" if self.control else "ordered"
        return f"<Command {self.name}({', '.join(self.parameters)}) {kind}: {self.handler}>"


def _ordered(
    name: str, parameters: tuple[str, ...], handler: str, doc: str, method: str | None = None
) -> Command:
    return Command(name, parameters, doc, control=False, handler=handler, method=method)


def _control(name: str, parameters: tuple[str, ...], handler: str, doc: str) -> Command:
    return Command(name, parameters, doc, control=True, handler=handler)


_VARIADIC = ("*args", "**kwargs")

# The names liaison 1.0 frontends send come first.
COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        _ordered("get", ("target",), "resolve", "Get the object a target names (``get``)."),
        _ordered(
            "exists", ("target",), "exists",
            "Whether ``target`` resolves (``exists``); any failure to resolve means false.",
        ),
        _ordered(
            "init", ("name", "cls", *_VARIADIC), "initialize",
            "Store ``cls(*args, **kwargs)`` as ``name`` (``init``); return ``name``.",
        ),
        _ordered(
            "run", ("fcn", *_VARIADIC), "call",
            "``fcn(*args, **kwargs)`` with ``$`` references resolved (``run``).",
        ),
        _ordered(
            "try", ("fcn", *_VARIADIC), "attempt",
            'Like ``run`` but never fails: ``{"success": bool, "result": value or error}``.',
            method="attempt",
        ),
        _ordered(
            "register", ("name", "target"), "register",
            "Store the object ``target`` names as ``name`` (``register``); return ``name``.",
        ),
        _ordered(
            "store", ("name", "value"), "store",
            "Store ``value`` as ``name`` (``store``); return ``name``.",
        ),
        _control(
            "ping", (), "ping", 'Return "pong" at once: tells a client the liaison is alive.'
        ),
        _ordered("names", (), "names", "The names in the namespace, sorted."),
        _ordered(
            "describe", ("target",), "describe",
            "Kind, signature, parameters and doc of what ``target`` names, for building forms.",
        ),
        _control(
            "cancel", ("id",), "cancel", "Cancel a queued or running command of this connection."
        ),
        _ordered(
            "release", ("*names",), "release",
            "Free references made for this connection (``release``); all or none.",
        ),
        _control("commands", (), "list_commands", "List every command with its arguments."),
        _control("shutdown", (), "shutdown", "Reply, then stop the liaison gracefully."),
        _control(
            "configure", ("**options",), "configure_connection",
            'Set options of this connection: pushes="immediate" sends pushed messages at once.',
        ),
    )
}  # fmt: skip

_VALID = ", ".join(sorted(COMMANDS))


def unknown_command(name: Any) -> UnknownCommand:
    """The one error for a ``command.command`` that names no command."""
    return UnknownCommand(f"unknown command {name!r}; valid: {_VALID}")


def describe_commands() -> dict[str, dict[str, Any]]:
    """The ``commands`` command's result: each command's parameters and doc, by name."""
    return {
        name: {"args": list(COMMANDS[name].parameters), "doc": COMMANDS[name].doc}
        for name in sorted(COMMANDS)
    }
