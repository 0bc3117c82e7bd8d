"""parse_message: every wrong shape is rejected with a message naming the field; the `$`
pre-check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liaison.core import InvalidMessage, RejectedMessage, parse_message
from liaison.protocol.replies import rejection_reply
from liaison.protocol.request import may_hold_dollar


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
        "liaison.protocol.errors.InvalidMessage: command must be an object, got number\n"
    )


def test_echo_false_drops_args_from_evt() -> None:
    request = parse_message('{"command": {"command": "run", "args": ["a:b", "x"]}, "echo": false}')
    assert request.evt["command"] == {"command": "run"}
    assert request.args == ["a:b", "x"]


# -- the `$` pre-check: a message with no `$` has no reference or placeholder to look for


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
@pytest.mark.parametrize(
    ("text", "literal"),
    [
        ('{"command": {"command": "run", "args": ["m:f", [1.5, "a"]]}}', True),
        ('{"command": {"command": "run", "args": ["m:f", "$x"]}}', False),
        ('{"command": {"command": "run", "args": ["m:f", "\\u0024x"]}}', False),
        ('{"command": {"command": "run", "args": ["m:f", [[{"k": ["\\u0024x"]}]]]}}', False),
        ('{"command": {"command": "run", "args": ["m:f"], "kwargs": {"k": {"n": "$x"}}}}', False),
        ('{"command": {"command": "run", "args": ["m:f"], "kwargs": {"k": ["\\u0024x"]}}}', False),
        ('{"command": {"command": "run", "args": ["m:f", {"\\u0024buffer": 0}]}}', False),
        ('{"command": {"command": "run", "args": ["m:f", "a\\\\b", "\\"q\\""]}}', True),
        ('{"command": {"command": "run", "args": ["m:f"]}, "id": "$ anywhere"}', False),
    ],
)
def test_a_request_is_literal_only_if_its_text_holds_no_dollar(
    text: str, literal: bool, as_bytes: bool
) -> None:
    request = parse_message(text.encode() if as_bytes else text)
    assert request.literal is literal
    assert request.with_arguments(request.args, request.kwargs).literal is literal


def test_a_request_parsed_from_a_dict_is_never_literal() -> None:
    assert parse_message({"command": {"command": "run", "args": ["m:f", 1]}}).literal is False


def test_the_pre_check_reads_only_the_range_given_and_never_a_memoryview() -> None:
    text = b'{"a": 1}$'
    assert may_hold_dollar(text) and not may_hold_dollar(text, 0, 8)
    assert may_hold_dollar(bytearray(text), 8) and not may_hold_dollar(bytearray(b"[1]"))
    assert may_hold_dollar(memoryview(b"[1]"))  # `in` would compare items: no answer


def _escaped(value: Any, escape: list[bool], upper: list[bool]) -> str:
    """``value`` as JSON text with some characters of its strings as ``\\uXXXX`` escapes."""
    if isinstance(value, str):
        out = []
        for i, char in enumerate(value):
            if escape[i % len(escape)] or char in '"\\':
                hex_digits = f"{ord(char):04x}"
                out.append("\\u" + (hex_digits.upper() if upper[i % len(upper)] else hex_digits))
            else:
                out.append(char)
        return '"' + "".join(out) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_escaped(item, escape, upper) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(
            _escaped(key, escape, upper) + ": " + _escaped(item, escape, upper)
            for key, item in value.items()
        ) + "}"  # fmt: skip
    return orjson.dumps(value).decode()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.text('$ab\\u0024"{}', max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text("$bufer\\", max_size=7), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    _JSON_VALUES,
    st.lists(st.booleans(), min_size=1, max_size=5),
    st.lists(st.booleans(), min_size=1, max_size=3),
)
def test_no_text_said_to_be_free_of_dollars_decodes_to_one(
    value: Any, escape: list[bool], upper: list[bool]
) -> None:
    text = _escaped({"command": {"command": "run", "args": ["m:f", value]}}, escape, upper)
    assert orjson.loads(text) == {"command": {"command": "run", "args": ["m:f", value]}}
    holds_dollar = any("$" in string for string in _strings(value))
    for form in (text, text.encode()):
        literal = parse_message(form).literal
        assert literal is not may_hold_dollar(form)
        assert not (literal and holds_dollar)
