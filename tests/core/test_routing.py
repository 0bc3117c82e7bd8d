"""The route step, by plain calls: message in, decision out."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from liaison.core import Companion, Request
from liaison.core.routing import Action, route
from liaison.protocol.commands import COMMANDS
from liaison.protocol.frames import encode_frame


def message(command: str, *args: Any, id: Any = "1", **kwargs: Any) -> str:
    body = {"command": command, "args": list(args), "kwargs": kwargs}
    return orjson.dumps({"command": body, "id": id}).decode()


def rejected(data: str | bytes) -> dict[str, Any]:
    action, payload = route(data, Companion())
    assert action is Action.REPLY
    reply: dict[str, Any] = orjson.loads(payload)
    assert reply["tag"] == "error" and "response" not in reply
    return reply


def test_an_ordered_command_is_executed() -> None:
    action, request = route(message("run", "math:sqrt", 4), Companion())
    assert action is Action.EXECUTE
    assert isinstance(request, Request) and request.args == ["math:sqrt", 4]


@pytest.mark.parametrize("name", ["ping", "commands", "shutdown"])
def test_control_commands_are_answered_at_once(name: str) -> None:
    action, request = route(message(name), Companion())
    assert (action, request.command) == (Action.CONTROL, name)
    assert COMMANDS[name].control


def test_a_binary_frame_is_routed_like_text() -> None:
    frame = encode_frame({"command": {"command": "store", "args": ["b", b"\x00\x01"]}, "id": 2})
    assert frame is not None
    action, request = route(bytes(frame), Companion())
    assert action is Action.EXECUTE and request.args == ["b", b"\x00\x01"]


def test_unknown_commands_get_one_error_listing_every_command() -> None:
    reply = rejected(message("eval", "1", id=7))
    assert reply["id"] == 7
    assert reply["exception"] == {
        "type": "UnknownCommand",
        "message": "unknown command 'eval'; valid: " + ", ".join(sorted(COMMANDS)),
    }


def test_control_commands_check_their_arity() -> None:
    assert rejected(message("cancel"))["exception"] == {
        "type": "InvalidArguments",
        "message": "cancel takes 1 argument (id), got 0 and 0 keyword",
    }
    assert rejected(message("ping", 1))["exception"]["message"] == (
        "ping takes 0 arguments, got 1 and 0 keyword"
    )
    assert rejected(message("cancel", id="x", other=1))["exception"]["type"] == "InvalidArguments"


def test_ordered_commands_check_their_arguments() -> None:
    reply = rejected(message("store", "x"))
    assert reply["exception"]["type"] == "InvalidArguments"
    assert reply["evt"]["command"]["args"] == ["x"]


@pytest.mark.parametrize(
    ("data", "error"),
    [("{", "JSONDecodeError"), ("[1]", "InvalidMessage"), ('{"id": 1}', "InvalidMessage"),
     (b"\x01\x00", "InvalidMessage")],
)  # fmt: skip
def test_malformed_messages_are_rejected(data: str | bytes, error: str) -> None:
    assert rejected(data)["exception"]["type"] == error


def test_routing_changes_nothing() -> None:
    companion = Companion()
    names = dict(companion.namespace)
    for data in (message("store", "x", 1), message("run", "builtins:print"), message("nope")):
        route(data, companion)
    assert companion.namespace == names
