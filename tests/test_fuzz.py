"""Property tests: no message and no name makes liaison fail other than by an error reply.

The core is tested by plain calls (the dispatcher's route step, then execution and the
reply as the executor makes it); then a few hundred random messages go through one real connection.
Imports are limited to json and math, so random targets cannot reach anything harmful.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conftest import RawClient
from inprocess import InProcessServer
from liaison.core import Companion, Request
from liaison.core.names import is_refused_name
from liaison.core.routing import Action, route
from liaison.protocol.commands import COMMANDS
from liaison.protocol.errors import ResolutionError
from liaison.protocol.replies import error_reply, success_reply

ALLOWED_MODULES = ("json", "math")
# Every command but shutdown, which would stop the liaison of the socket tests.
COMMAND_NAMES = sorted(set(COMMANDS) - {"shutdown"})
# The errors the route step may reply with: only liaison's own request errors.
ROUTE_ERRORS = {"JSONDecodeError", "InvalidMessage", "UnknownCommand", "InvalidArguments"}

# Small numbers: no random call (math:pow, ...) should run long.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

segments = st.one_of(
    st.sampled_from(["json", "math", "dumps", "loads", "sqrt", "companion", "data", "rows",
                     "0", "1", "namespace", "names", "os", "sys", "system", "__globals__",
                     "__class__", "__init__", "__import__", "__builtins__", "f_globals",
                     "decoder", "JSONDecoder", "decode", "store", "ping", "eval", "ünï"]),
    st.text(max_size=6),
)  # fmt: skip
names = st.one_of(
    st.builds(lambda parts: ".".join(parts), st.lists(segments, min_size=1, max_size=4)),
    st.builds(
        lambda module, path: f"{module}:{'.'.join(path)}",
        st.lists(segments, min_size=1, max_size=2).map(".".join),
        st.lists(segments, max_size=3),
    ),
    st.text(max_size=30),
)
arguments = st.one_of(json_values, names, names.map(lambda name: "$" + name))

command_bodies = st.fixed_dictionaries(
    {"command": st.one_of(st.sampled_from(COMMAND_NAMES), json_scalars)},
    optional={
        "args": st.one_of(st.lists(arguments, max_size=4), json_values),
        "kwargs": st.one_of(st.dictionaries(st.text(max_size=8), arguments, max_size=3),
                            json_values),
    },
)  # fmt: skip
messages = st.fixed_dictionaries(
    {"command": st.one_of(command_bodies, json_values)},
    optional={
        "id": st.one_of(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1), json_values),
        "timeout": st.one_of(st.floats(0.5, 5), json_scalars),
        "stream": st.one_of(st.booleans(), json_scalars),
        "concurrent": st.one_of(st.booleans(), json_scalars),
        "echo": st.one_of(st.booleans(), json_scalars),
        "extra": json_values,
    },
)

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def new_companion() -> Companion:
    companion = Companion(ALLOWED_MODULES)
    companion.store("data", {"rows": [{"name": "a"}, [1, 2]], "3": "three"})
    return companion


def reply_to(companion: Companion, data: str | bytes) -> list[bytes]:
    """The replies to one message: the dispatcher's route step, then what acts on it.

    Control commands are not run (``shutdown`` would stop nothing here); ordered ones are
    executed as the executor does. The call of user code may raise anything, which
    becomes an error reply as well.
    """
    action, payload = route(data, companion)
    if action is Action.REPLY:
        assert orjson.loads(payload)["exception"]["type"] in ROUTE_ERRORS
        return [payload]
    request: Request = payload
    if action is Action.CONTROL:
        return [success_reply(request, "control")]
    try:
        result = companion.execute(request)
        if inspect.isgenerator(result):
            result = list(result)
    except Exception as error:  # user code: becomes an error reply like any other
        return [error_reply(error, request.evt, request.id)]
    return [success_reply(request, result)]


def assert_one_reply(replies: list[bytes]) -> dict[str, Any]:
    assert len(replies) == 1
    reply: dict[str, Any] = orjson.loads(replies[0])
    assert reply["tag"] in ("response", "error")
    assert ("response" in reply) != ("error" in reply)
    if reply["tag"] == "error":
        assert set(reply["exception"]) == {"type", "message"}
    return reply


@pytest.mark.slow
@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_get_one_reply(data: bytes) -> None:
    assert_one_reply(reply_to(new_companion(), data))  # as a binary frame
    assert_one_reply(reply_to(new_companion(), data.decode(errors="replace")))  # as text


@pytest.mark.slow
@FUZZ
@given(json_values)
def test_random_json_gets_one_reply(value: Any) -> None:
    assert_one_reply(reply_to(new_companion(), orjson.dumps(value).decode()))


@pytest.mark.slow
@FUZZ
@given(messages)
def test_random_command_messages_get_one_reply(message: dict[str, Any]) -> None:
    reply = assert_one_reply(reply_to(new_companion(), orjson.dumps(message).decode()))
    if isinstance(message.get("id"), str):
        assert reply["id"] == message["id"]


@pytest.mark.slow
@FUZZ
@given(names)
def test_resolving_random_names_fails_only_with_resolution_errors(name: str) -> None:
    companion = new_companion()
    # A missing module is an ImportError, the documented reply for failed imports.
    with contextlib.suppress(ResolutionError, ImportError):
        companion.resolve(name)
    assert companion.exists(name) in (True, False)
    for segment in name.replace(":", ".").split("."):
        if is_refused_name(segment):
            assert companion.exists(name) is False, "a refused name was walked"


@pytest.mark.slow
@FUZZ
@given(arguments)
def test_actualizing_random_arguments_fails_only_with_resolution_errors(value: Any) -> None:
    with contextlib.suppress(ResolutionError, ImportError):
        new_companion().actualize([value, {"k": value}])


# -- over the real socket ------------------------------------------------------------------


@pytest.fixture
def fuzzed_liaison() -> Iterator[InProcessServer]:
    options = [arg for m in ALLOWED_MODULES for arg in ("--allow-module", m)]
    server = InProcessServer.start("websocket", *options)
    yield server
    server.close()


def wire_message(message: dict[str, Any]) -> str | None:
    """The message as sent, or None for one that would stop the liaison."""
    body = message.get("command")
    if isinstance(body, dict) and body.get("command") == "shutdown":
        return None
    return orjson.dumps(message).decode()


@settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking a batch takes minutes
    # One liaison for every batch, as over one long-lived connection.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example, HealthCheck.function_scoped_fixture],
)  # fmt: skip
@pytest.mark.in_process
@given(st.lists(st.one_of(messages, messages, st.text(max_size=40)), min_size=100, max_size=150))
def test_random_messages_over_one_connection_each_get_one_reply(
    fuzzed_liaison: InProcessServer, batch: list[dict[str, Any] | str]
) -> None:
    client = RawClient(fuzzed_liaison.url)
    try:
        sent = 0
        for message in batch:
            data = message if isinstance(message, str) else wire_message(message)
            if data is not None:
                client.send(data)
                sent += 1
        finals = 0
        while finals < sent:
            reply = client.receive(timeout=30)
            if reply.get("tag") in ("response", "error"):
                finals += 1
        # Commands run in order: once this is answered, no late extra reply can be pending.
        assert client.call("run", "math:sqrt", 9, id="fuzz-end") == 3.0
        assert [m for m in client.backlog if m.get("tag") in ("response", "error")] == []
    finally:
        client.close()
