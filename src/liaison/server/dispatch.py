"""Act on each incoming message's route: reply, answer a control command, or queue it.

Runs on the I/O thread, so everything here is quick: the route step (parsing,
validation) is :func:`liaison.core.routing.route`; control commands are answered here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..core import Companion, InvalidArguments
from ..core.routing import CONTROL, REPLY, route
from ..protocol.commands import COMMANDS, describe_commands
from ..protocol.replies import error_reply, request_error_reply, success_reply
from ..protocol.request import Request
from .execution import Executor
from .transports.contract import Sink

__all__ = ["CONNECTION_OPTIONS", "Dispatcher", "configure"]

log = logging.getLogger("liaison.dispatch")

# configure's options and their values; the first value is the default.
CONNECTION_OPTIONS: dict[str, tuple[str, ...]] = {"pushes": ("after-reply", "immediate")}


class Dispatcher:
    """Turns raw messages from a transport into replies or jobs.

    Control commands are its methods named by their ``handler`` in the command table
    (core/commands.py); each gets the request and the sink and sends one reply.
    """

    def __init__(
        self, companion: Companion, executor: Executor, request_stop: Callable[[], None]
    ) -> None:
        self.companion = companion
        self.executor = executor
        self.request_stop = request_stop
        self._control: dict[str, Callable[[Request, Sink], None]] = {
            name: getattr(self, command.handler)
            for name, command in COMMANDS.items()
            if command.control
        }

    def handle(self, data: str | bytes, sink: Sink) -> None:
        """Handle one message: ``str`` from a text frame, ``bytes`` from a binary frame.

        Never raises: a fault of the liaison's own still answers that message alone, so
        the connection lives on and its count of unanswered messages stays true.
        """
        request = None
        try:
            action, payload = route(data, self.companion)
            if action is REPLY:
                sink.send(payload)
            elif action is CONTROL:
                request = payload
                self._control[payload.command](payload, sink)
            else:
                request = payload
                self.executor.submit(payload, sink)
        except Exception as error:  # each step above replies last, so nothing was sent
            log.exception("failed to handle a message; answering it with the error")
            if request is None:
                sink.send(error_reply(error, None, None))
            else:
                sink.send(request_error_reply(request, error))

    def on_close(self, sink: Sink) -> None:
        """The connection ``sink`` closed: free the references it made (docs/protocol.md)."""
        freed = self.companion.references.release_owner(sink)
        if freed:
            log.debug("freed %d references of %r", freed, sink)

    # -- control commands (the table's handlers) ----------------------------------------

    def ping(self, request: Request, sink: Sink) -> None:
        sink.send(success_reply(request, "pong"))

    def cancel(self, request: Request, sink: Sink) -> None:
        sink.send(success_reply(request, self.executor.cancel(sink, request.args[0])))

    def list_commands(self, request: Request, sink: Sink) -> None:
        sink.send(success_reply(request, describe_commands()))

    def configure_connection(self, request: Request, sink: Sink) -> None:
        try:
            options = configure(sink, request.kwargs)
        except InvalidArguments as error:
            sink.send(request_error_reply(request, error))
            return
        sink.send(success_reply(request, options))

    def shutdown(self, request: Request, sink: Sink) -> None:
        sink.send(success_reply(request, True))
        log.info("shutdown requested by a client")
        self.request_stop()


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
