"""liaison.client (Client, AsyncClient, spawn) against the real liaison over real sockets."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import scipy.stats

from conftest import TESTS, LiaisonProcess
from liaison.client import (
    AsyncClient,
    CallCancelled,
    CallTimeout,
    Client,
    ConnectFailed,
    ConnectionLost,
    RemoteError,
    SpawnError,
    connect,
    connect_async,
    spawn,
    spawn_async,
)
from liaison.protocol.errors import LiaisonError
from liaison.protocol.reads import READ_SIZE


@pytest.fixture
def remote(liaison: LiaisonProcess) -> Iterator[Client]:
    with connect(liaison.url) as client:
        yield client


def gone(pid: int) -> bool:
    """True when no process (not even a zombie) has this pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- commands -----------------------------------------------------------------------------


def test_a_t_test_matches_scipy_run_here(remote: Client) -> None:
    a, b = [1, 2, 3, 4, 5], [2, 4, 6, 8, 10]
    expected = scipy.stats.ttest_ind(a, b, equal_var=False)
    result = remote.run("scipy.stats:ttest_ind", a, b, equal_var=False)
    assert result == pytest.approx([expected.statistic, expected.pvalue])


def test_every_command(remote: Client) -> None:
    assert remote.ping() == "pong"
    assert remote.store("numbers", [3, 1, 2]) == "numbers"
    assert remote.get("numbers") == [3, 1, 2]
    assert remote.get("numbers.1") == 1
    assert remote.exists("numbers") is True
    assert remote.exists("nothing_here_zz") is False
    assert remote.run("builtins:sorted", "$numbers", reverse=True) == [3, 2, 1]
    assert remote.init("counter", "collections:Counter", "$numbers") == "counter"
    assert remote.run("counter.most_common", 1) == [[3, 1]]
    assert remote.register("dumps", "json:dumps") == "dumps"
    assert remote.run("dumps", {"a": "$numbers"}) == '{"a": [3, 1, 2]}'
    assert remote.attempt("builtins:int", "7") == {"success": True, "result": 7}
    failed = remote.attempt("builtins:int", "x")
    assert failed["success"] is False and "ValueError" in failed["result"]
    assert {"companion", "liaison", "numbers", "counter", "dumps"} <= set(remote.names())
    assert remote.describe("json:dumps")["parameters"][0]["name"] == "obj"
    assert {"run", "try", "cancel", "shutdown"} <= set(remote.commands())
    assert remote.cancel("no-such-call") is False
    assert remote.call("run", ["builtins:divmod", 7, 2]) == [3, 1]


def test_keyword_arguments_never_collide_with_options(remote: Client) -> None:
    # Names the client uses itself reach the remote function untouched.
    assert remote.run("builtins:dict", target=1, timeout=2, id=3, binary=4) == {
        "target": 1, "timeout": 2, "id": 3, "binary": 4,
    }  # fmt: skip
    assert remote.init("made", "builtins:dict", target="t", concurrent="c") == "made"
    assert remote.get("made") == {"target": "t", "concurrent": "c"}
    assert remote.attempt("builtins:dict", target=1) == {"success": True, "result": {"target": 1}}


# -- errors -------------------------------------------------------------------------------


def test_an_error_reply_raises_remote_error(remote: Client) -> None:
    with pytest.raises(RemoteError) as caught:
        remote.run("operator:truediv", 1, 0)
    error = caught.value
    assert isinstance(error, LiaisonError)
    assert (error.type, error.message) == ("ZeroDivisionError", "division by zero")
    assert error.traceback == "ZeroDivisionError: division by zero\n"  # raised in C: no frames
    assert error.reply["tag"] == "error" and error.reply["exception"]["type"] == error.type
    assert str(error) == "ZeroDivisionError: division by zero"
    assert "args" not in error.reply["evt"]["command"]  # echo is off by default, as in JS
    with pytest.raises(RemoteError) as caught:
        remote.call("run", ["operator:truediv", 1, 0], echo=True)
    assert caught.value.reply["evt"]["command"]["args"] == ["operator:truediv", 1, 0]

    with pytest.raises(RemoteError) as caught:
        remote.run("json:loads", "[1,")
    error = caught.value
    assert error.type == "JSONDecodeError" and error.message.startswith("Expecting value")
    assert error.traceback.startswith("Traceback (most recent call last):\n")
    assert "json" in error.traceback and "in loads" in error.traceback
    assert error.traceback.endswith(f"JSONDecodeError: {error.message}\n")

    with pytest.raises(RemoteError) as caught:
        remote.get("companion.no_such_attribute_zz")
    assert caught.value.type == "NameNotFound"
    assert remote.ping() == "pong"  # the connection outlives errors


# -- timeouts and cancellation ------------------------------------------------------------


def test_the_liaison_times_a_call_out(remote: Client) -> None:
    started = time.monotonic()
    with pytest.raises(CallTimeout) as caught:
        remote.call("run", ["time:sleep", 30], timeout=0.2)
    assert time.monotonic() - started < 5
    assert caught.value.type == "TimeoutError" and caught.value.reply is not None
    assert remote.run("builtins:len", "abc") == 3  # the queue moved on


def test_a_call_past_its_deadline_sends_cancel(remote: Client) -> None:
    pushed: list[Any] = []
    remote.on("*", pushed.append)
    with pytest.raises(CallTimeout) as caught:
        # The command ignores the liaison's own timeout; the client gives up after its margin.
        remote.call("run", ["remote_helpers:swallow_interrupts", 2], timeout=0.2)
    assert caught.value.type == "TimeoutError" and caught.value.reply is None
    # Ordered after the swallower: it returns once the client's cancel reached it.
    assert remote.run("remote_helpers:interrupts_swallowed") == ["TimedOut", "Cancelled"]
    assert pushed == []  # the abandoned call's late reply is dropped, not pushed


def test_cancel_a_call_from_another_thread(remote: Client) -> None:
    running = threading.Event()
    outcome: list[BaseException] = []

    def sleeper() -> None:
        try:
            remote.call("run", ["remote_helpers:announce_then_sleep", 30], id="sleeper",
                        on_progress=lambda _: running.set())  # fmt: skip
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=sleeper)
    thread.start()
    assert running.wait(10)
    started = time.monotonic()
    assert remote.cancel("sleeper") is True
    thread.join(10)
    assert time.monotonic() - started < 5
    assert len(outcome) == 1 and isinstance(outcome[0], CallCancelled)
    assert outcome[0].type == "CancelledError"


def test_cancelling_the_awaiting_task_cancels_the_call(liaison: LiaisonProcess) -> None:
    async def main() -> None:
        async with connect_async(liaison.url) as client:
            running = asyncio.Event()
            task = asyncio.create_task(
                client.call("run", ["remote_helpers:announce_then_sleep", 30],
                            on_progress=lambda _: running.set())
            )  # fmt: skip
            await asyncio.wait_for(running.wait(), 10)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # Were the sleep not cancelled, this ordered call would wait for it.
            assert await client.call("run", ["builtins:len", "ab"], timeout=5) == 2

    asyncio.run(main())


# -- progress, partial results, pushed messages -------------------------------------------


def test_progress_and_partial_callbacks(remote: Client) -> None:
    progress: list[Any] = []
    assert remote.call("run", ["remote_helpers:report_progress", 3], on_progress=progress.append)
    assert progress == [{"step": i, "of": 3} for i in range(3)]

    items: list[Any] = []
    assert remote.call("run", ["remote_helpers:count", 4], on_partial=items.append) == 4
    assert items == [0, 1, 2, 3]
    items.clear()
    assert remote.call("run", ["remote_helpers:async_count", 3], on_partial=items.append) == 3
    assert items == [0, 1, 2]
    assert remote.run("remote_helpers:count", 3) == [0, 1, 2]  # without a callback: a list


def test_progress_without_a_callback_goes_to_handlers(remote: Client) -> None:
    progress: list[Any] = []
    remote.on("progress", progress.append)
    assert remote.run("remote_helpers:report_progress", 2) == "done"
    assert [message["progress"]["step"] for message in progress] == [0, 1]


def test_a_failing_callback_fails_its_call(remote: Client) -> None:
    def refuse(item: Any) -> None:
        raise ValueError(f"refused {item}")

    with pytest.raises(ValueError, match="refused 0"):
        remote.call("run", ["remote_helpers:count", 3], on_partial=refuse)
    assert remote.ping() == "pong"


def test_pushed_messages_reach_handlers(liaison: LiaisonProcess, remote: Client) -> None:
    alerts: list[Any] = []
    everything: list[Any] = []
    remote.on("alert", alerts.append)
    remote.on("*", everything.append)
    with connect(liaison.url) as other:
        other_alerts: list[Any] = []
        other.on("alert", other_alerts.append)
        remote.init("pusher", "remote_helpers:Pusher", "$liaison")
        # A pushed message leaves before the reply of the command that pushed it.
        assert remote.run("pusher.alert", "hello") == "hello"
        assert alerts == everything == [{"tag": "alert", "text": "hello"}]
        assert remote.run("pusher.tell_sender", "psst") == "psst"
        assert everything[-1] == {"tag": "private", "text": "psst"}
        remote.off("alert")
        remote.run("pusher.alert", "again")
        assert alerts == [{"tag": "alert", "text": "hello"}]
        assert everything[-1] == {"tag": "alert", "text": "again"}
        assert other.ping() == "pong"  # the other client reads its alerts first
    assert other_alerts == [{"tag": "alert", "text": "hello"}, {"tag": "alert", "text": "again"}]


# -- concurrency --------------------------------------------------------------------------


def test_many_calls_in_flight_from_the_async_client(liaison: LiaisonProcess) -> None:
    async def main() -> None:
        async with connect_async(liaison.url) as client:
            assert isinstance(client, AsyncClient)
            blocked = asyncio.Event()
            blocker = asyncio.create_task(
                client.call("run", ["remote_helpers:announce_then_block"],
                            on_progress=lambda _: blocked.set())
            )  # fmt: skip
            queued = [asyncio.create_task(client.run("builtins:pow", 2, i)) for i in range(20)]
            await asyncio.wait_for(blocked.wait(), 10)
            # Control commands and concurrent calls are answered while the queue is held.
            assert await client.ping() == "pong"
            assert not any(task.done() for task in queued)
            assert await client.call("run", ["remote_helpers:release"], concurrent=True) is True
            assert await blocker is True
            assert await asyncio.gather(*queued) == [2**i for i in range(20)]

    asyncio.run(main())


def test_the_sync_client_from_several_threads(remote: Client) -> None:
    blocked = threading.Event()
    results: dict[int, Any] = {}

    def block() -> None:
        results[-1] = remote.call("run", ["remote_helpers:announce_then_block"],
                                  on_progress=lambda _: blocked.set())  # fmt: skip

    def work(n: int) -> None:
        results[n] = [remote.run("builtins:pow", n, i) for i in range(10)]

    blocker = threading.Thread(target=block)
    blocker.start()
    assert blocked.wait(10)
    assert remote.ping() == "pong"  # while another thread's call holds the queue
    workers = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    assert remote.call("run", ["remote_helpers:release"], concurrent=True) is True
    for thread in [blocker, *workers]:
        thread.join(30)
    assert results == {-1: True, **{n: [n**i for i in range(10)] for n in range(4)}}


def test_a_blocking_call_from_a_callback_is_refused(remote: Client) -> None:
    refused: list[BaseException] = []

    def call_back(_: Any) -> None:
        try:
            remote.ping()
        except RuntimeError as error:
            refused.append(error)

    remote.call("run", ["remote_helpers:report_progress", 1], on_progress=call_back)
    assert len(refused) == 1 and "wait for itself" in str(refused[0])


# -- connections --------------------------------------------------------------------------


def test_a_lost_connection_fails_every_pending_call(fresh_liaison: LiaisonProcess) -> None:
    async def main() -> None:
        client = await connect_async(fresh_liaison.url)
        blocked = asyncio.Event()
        calls = [
            asyncio.create_task(client.call("run", ["remote_helpers:announce_then_block"],
                                            on_progress=lambda _: blocked.set())),
            asyncio.create_task(client.run("builtins:len", "queued")),
        ]  # fmt: skip
        await asyncio.wait_for(blocked.wait(), 10)
        fresh_liaison.stop(signal.SIGKILL)  # no reply, no close frame: the socket just ends
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(outcome, ConnectionLost) for outcome in outcomes), outcomes
        assert "was lost" in str(outcomes[0])
        assert isinstance(outcomes[0], ConnectionError)
        assert client.closed
        with pytest.raises(ConnectionLost):
            await client.ping()
        await client.close()

    asyncio.run(main())


def test_a_lost_connection_fails_a_blocking_call(fresh_liaison: LiaisonProcess) -> None:
    with connect(fresh_liaison.url) as client:
        with pytest.raises(ConnectionLost):
            # The callback runs while the command holds the liaison: kill it there.
            client.call("run", ["remote_helpers:announce_then_block"],
                        on_progress=lambda _: fresh_liaison.process.kill())  # fmt: skip
        assert client.closed


def test_closing_fails_pending_calls(liaison: LiaisonProcess) -> None:
    async def main() -> None:
        client = await connect_async(liaison.url)
        blocked = asyncio.Event()
        call = asyncio.create_task(client.call("run", ["remote_helpers:announce_then_block"],
                                               on_progress=lambda _: blocked.set()))  # fmt: skip
        await asyncio.wait_for(blocked.wait(), 10)
        await client.close()
        with pytest.raises(ConnectionLost, match="the client was closed"):
            await call
        await client.close()  # again: nothing happens
        async with connect_async(liaison.url) as other:  # free the shared liaison
            assert await other.call("run", ["remote_helpers:release"], concurrent=True)

    asyncio.run(main())


def test_connect_failures_are_clear() -> None:
    liaison = None
    with spawn(env={"PYTHONPATH": TESTS}) as spawned:
        liaison = spawned.url
        with pytest.raises(ConnectFailed) as caught:
            connect(liaison)
        assert caught.value.status == 401 and "a token is required" in str(caught.value)
        with pytest.raises(ConnectFailed) as caught:
            connect(liaison, token="wrong")
        assert caught.value.status == 403
        with pytest.raises(ConnectFailed) as caught:
            connect(liaison, token=spawned.token, origin="http://evil.test")
        assert caught.value.status == 403
    with pytest.raises(ConnectFailed) as caught:
        connect(liaison)  # nobody listens there any more
    assert caught.value.status is None and isinstance(caught.value, ConnectionError)


# -- spawn --------------------------------------------------------------------------------


def test_spawn_with_a_token_and_no_process_left_behind() -> None:
    with spawn(env={"PYTHONPATH": TESTS}) as client:
        process = client.process
        assert process is not None and client.token
        assert client.run("remote_helpers:echo", [1, "a"]) == [1, "a"]
        with open(f"/proc/{process.pid}/cmdline", "rb") as cmdline:
            assert client.token.encode() not in cmdline.read()  # the token is not in argv
        with connect(client.url, token=client.token) as second:  # a frontend could, too
            assert second.ping() == "pong"
    assert process.returncode == 0  # it shut down when asked
    assert gone(process.pid)  # and was reaped: not even a zombie
    assert client.closed


def test_spawn_keeps_what_commands_print() -> None:
    with spawn(env={"PYTHONPATH": TESTS}) as client:
        assert client.output == ""
        assert client.run("remote_helpers:shout", "hello") == "hello"
        # stdout is a pipe of its own: its bytes may come just after the reply.
        deadline = time.monotonic() + 10
        while "hello\nhello" not in client.output and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.output == "hello\nhello"


def test_spawn_async() -> None:
    async def main() -> int:
        async with spawn_async(args=["--log-level", "warning"]) as client:
            assert client.child is not None
            assert await client.run("math:factorial", 5) == 120
            return client.child.process.pid

    pid = asyncio.run(main())
    assert gone(pid)


@pytest.mark.parametrize("transport", ["websocket", "stdio"])
def test_the_client_reads_in_heap_sized_chunks_and_a_large_reply_arrives_whole(
    transport: str,
) -> None:
    async def main() -> None:
        async with spawn_async(transport=transport) as client:
            channel: Any = client._websocket
            reader = channel.transport if transport == "websocket" else channel._reader
            assert reader.max_size == READ_SIZE
            size = 5 * READ_SIZE + 3
            assert await client.run("operator:mul", "x", size) == "x" * size

    asyncio.run(main())


def test_closing_after_a_shutdown_still_reaps_the_liaison() -> None:
    client = spawn(env={"PYTHONPATH": TESTS})
    process = client.process
    assert process is not None
    assert client.shutdown() is True  # the connection closes: close() cannot ask again
    client.close()
    assert process.poll() is not None and gone(process.pid)


def test_spawn_reports_a_bad_address_with_the_childs_stderr() -> None:
    with pytest.raises(SpawnError) as caught:
        spawn(address="127.0.0.1:99999")
    assert caught.value.returncode == 2
    assert "invalid address" in caught.value.stderr and "invalid address" in str(caught.value)


def test_spawn_reports_a_broken_interpreter(tmp_path: Path) -> None:
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'no liaison in this interpreter' >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(SpawnError) as caught:
        spawn(str(broken))
    assert caught.value.returncode == 3
    assert "no liaison in this interpreter" in caught.value.stderr

    with pytest.raises(SpawnError, match="cannot run"):
        spawn(str(tmp_path / "missing"))


def test_spawn_gives_up_on_a_silent_child(tmp_path: Path) -> None:
    silent = tmp_path / "python"
    silent.write_text("#!/bin/sh\necho 'thinking' >&2\nexec sleep 60\n")
    silent.chmod(0o755)
    with pytest.raises(SpawnError, match=r"did not start within 0\.5 s") as caught:
        spawn(str(silent), timeout=0.5)
    assert "thinking" in caught.value.stderr


# As if the websocket extra were not installed: importing websockets fails.
WITHOUT_WEBSOCKETS = "import sys; sys.modules['websockets'] = None\n"
INSTALL_THE_EXTRA = 'pip install "liaison-backend[websocket]"'


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": TESTS}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


def test_the_client_stands_on_the_wire_alone() -> None:
    # Neither the Companion (liaison.core) nor the server, nor websockets before a
    # WebSocket is opened: the modules a stdio client (or a Pyodide page) can do without.
    result = run_python("import sys, liaison.client; print(*sorted(sys.modules))")
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.split()
    ours = {name for name in loaded if name.split(".")[0] == "liaison"}
    assert {name for name in ours if name.split(".")[1:2] not in (["client"], ["protocol"])} == {
        "liaison",
        "liaison.constants",
    }
    assert [name for name in loaded if name.split(".")[0] == "websockets"] == []


def test_without_websockets_the_stdio_client_works_and_a_websocket_names_the_extra() -> None:
    code = WITHOUT_WEBSOCKETS + (
        "from liaison.client import connect, spawn\n"
        "with spawn(transport='stdio') as client:\n"
        "    print(client.run('builtins:sum', [1, 2]))\n"
        "for opening in (lambda: connect('ws://127.0.0.1:9'), spawn):\n"
        "    try:\n"
        "        opening()\n"
        "    except ImportError as error:\n"
        "        print(error)\n"
    )
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["3", *[f"a WebSocket needs the websockets package: "
                                                 f"{INSTALL_THE_EXTRA}"] * 2]  # fmt: skip


def test_numpy_arrays_and_bytes_travel_raw(remote: Client) -> None:
    import numpy

    result = remote.call("run", ["numpy:arange", 5], {"dtype": "float32"}, binary=True)
    assert isinstance(result, numpy.ndarray) and result.dtype == numpy.float32
    assert result.tolist() == [0, 1, 2, 3, 4]
    assert remote.run("remote_helpers:kind_of", numpy.ones((2, 3))) == {
        "type": "ndarray", "dtype": "float64", "shape": [2, 3], "writeable": True,
    }  # fmt: skip
    assert remote.call("run", ["remote_helpers:echo", b"\x00\x01"], binary=True) == b"\x00\x01"
    items: list[Any] = []
    remote.call("run", ["remote_helpers:arrays", 3], on_partial=items.append, binary=True)
    assert [item.tolist() for item in items] == [[], [0.0], [0.0, 1.0]]
