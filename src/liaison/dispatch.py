"""Act on each incoming message's route: reply, answer a control command, or queue it.

Runs on the I/O thread, so everything here is quick: the route step (parsing,
validation) is :func:`liaison.core.routing.route`; control commands are answered here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .core import Companion
from .core.commands import COMMANDS, describe_commands
from .core.replies import success_reply
from .core.request import Request
from .core.routing import CONTROL, REPLY, route
from .execution import Executor, Sink

__all__ = ["Dispatcher"]

log = logging.getLogger("liaison.dispatch")


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
        """Handle one message: ``str`` from a text frame, ``bytes`` from a binary frame."""
        action, payload = route(data, self.companion)
        if action is REPLY:
            sink.send(payload)
        elif action is CONTROL:
            self._control[payload.command](payload, sink)
        else:
            self.executor.submit(payload, sink)

    # -- control commands (the table's handlers) ----------------------------------------

    def ping(self, request: Request, sink: Sink) -> None:
        sink.send(success_reply(request, "pong"))

    def cancel(self, request: Request, sink: Sink) -> None:
        sink.send(success_reply(request, self.executor.cancel(sink, request.args[0])))

    def list_commands(self, request: Request, sink: Sink) -> None:
        sink.send(success_reply(request, describe_commands()))

    def shutdown(self, request: Request, sink: Sink) -> None:
        sink.send(success_reply(request, True))
        log.info("shutdown requested by a client")
        self.request_stop()
