"""The real `python -m liaison.websocket` over real sockets: commands, errors, order, clients."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from conftest import LiaisonProcess, RawClient

A = [0.5982758, 0.67019733, 0.68617796, 0.28764011]
B = [0.41138649, 1.67023998, 1.0420896, 1.49671732]
TTEST = [-2.008309436290938, 0.1217799378120249]


def test_the_seed_ttest(client: RawClient) -> None:
    message = {"command": {"command": "run", "args": ["scipy.stats:ttest_ind", A, B],
                           "kwargs": {"equal_var": False}}, "id": "seed"}  # fmt: skip
    reply = client.ask(message)
    assert reply == {"response": TTEST, "tag": "response", "evt": message, "id": "seed"}


def test_every_command(client: RawClient) -> None:
    assert client.call("ping") == "pong"
    assert client.call("store", "numbers", [3, 1, 2]) == "numbers"
    assert client.call("get", "numbers") == [3, 1, 2]
    assert client.call("get", "numbers.1") == 1
    assert client.call("exists", "numbers") is True
    assert client.call("exists", "nothing_here_zz") is False
    assert client.call("run", "builtins:sorted", "$numbers") == [1, 2, 3]
    assert client.call("init", "counter", "collections:Counter", "$numbers") == "counter"
    assert client.call("run", "counter.most_common", 1) == [[3, 1]]
    assert client.call("register", "dumps", "json:dumps") == "dumps"
    assert client.call("run", "dumps", {"a": "$numbers"}) == '{"a": [3, 1, 2]}'
    assert client.call("try", "builtins:int", "7") == {"success": True, "result": 7}
    failed = client.call("try", "builtins:int", "x")
    assert failed["success"] is False and "ValueError" in failed["result"]
    assert {"companion", "liaison", "numbers", "counter", "dumps"} <= set(client.call("names"))
    assert client.call("describe", "json:dumps")["parameters"][0]["name"] == "obj"
    commands = client.call("commands")
    assert {"get", "exists", "init", "run", "try", "register", "store", "ping", "cancel",
            "shutdown", "names", "describe", "commands"} == set(commands)  # fmt: skip
    assert client.call("get", "liaison").startswith("<Liaison ws://127.0.0.1:")


def test_references_nest_in_args_and_kwargs(client: RawClient) -> None:
    client.call("store", "v", {"a": [1, 2]})
    assert client.call("run", "remote_helpers:echo", {"x": ["$v.a", "$v"]}) == {
        "x": [[1, 2], {"a": [1, 2]}]
    }
    assert client.call("run", "builtins:dict", kwargs={"x": "$v.a.0"}) == {"x": 1}


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
         "'eval'; valid: cancel, commands, describe, exists, get, init, names, ping"),
        ('{"command": {"command": "store", "args": ["x"]}, "id": "i"}', "InvalidArguments", ""),
        ('{"command": {"command": "ping", "args": [1]}, "id": "i"}', "InvalidArguments", ""),
        ('{"command": {"command": "run", "args": ["no_such_module_zz:f"]}, "id": "i"}',
         "ModuleNotFoundError", "no_such_module_zz"),
        ('{"command": {"command": "run", "args": ["operator:truediv", 1, 0]}, "id": "i"}',
         "ZeroDivisionError", "division by zero"),
        ('{"command": {"command": "run", "args": ["sys:exit", 3]}, "id": "i"}', "SystemExit", "3"),
        ('{"command": {"command": "run", "args": ["remote_helpers:echo"]}, "id": "i"}',
         "TypeError", "missing 1 required positional argument"),
        ('{"command": {"command": "get", "args": ["companion.__dict__"]}, "id": "i"}',
         "InvalidTarget", "refused"),
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


def test_keyboard_interrupt_in_user_code_is_an_error_reply(client: RawClient) -> None:
    reply = error_of(client, client.command("run", "builtins:exec", "raise KeyboardInterrupt"))
    assert reply["exception"]["type"] == "KeyboardInterrupt"
    assert client.call("ping") == "pong"


def test_binary_frames_are_answered_not_dropped(client: RawClient) -> None:
    client.ws.send(b'{"command": {"command": "ping"}, "id": "b"}')
    assert client.receive()["response"] == "pong"
    client.ws.send(b"\xff\x00")
    assert client.receive()["exception"]["type"] == "JSONDecodeError"


def test_pipelined_store_then_run_keeps_order(client: RawClient) -> None:
    messages = [client.command("store", "p", i) for i in range(50)]
    messages += [client.command("run", "builtins:abs", "$p")]
    for message in messages:
        client.send(message)
    replies = [client.receive() for _ in messages]
    assert [r["id"] for r in replies] == [m["id"] for m in messages]
    assert replies[-1]["response"] == 49


def test_commands_run_on_the_main_thread(client: RawClient) -> None:
    assert client.call("run", "remote_helpers:thread_name") == "MainThread"


def test_ping_is_answered_while_a_command_runs(liaison: LiaisonProcess) -> None:
    busy, other = RawClient(liaison.url), RawClient(liaison.url)
    try:
        busy.send(busy.command("run", "remote_helpers:block_until_released", id="long"))
        assert busy.call("ping") == "pong"  # the same client...
        assert other.call("ping") == "pong"  # ...and another one
        other.send(other.command("run", "remote_helpers:release", concurrent=True))
        assert other.receive()["response"] is True
        assert busy.receive()["response"] is True
    finally:
        busy.close()
        other.close()


def test_eight_clients_at_once(liaison: LiaisonProcess) -> None:
    results: dict[int, list[Any]] = {}

    def work(n: int) -> None:
        raw = RawClient(liaison.url)
        try:
            results[n] = [raw.call("run", "builtins:pow", n, i) for i in range(20)]
        finally:
            raw.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {n: [n**i for i in range(20)] for n in range(8)}


def test_a_client_leaving_mid_command_affects_no_other(liaison: LiaisonProcess) -> None:
    leaver, stayer = RawClient(liaison.url), RawClient(liaison.url)
    try:
        leaver.send(leaver.command("run", "remote_helpers:block_until_released"))
        leaver.close()
        stayer.send(stayer.command("run", "remote_helpers:release", concurrent=True))
        assert stayer.receive()["response"] is True
        assert stayer.call("run", "builtins:len", "abc") == 3
    finally:
        stayer.close()


def test_pushed_messages_reach_every_client(liaison: LiaisonProcess) -> None:
    first, second = RawClient(liaison.url), RawClient(liaison.url)
    try:
        assert first.call(
            "init", "pusher", "remote_helpers:Pusher", kwargs={"liaison": "$liaison"}
        )
        first.send(first.command("run", "pusher.alert", "hello"))
        got_first = [first.receive(), first.receive()]
        assert {"tag": "alert", "text": "hello"} in got_first
        assert second.receive() == {"tag": "alert", "text": "hello"}
    finally:
        first.close()
        second.close()


def test_multi_megabyte_payloads(client: RawClient) -> None:
    payload = "x" * (8 * 2**20)
    reply = client.ask(client.command("run", "remote_helpers:echo", payload, echo=False))
    assert reply["response"] == payload
    assert reply["evt"]["command"] == {"command": "run"}
