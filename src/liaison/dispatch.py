"""Route each incoming message: control commands are answered at once, the rest executed.

Runs on the I/O thread, so everything here is quick: parsing, validation, queueing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .core import (
    Companion,
    InvalidArguments,
    LiaisonError,
    RejectedMessage,
    UnknownCommand,
    parse_message,
)
from .core.replies import rejection_reply, request_error_reply, success_reply
from .core.request import Request, parse_frame
from .execution import Executor, Sink

__all__ = ["CONTROL_COMMANDS", "Dispatcher"]

log = logging.getLogger("liaison.dispatch")

# Answered by the I/O thread even while a long command runs; (parameters, doc).
CONTROL_COMMANDS: dict[str, tuple[list[str], str]] = {
    "ping": ([], 'Return "pong" at once: tells a client the liaison is alive.'),
    "cancel": (["id"], "Cancel a queued or running command of this connection."),
    "commands": ([], "List every command with its arguments."),
    "shutdown": ([], "Reply, then stop the liaison gracefully."),
    "configure": (
        ["**options"],
        'Set options of this connection: pushes="immediate" sends pushed messages at once.',
    ),
}

# configure's options and their values; the first value is the default.
CONNECTION_OPTIONS: dict[str, tuple[str, ...]] = {"pushes": ("after-reply", "immediate")}

_CONTROL_ARITY = {
    name: len([p for p in parameters if not p.startswith("**")])
    for name, (parameters, _) in CONTROL_COMMANDS.items()
}


class Dispatcher:
    """Turns raw messages from a transport into replies or jobs."""

    def __init__(
        self, companion: Companion, executor: Executor, request_stop: Callable[[], None]
    ) -> None:
        self.companion = companion
        self.executor = executor
        self.request_stop = request_stop

    def handle(self, data: str | bytes, sink: Sink) -> None:
        """Handle one message: ``str`` from a text frame, ``bytes`` from a binary frame."""
        try:
            request = parse_frame(data) if isinstance(data, bytes) else parse_message(data)
        except RejectedMessage as rejected:
            sink.send(rejection_reply(rejected))
            return
        if request.command in CONTROL_COMMANDS:
            self._control(request, sink)
            return
        if request.command not in self.companion.commands:
            valid = ", ".join(sorted({*self.companion.commands, *CONTROL_COMMANDS}))
            error = UnknownCommand(f"unknown command {request.command!r}; valid: {valid}")
            sink.send(request_error_reply(request, error))
            return
        try:
            self.companion.check(request)
        except LiaisonError as error:
            sink.send(request_error_reply(request, error))
            return
        self.executor.submit(request, sink)

    def _control(self, request: Request, sink: Sink) -> None:
        takes_kwargs = request.command == "configure"
        if len(request.args) != _CONTROL_ARITY[request.command] or (
            request.kwargs and not takes_kwargs
        ):
            parameters, _ = CONTROL_COMMANDS[request.command]
            error = InvalidArguments(
                f"{request.command} takes {len(parameters)} argument"
                f"{'' if len(parameters) == 1 else 's'}"
                f"{' (' + ', '.join(parameters) + ')' if parameters else ''}, "
                f"got {len(request.args)} and {len(request.kwargs)} keyword"
            )
            sink.send(request_error_reply(request, error))
            return
        result: Any
        if request.command == "ping":
            result = "pong"
        elif request.command == "cancel":
            result = self.executor.cancel(sink, request.args[0])
        elif request.command == "commands":
            result = self.describe_commands()
        elif request.command == "configure":
            try:
                result = configure(sink, request.kwargs)
            except InvalidArguments as error:
                sink.send(request_error_reply(request, error))
                return
        else:  # shutdown
            sink.send(success_reply(request, True))
            log.info("shutdown requested by a client")
            self.request_stop()
            return
        sink.send(success_reply(request, result))

    def describe_commands(self) -> dict[str, dict[str, Any]]:
        """Every command, ordered and control, with its arguments and doc."""
        commands = self.companion.describe_commands()
        for name, (parameters, doc) in CONTROL_COMMANDS.items():
            commands[name] = {"args": parameters, "doc": doc}
        return dict(sorted(commands.items()))


def configure(sink: Sink, options: dict[str, Any]) -> dict[str, str]:
    """Apply ``configure``'s options to the connection; return all of its options.

    Raises InvalidArguments, naming the option or value, before changing anything.
    """
    for name, value in options.items():
        values = CONNECTION_OPTIONS.get(name)
        if values is None:
            raise InvalidArguments(
                f"configure: unknown option {name!r}; valid: {', '.join(CONNECTION_OPTIONS)}"
            )
        if value not in values:
            raise InvalidArguments(
                f"configure: {name} must be one of {', '.join(map(repr, values))}, got {value!r}"
            )
    if "pushes" in options:
        sink.set_immediate_pushes(options["pushes"] == "immediate")
    return {"pushes": "immediate" if sink.immediate_pushes else "after-reply"}
