"""The dispatcher, in-process: control commands at once, the rest queued, bad input replied."""

from __future__ import annotations

import orjson

from inprocess import InProcessLiaison, RecordingSink, message
from liaison.core import Companion
from liaison.protocol.commands import describe_commands
from liaison.server.dispatch import Dispatcher
from liaison.server.execution import Executor


def dispatcher() -> tuple[Dispatcher, Executor, list[str]]:
    companion = Companion()
    executor = Executor(companion)
    stops: list[str] = []
    return Dispatcher(companion, executor, lambda: stops.append("stop")), executor, stops


def test_control_commands_are_answered_during_handle_without_the_executor() -> None:
    handler, _, _ = dispatcher()
    sink = RecordingSink()
    handler.handle(message("ping", id=1), sink)
    handler.handle(message("commands", id=2), sink)
    pong, commands = (orjson.loads(reply) for reply in sink.replies)
    assert (pong["response"], pong["id"]) == ("pong", 1)
    assert commands["response"] == describe_commands()


def test_ordered_commands_wait_for_the_executor() -> None:
    handler, executor, _ = dispatcher()
    sink = RecordingSink()
    handler.handle(message("run", "builtins:abs", -3, id="r"), sink)
    assert sink.replies == []
    executor.stop_when_idle()
    executor.run_forever()
    assert sink.wait_for_replies(1)[0]["response"] == 3


def test_cancel_reaches_only_this_connections_commands() -> None:
    handler, executor, _ = dispatcher()
    mine, theirs = RecordingSink(), RecordingSink()
    handler.handle(message("names", id="n"), mine)
    handler.handle(message("cancel", "n", id="c1"), theirs)
    handler.handle(message("cancel", "n", id="c2"), mine)
    assert orjson.loads(theirs.replies[0])["response"] is False
    cancelled, answered = (orjson.loads(reply) for reply in mine.replies)
    assert cancelled["id"] == "n" and cancelled["exception"]["type"] == "CancelledError"
    assert answered["response"] is True
    executor.stop_when_idle()
    executor.run_forever()
    assert len(mine.replies) == 2, "the cancelled command never ran"


def test_configure_sets_this_connections_options_or_says_what_is_wrong() -> None:
    handler, _, _ = dispatcher()
    sink = RecordingSink()
    handler.handle(message("configure", kwargs={"pushes": "immediate"}), sink)
    handler.handle(message("configure", kwargs={"pushes": "never"}), sink)
    handler.handle(message("configure", kwargs={"colour": "blue"}), sink)
    handler.handle(message("configure"), sink)
    done, bad_value, bad_name, current = (orjson.loads(reply) for reply in sink.replies)
    assert done["response"] == {"pushes": "immediate"} and sink.immediate_pushes
    assert bad_value["exception"]["message"] == (
        "configure: pushes must be one of 'after-reply', 'immediate', got 'never'"
    )
    assert bad_name["exception"]["type"] == "InvalidArguments"
    assert current["response"] == {"pushes": "immediate"}


def test_shutdown_replies_before_it_asks_the_runtime_to_stop() -> None:
    handler, _, stops = dispatcher()
    sink = RecordingSink()
    handler.handle(message("shutdown", id="s"), sink)
    assert orjson.loads(sink.replies[0])["response"] is True
    assert stops == ["stop"]


def test_bad_input_gets_one_error_reply_each_and_the_connection_goes_on() -> None:
    liaison = InProcessLiaison()
    replies = liaison.exchange(
        "{", "[]", message("eval", id=1), message("store", id=2), message("ping", 1, id=3),
        message("ping", id=4),
    )  # fmt: skip
    kinds = [reply.get("exception", {}).get("type") for reply in replies]
    assert kinds == ["JSONDecodeError", "InvalidMessage", "UnknownCommand", "InvalidArguments",
                     "InvalidArguments", None]  # fmt: skip
    assert replies[-1]["response"] == "pong"


def test_cancel_of_an_id_no_message_can_carry_is_false_and_the_connection_goes_on() -> None:
    handler, executor, _ = dispatcher()
    sink = RecordingSink()
    handler.handle(message("names", id=1), sink)
    for i, bad_id in enumerate(([1], {"a": 1}, True)):
        handler.handle(message("cancel", bad_id, id=f"c{i}"), sink)
    replies = [orjson.loads(reply) for reply in sink.replies]
    assert [reply["response"] for reply in replies] == [False, False, False]
    executor.stop_when_idle()
    executor.run_forever()
    assert sink.wait_for_replies(4)[3]["response"] == ["companion"], "id 1 was not cancelled"
