"""parse_message: every wrong shape is rejected with a message naming the field."""

from __future__ import annotations

import pytest

from liaison.core import InvalidMessage, RejectedMessage, parse_message
from liaison.core.replies import rejection_reply


def rejection(data: object) -> RejectedMessage:
    with pytest.raises(RejectedMessage) as caught:
        parse_message(data if isinstance(data, (str, bytes)) else __import__("json").dumps(data))
    return caught.value


def test_a_full_message_becomes_a_request() -> None:
    request = parse_message(
        b'{"command": {"command": "run", "args": ["m:f", 1], "kwargs": {"k": 2}}, "id": "x",'
        b' "timeout": 2, "stream": true, "concurrent": true, "extra": 1}'
    )
    assert (request.command, request.args, request.kwargs, request.id) == (
        "run",
        ["m:f", 1],
        {"k": 2},
        "x",
    )
    assert (request.timeout, request.stream, request.concurrent) == (2.0, True, True)
    assert request.evt["extra"] == 1


def test_a_released_request_keeps_its_id_and_options_but_not_its_arguments() -> None:
    request = parse_message(
        b'{"command": {"command": "run", "args": ["m:f", "big"], "kwargs": {"k": "big"}},'
        b' "id": 7, "timeout": 2, "echo": false, "binary": true}'
    )
    released = request.released()
    assert (released.command, released.id, released.timeout) == ("run", 7, 2.0)
    assert (released.echo, released.binary) == (False, True)
    assert (released.args, released.kwargs, released.message) == ([], {}, {"id": 7})
    assert request.args == ["m:f", "big"]  # the original is left as it was


def test_args_and_kwargs_default_to_empty_and_id_to_null() -> None:
    request = parse_message('{"command": {"command": "ping"}}')
    assert (request.args, request.kwargs, request.id) == ([], {}, None)


def test_invalid_json_is_a_json_decode_error_without_id() -> None:
    rejected = rejection("{not json")
    assert type(rejected.error).__name__ == "JSONDecodeError"
    assert (rejected.message, rejected.id) == (None, None)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ([1, 2], "message must be a JSON object, got array"),
        ("just a string", "message must be a JSON object, got string"),
        ({"id": 1}, "message has no 'command' field"),
        ({"command": "run", "id": 1}, "command must be an object, got string"),
        ({"command": {}, "id": 1}, "command has no 'command' field"),
        ({"command": {"command": 3}, "id": 1}, "command.command must be a string, got number"),
        ({"command": {"command": "run", "args": "x"}, "id": 1},
         "command.args must be an array, got string"),
        ({"command": {"command": "run", "kwargs": []}, "id": 1},
         "command.kwargs must be an object, got array"),
        ({"command": {"command": "run"}, "id": 1, "timeout": -1},
         "timeout must be a positive number of seconds"),
        ({"command": {"command": "run"}, "id": 1, "stream": "yes"},
         "stream must be a boolean, got string"),
    ],
)  # fmt: skip
def test_wrong_shapes_name_the_field(message: object, expected: str) -> None:
    rejected = rejection(message if not isinstance(message, str) else f'"{message}"')
    assert isinstance(rejected.error, InvalidMessage)
    assert expected in str(rejected.error)
    if isinstance(message, dict):
        assert rejected.id == message["id"]
        assert rejected.message == message


def test_an_unreadable_id_is_replied_as_null() -> None:
    rejected = rejection({"command": {"command": "ping"}, "id": {"nested": 1}})
    assert rejected.id is None
    assert "id must be a string, number or null, got object" in str(rejected.error)


def test_rejection_reply_has_type_message_evt_and_id() -> None:
    import orjson

    reply = orjson.loads(rejection_reply(rejection({"command": 5, "id": "q"})))
    assert reply["tag"] == "error" and "response" not in reply
    assert reply["id"] == "q" and reply["evt"] == {"command": 5, "id": "q"}
    assert reply["exception"] == {
        "type": "InvalidMessage",
        "message": "command must be an object, got number",
    }
    assert reply["error"][-1] == (
        "liaison.core.errors.InvalidMessage: command must be an object, got number\n"
    )


def test_echo_false_drops_args_from_evt() -> None:
    request = parse_message('{"command": {"command": "run", "args": ["a:b", "x"]}, "echo": false}')
    assert request.evt["command"] == {"command": "run"}
    assert request.args == ["a:b", "x"]
