"""The real `python -m liaison.websocket` over real sockets: commands, errors, order, clients."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from conftest import LiaisonProcess, RawClient
from liaison.client import Client, ConnectionLost, connect
from liaison.protocol.commands import COMMANDS

A = [0.5982758, 0.67019733, 0.68617796, 0.28764011]
B = [0.41138649, 1.67023998, 1.0420896, 1.49671732]
TTEST = [-2.008309436290938, 0.1217799378120249]


@pytest.fixture
def remote(liaison: LiaisonProcess) -> Iterator[Client]:
    """liaison.client's Client, for tests not about the shape of messages on the wire."""
    with connect(liaison.url) as client:
        yield client


def test_the_seed_ttest(client: RawClient) -> None:
    message = {"command": {"command": "run", "args": ["scipy.stats:ttest_ind", A, B],
                           "kwargs": {"equal_var": False}}, "id": "seed"}  # fmt: skip
    reply = client.ask(message)
    assert reply == {"response": TTEST, "tag": "response", "evt": message, "id": "seed"}


def test_the_command_list_and_the_server_in_the_namespace(remote: Client) -> None:
    # Each command's behaviour: tests/client/test_client.py::test_every_command, same server code.
    assert set(remote.commands()) == set(COMMANDS)
    assert remote.get("liaison").startswith("<Liaison 127.0.0.1:")


def test_references_nest_in_args_and_kwargs(remote: Client) -> None:
    remote.store("v", {"a": [1, 2]})
    assert remote.run("remote_helpers:echo", {"x": ["$v.a", "$v"]}) == {
        "x": [[1, 2], {"a": [1, 2]}]
    }
    assert remote.run("builtins:dict", x="$v.a.0") == {"x": 1}


def test_references_spelled_as_json_escapes_resolve_in_text_and_binary_frames(
    client: RawClient,
) -> None:
    client.call("store", "v", [1, 2])
    args = '{"command": {"command": "run", "args": ["remote_helpers:echo", [["\\u0024v.1"]]]}'
    kwargs = (
        '{"command": {"command": "run", "args": ["builtins:dict"], "kwargs": {"k": ["\\u0024v"]}}'
    )
    client.send_raw(args + ', "id": "text"}')
    client.send_raw((args + ', "id": "bytes"}').encode())  # JSON in a binary frame, as 1.0 read it
    client.send_raw(kwargs + ', "id": "kwargs"}')
    for id, response in [("text", [[2]]), ("bytes", [[2]]), ("kwargs", {"k": [[1, 2]]})]:
        reply = client.receive()
        assert (reply["id"], reply["response"]) == (id, response), reply


def test_a_function_gets_the_messages_own_arrays_as_in_1_0(client: RawClient) -> None:
    message = client.command("run", "builtins:list.append", [1], 2)
    reply = client.ask(message)
    assert reply["response"] is None
    assert reply["evt"]["command"]["args"] == ["builtins:list.append", [1, 2], 2]  # changed


def test_results_are_json_for_json_parse(client: RawClient) -> None:
    client.call("run", "builtins:exec", "pass")  # the client may run what it likes...
    assert client.call("run", "numpy:arange", 4) == [0, 1, 2, 3]
    assert client.call("run", "numpy:array", [1.5, "nan"], kwargs={"dtype": "float64"}) == [
        1.5,
        None,
    ]
    assert client.call("run", "remote_helpers:count", 3) == [0, 1, 2]
    assert client.call("get", "json:dumps") == "python:///json:dumps"


def error_of(client: RawClient, message: Any) -> dict[str, Any]:
    reply = client.ask(message)
    assert reply["tag"] == "error" and "response" not in reply, reply
    assert isinstance(reply["error"], list) and reply["error"]
    return reply


@pytest.mark.parametrize(
    ("message", "type_", "text"),
    [
        ("{oops", "JSONDecodeError", ""),
        ("[]", "InvalidMessage", "must be a JSON object"),
        ('{"id": "i"}', "InvalidMessage", "no 'command' field"),
        ('{"command": {"command": "run", "args": "x"}, "id": "i"}', "InvalidMessage",
         "command.args must be an array, got string"),
        ('{"command": {"command": "eval", "args": ["1"]}, "id": "i"}', "UnknownCommand",
         "'eval'; valid: cancel, commands, configure, describe, exists, get, init, names"),
        ('{"command": {"command": "store", "args": ["x"]}, "id": "i"}', "InvalidArguments", ""),
        ('{"command": {"command": "ping", "args": [1]}, "id": "i"}', "InvalidArguments", ""),
        ('{"command": {"command": "run", "args": ["no_such_module_zz:f"]}, "id": "i"}',
         "ModuleNotFoundError", "no_such_module_zz"),
        ('{"command": {"command": "run", "args": ["operator:truediv", 1, 0]}, "id": "i"}',
         "ZeroDivisionError", "division by zero"),
        ('{"command": {"command": "run", "args": ["sys:exit", 3]}, "id": "i"}', "SystemExit", "3"),
        ('{"command": {"command": "run", "args": ["remote_helpers:echo"]}, "id": "i"}',
         "TypeError", "missing 1 required positional argument"),
        ('{"command": {"command": "get", "args": ["companion..namespace"]}, "id": "i"}',
         "InvalidTarget", "empty name"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_error_reply(
    client: RawClient, message: str, type_: str, text: str
) -> None:
    reply = error_of(client, message)
    assert reply["exception"]["type"] == type_
    assert text in reply["exception"]["message"]
    if '"id": "i"' in message:
        assert reply["id"] == "i"
    else:
        assert reply["id"] is None and reply["evt"] is None if message != "[]" else True
    assert client.call("ping") == "pong"  # and the connection is still usable


def test_keyboard_interrupt_in_user_code_is_an_error_reply(fresh_liaison: LiaisonProcess) -> None:
    # A process of its own: raised in the test process's main thread, the interrupt left
    # pytest exiting with status 130 after a passing run (hypothesis loaded before it).
    client = RawClient(fresh_liaison.url)
    reply = error_of(client, client.command("run", "builtins:exec", "raise KeyboardInterrupt"))
    assert reply["exception"]["type"] == "KeyboardInterrupt"
    assert client.call("ping") == "pong"


def test_binary_frames_are_answered_not_dropped(client: RawClient) -> None:
    client.send_raw(b'{"command": {"command": "ping"}, "id": "b"}')  # JSON, as 1.0 accepted
    assert client.receive()["response"] == "pong"
    client.send_raw(b"\xff\x00")  # neither JSON nor a frame in the binary layout
    assert client.receive()["exception"]["type"] == "InvalidMessage"


def test_pipelined_store_then_run_keeps_order(client: RawClient) -> None:
    messages = [client.command("store", "p", i) for i in range(50)]
    messages += [client.command("run", "builtins:abs", "$p")]
    for message in messages:
        client.send(message)
    replies = [client.receive() for _ in messages]
    assert [r["id"] for r in replies] == [m["id"] for m in messages]
    assert replies[-1]["response"] == 49


def test_a_burst_of_pings_and_commands_is_answered_whole_and_in_order(
    client: RawClient,
) -> None:
    # Many messages per read: the liaison corks its replies while it handles them.
    messages = [
        client.command("ping") if i % 3 else client.command("run", "builtins:abs", -i)
        for i in range(3000)
    ]
    for message in messages:
        client.send(message)
    replies = [client.receive() for _ in messages]
    pings = [r["id"] for r in replies if r["response"] == "pong"]
    assert pings == [m["id"] for m in messages if m["command"]["command"] == "ping"]
    runs = [r["response"] for r in replies if r["response"] != "pong"]
    assert runs == [i for i in range(3000) if not i % 3]
    assert client.call("ping") == "pong"  # and a lone message after the burst


def test_the_garbage_collector_runs_once_started(fresh_liaison: LiaisonProcess) -> None:
    # Off during start-up (python -m liaison.websocket), on again once listening, with
    # the start-up objects frozen out of its way: a process's start, so a process.
    with connect(fresh_liaison.url) as remote:
        assert remote.run("gc:isenabled") is True
        assert remote.run("gc:get_freeze_count") > 1000


def test_a_finished_commands_arguments_are_released(remote: Client) -> None:
    # A large argument must not stay in memory until the next command comes.
    marker = f"argument-{uuid.uuid4()}"
    assert remote.run("builtins:len", [marker, marker]) == 2
    # concurrent: probe from a worker thread, so the main thread stays idle meanwhile
    assert remote.call("run", ["remote_helpers:pairs_of", marker], concurrent=True) == 0


def test_start_up_skips_importlib_metadata_yet_it_works(fresh_liaison: LiaisonProcess) -> None:
    # websockets imports it for its unreleased builds only; liaison defers it (cli.py).
    with connect(fresh_liaison.url) as remote:
        assert remote.run("remote_helpers:is_imported", "importlib.metadata") is False
        version = remote.run("importlib.metadata:version", "websockets")
        assert version == websockets.__version__
        assert remote.run("remote_helpers:is_imported", "importlib.metadata") is True


def test_commands_run_on_the_main_thread(remote: Client) -> None:
    assert remote.run("remote_helpers:thread_name") == "MainThread"


def start_blocking_call(client: Client) -> tuple[threading.Thread, list[Any]]:
    """Call announce_then_block on a thread; return once it holds the liaison's queue.

    The list receives the call's result, or the exception it raised.
    """
    blocked = threading.Event()
    outcome: list[Any] = []

    def call() -> None:
        try:
            outcome.append(client.call("run", ["remote_helpers:announce_then_block"],
                                       on_progress=lambda _: blocked.set()))  # fmt: skip
        except Exception as error:
            outcome.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    assert blocked.wait(10)
    return thread, outcome


def test_ping_is_answered_while_a_command_runs(liaison: LiaisonProcess) -> None:
    with connect(liaison.url) as busy, connect(liaison.url) as other:
        thread, outcome = start_blocking_call(busy)
        assert busy.ping() == "pong"  # the same client...
        assert other.ping() == "pong"  # ...and another one
        assert other.call("run", ["remote_helpers:release"], concurrent=True) is True
        thread.join(10)
        assert outcome == [True]


def test_eight_clients_at_once(liaison: LiaisonProcess) -> None:
    results: dict[int, list[Any]] = {}

    def work(n: int) -> None:
        with connect(liaison.url) as remote:
            results[n] = [remote.run("builtins:pow", n, i) for i in range(20)]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {n: [n**i for i in range(20)] for n in range(8)}


def test_a_client_leaving_mid_command_affects_no_other(liaison: LiaisonProcess) -> None:
    with connect(liaison.url) as stayer:
        with connect(liaison.url) as leaver:
            thread, outcome = start_blocking_call(leaver)
        thread.join(10)
        assert len(outcome) == 1 and isinstance(outcome[0], ConnectionLost)
        assert stayer.call("run", ["remote_helpers:release"], concurrent=True) is True
        assert stayer.run("builtins:len", "abc") == 3


def test_pushed_messages_reach_every_client(liaison: LiaisonProcess) -> None:
    with connect(liaison.url) as first, connect(liaison.url) as second:
        got_first: list[Any] = []
        got_second: list[Any] = []
        first.on("alert", got_first.append)
        second.on("alert", got_second.append)
        assert first.init("pusher", "remote_helpers:Pusher", liaison="$liaison") == "pusher"
        assert first.run("pusher.alert", "hello") == "hello"
        assert got_first == [{"tag": "alert", "text": "hello"}]
        assert second.ping() == "pong"  # sent after the alert, so answered after it too
        assert got_second == [{"tag": "alert", "text": "hello"}]


def test_multi_megabyte_payloads(client: RawClient) -> None:
    payload = "x" * (8 * 2**20)
    reply = client.ask(client.command("run", "remote_helpers:echo", payload, echo=False))
    assert reply["response"] == payload
    assert reply["evt"]["command"] == {"command": "run"}
