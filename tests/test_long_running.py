"""Cancellation, timeouts, progress, streaming, concurrency and async, over real sockets."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import LiaisonProcess, RawClient


@pytest.fixture
def pair(liaison: LiaisonProcess) -> Iterator[tuple[RawClient, RawClient]]:
    first, second = RawClient(liaison.url), RawClient(liaison.url)
    yield first, second
    first.close()
    second.close()


def until_reply(client: RawClient, request_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Messages received before the final reply to ``request_id``, and that reply."""
    before = []
    while True:
        message = client.receive()
        if isinstance(message.get("evt"), dict) and message["evt"].get("id") == request_id:
            return before, message
        before.append(message)


def test_cancel_a_running_command(client: RawClient) -> None:
    client.send(client.command("run", "time:sleep", 30, id="sleeper"))
    assert client.call("ping") == "pong"
    client.send(client.command("run", "builtins:len", "after", id="after"))
    started = time.monotonic()
    assert client.call("cancel", "sleeper") is True
    reply = client.receive()
    assert time.monotonic() - started < 1
    assert reply["id"] == "sleeper" and reply["exception"]["type"] == "CancelledError"
    assert "response" not in reply
    assert client.receive()["response"] == 5  # the queue moved on
    assert client.call("cancel", "sleeper") is False  # already over


def hold_the_queue(client: RawClient, request_id: str) -> None:
    """Run announce_then_block and return once it blocks the main thread: a `release`
    sent earlier would be lost (the blocker clears the event as it starts)."""
    client.send(client.command("run", "remote_helpers:announce_then_block", id=request_id))
    assert client.receive() == {"tag": "progress", "id": request_id, "progress": "blocked"}


def test_cancel_a_queued_command(client: RawClient) -> None:
    hold_the_queue(client, "blocker")
    client.send(client.command("run", "builtins:len", "never", id="queued"))
    assert client.call("cancel", "queued") is True
    cancelled = client.receive()
    assert cancelled["id"] == "queued" and cancelled["exception"]["type"] == "CancelledError"
    assert client.call("run", "remote_helpers:release", concurrent=True) is True
    assert client.receive()["id"] == "blocker"
    assert client.call("cancel", "unknown-id") is False


def test_cancel_reaches_only_the_senders_commands(pair: tuple[RawClient, RawClient]) -> None:
    first, second = pair
    hold_the_queue(first, "mine")
    assert second.call("cancel", "mine") is False
    assert second.call("run", "remote_helpers:release", concurrent=True) is True
    assert first.receive()["response"] is True


def test_timeout(client: RawClient) -> None:
    started = time.monotonic()
    reply = client.ask(client.command("run", "time:sleep", 30, id="slow", timeout=0.3))
    assert 0.3 <= time.monotonic() - started < 2
    assert reply["id"] == "slow" and reply["exception"]["type"] == "TimeoutError"
    fast = client.ask(client.command("run", "builtins:len", "x", timeout=5))
    assert fast["response"] == 1
    # Without an id the command cannot be cancelled by message, but still times out.
    anonymous = client.ask(client.command("run", "time:sleep", 30, id=None, timeout=0.3))
    assert anonymous["id"] is None and anonymous["exception"]["type"] == "TimeoutError"


def test_timeout_of_a_concurrent_command(client: RawClient) -> None:
    reply = client.ask(client.command("run", "time:sleep", 0.8, timeout=0.2, concurrent=True))
    # A worker thread is interrupted between bytecodes: time.sleep in C finishes first.
    assert reply["exception"]["type"] == "TimeoutError"


def test_progress_arrives_before_the_reply_and_only_at_the_sender(
    pair: tuple[RawClient, RawClient],
) -> None:
    first, second = pair
    first.send(first.command("run", "remote_helpers:report_progress", 3, id="work"))
    before, reply = until_reply(first, "work")
    assert before == [{"tag": "progress", "id": "work", "progress": {"step": i, "of": 3}}
                      for i in range(3)]  # fmt: skip
    assert reply["response"] == "done"
    assert second.call("ping") == "pong"  # the next message the other client sees is its own


def test_progress_and_pushes_reach_the_client(client: RawClient) -> None:
    client.send(client.command("run", "remote_helpers:report_progress", 2, id="work"))
    before, reply = until_reply(client, "work")
    assert [message["progress"]["step"] for message in before] == [0, 1]
    assert reply["response"] == "done"
    client.call("init", "pusher", "remote_helpers:Pusher", kwargs={"liaison": "$liaison"})
    assert client.call("run", "pusher.alert", "one") == "one"
    assert client.call("run", "pusher.tell_sender", "two") == "two"
    assert [client.receive(), client.receive()] == [
        {"tag": "alert", "text": "one"}, {"tag": "private", "text": "two"}
    ]  # fmt: skip


def test_streaming_a_generator(client: RawClient) -> None:
    client.send(client.command("run", "remote_helpers:count", 4, id="gen", stream=True))
    before, reply = until_reply(client, "gen")
    assert before == [{"tag": "partial", "id": "gen", "partial": i} for i in range(4)]
    assert reply["response"] == 4


def test_streaming_an_async_generator(client: RawClient) -> None:
    client.send(client.command("run", "remote_helpers:async_count", 3, id="agen", stream=True))
    before, reply = until_reply(client, "agen")
    assert [m["partial"] for m in before] == [0, 1, 2]
    assert reply["response"] == 3


def test_without_stream_generators_are_collected(client: RawClient) -> None:
    assert client.call("run", "remote_helpers:async_count", 3) == [0, 1, 2]


def test_async_functions_are_awaited_without_blocking_the_queue(client: RawClient) -> None:
    client.send(client.command("run", "remote_helpers:async_add", 1, 2, kwargs={"delay": 30},
                               id="slow-async"))  # fmt: skip
    assert client.call("run", "remote_helpers:async_add", 2, 3) == 5
    assert client.call("cancel", "slow-async") is True
    assert client.receive()["exception"]["type"] == "CancelledError"


def test_a_concurrent_command_finishes_while_an_ordered_one_runs(client: RawClient) -> None:
    hold_the_queue(client, "ordered")
    name = client.call("run", "remote_helpers:thread_name", concurrent=True)
    assert name != "MainThread"
    assert client.call("run", "remote_helpers:release", concurrent=True) is True
    assert client.receive()["id"] == "ordered"


def test_send_to_the_sender_only(pair: tuple[RawClient, RawClient]) -> None:
    first, second = pair
    first.call("init", "teller", "remote_helpers:Pusher", kwargs={"liaison": "$liaison"})
    first.send(first.command("run", "teller.tell_sender", "psst", id="tell"))
    before, reply = until_reply(first, "tell")
    assert before == [] and reply["response"] == "psst"
    assert first.receive() == {"tag": "private", "text": "psst"}  # held for the reply
    # Second has nothing pending, so had the private message reached it, it would be in
    # second's backlog by the time second's ping is answered.
    assert second.call("ping") == "pong" and second.backlog == []


def test_an_old_style_client_sees_no_difference(pair: tuple[RawClient, RawClient]) -> None:
    """A 1.0 client matches replies on evt.id and resolves on "response" in data."""
    old, new = pair
    new.send(new.command("run", "remote_helpers:report_progress", 2, id="new-progress"))
    new.send(new.command("run", "remote_helpers:count", 2, id="new-stream", stream=True))
    for i in range(3):
        old.send({"command": {"command": "run", "args": ["builtins:pow", 2, i]}, "id": f"old{i}"})
    received = [old.receive() for _ in range(3)]
    for i, message in enumerate(received):
        assert message["evt"]["id"] == f"old{i}" and "response" in message
        assert message["response"] == 2**i
    _, last = until_reply(new, "new-stream")
    assert last["response"] == 2


def test_introspection_of_a_function_a_class_and_a_module(client: RawClient) -> None:
    assert {"companion", "liaison"} <= set(client.call("names"))
    function = client.call("describe", "json:dumps")
    assert function["kind"] == "function" and function["name"] == "dumps"
    obj, skipkeys = function["parameters"][:2]
    assert obj == {"name": "obj", "kind": "positional_or_keyword", "default": None,
                   "required": True, "annotation": None}  # fmt: skip
    assert skipkeys["kind"] == "keyword_only" and skipkeys["default"] is False
    cls = client.call("describe", "fractions:Fraction")
    assert cls["kind"] == "class" and cls["signature"].startswith("Fraction(numerator=0,")
    assert [p["name"] for p in cls["parameters"]][:2] == ["numerator", "denominator"]
    module = client.call("describe", "json")
    assert module["kind"] == "module" and module["doc"].startswith("JSON (JavaScript")
    commands = client.call("commands")
    assert commands["cancel"] and commands["describe"]
