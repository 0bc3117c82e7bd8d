"""The route step: one incoming message to a decision, with no I/O and no side effect.

The dispatcher acts on the decision (sends, runs a control command, or queues); the
property tests call the same function, so what they check is what the liaison does.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from ..protocol.commands import COMMANDS, unknown_command
from ..protocol.errors import InvalidArguments, LiaisonError
from ..protocol.replies import rejection_reply, request_error_reply
from ..protocol.request import RejectedMessage, Request, parse_frame, parse_message

if TYPE_CHECKING:
    from .companion import Companion

__all__ = ["Action", "Route", "route"]


class Action(enum.Enum):
    """What to do with a message."""

    REPLY = "reply"  # send the route's bytes at once: the message is rejected
    CONTROL = "control"  # answer at once, on the I/O thread: a control command
    EXECUTE = "execute"  # hand the request to the executor: an ordered command


# (REPLY, bytes) | (CONTROL, Request) | (EXECUTE, Request). A tuple, not an object: this
# runs for every message.
Route = tuple[Action, Any]

REPLY, CONTROL, EXECUTE = Action.REPLY, Action.CONTROL, Action.EXECUTE


def route(data: str | bytes, companion: Companion) -> Route:
    """Decide what to do with ``data``: ``str`` from a text frame, ``bytes`` from a binary one.

    Malformed messages, unknown commands and arguments that do not fit the command's
    parameters get ``(REPLY, error_reply_bytes)``; ``companion`` checks the arguments of
    ordered commands and is not changed.
    """
    try:
        request = parse_frame(data) if isinstance(data, bytes) else parse_message(data)
    except RejectedMessage as rejected:
        return REPLY, rejection_reply(rejected)
    command = COMMANDS.get(request.command)
    if command is None:
        return REPLY, request_error_reply(request, unknown_command(request.command))
    if command.control:
        if len(request.args) != command.positional_count or (
            request.kwargs and not command.takes_kwargs
        ):
            return REPLY, request_error_reply(request, _control_arity_error(request))
        return CONTROL, request
    try:
        companion.check(request)
    except LiaisonError as error:
        return REPLY, request_error_reply(request, error)
    return EXECUTE, request


def _control_arity_error(request: Request) -> InvalidArguments:
    parameters = COMMANDS[request.command].parameters
    return InvalidArguments(
        f"{request.command} takes {len(parameters)} argument"
        f"{'' if len(parameters) == 1 else 's'}"
        f"{' (' + ', '.join(parameters) + ')' if parameters else ''}, "
        f"got {len(request.args)} and {len(request.kwargs)} keyword"
    )
