"""What only the stdio transport does: the channel on stdout, EOF, oversized input.

Everything else (commands, bad input, long-running work, pushes, binary frames) runs over
both transports through the ``client`` fixture (conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import orjson
import pytest

from conftest import START, STOP, TESTS, InProcessStdioClient, StdioClient
from inprocess import InProcessServer
from liaison.server.settings import Settings
from liaison.server.transports.contract import ConnectionState, LoopInbox, TransportHandlers
from liaison.server.transports.stdio.transport import StdioConnection, StdioTransport


def rest_of_channel(client: StdioClient) -> list[Any]:
    """Every message left until EOF; the stop marker must be the last line."""
    lines = []
    while (line := client.lines.get(timeout=10)) is not None:
        lines.append(line)
    assert lines and lines[-1] == STOP + "stdio", (lines[-3:], client.stderr)
    return [orjson.loads(line) for line in lines[:-1]]


def test_user_output_goes_to_stderr_and_never_into_the_channel() -> None:
    client = StdioClient()
    assert client.call("run", "builtins:print", "from print") is None
    assert client.call("run", "os:system", "echo from C-level code") == 0
    client.send(client.command("run", "builtins:print", "{not a message}", concurrent=True))
    assert client.receive()["response"] is None
    assert client.close() == 0
    assert rest_of_channel(client) == []  # the reader checked every line was a message
    stderr = client.stderr.decode()
    assert "from print" in stderr and "from C-level code" in stderr
    assert "{not a message}" in stderr


def test_sigterm_stops_the_running_command_and_exits_0() -> None:
    client = StdioClient()
    client.send(client.command("run", "remote_helpers:announce_then_sleep", 30, id="long"))
    assert client.receive()["tag"] == "progress"  # it runs
    started = time.monotonic()
    client.process.send_signal(signal.SIGTERM)
    assert client.process.wait(10) == 0
    assert time.monotonic() - started < 5
    (reply,) = rest_of_channel(client)
    assert reply["id"] == "long"
    assert reply["exception"]["message"] == "the liaison is shutting down"
    client.kill()
    assert "Traceback" not in client.stderr.decode()


@pytest.mark.slow
def test_a_command_that_ignores_the_stop_still_gets_its_reply_before_the_marker() -> None:
    client = StdioClient()
    client.send(client.command("run", "remote_helpers:stubborn_sleep", 60, id="stubborn"))
    assert client.call("ping") == "pong"
    client.process.send_signal(signal.SIGTERM)
    assert client.process.wait(10) == 0
    (reply,) = rest_of_channel(client)
    assert reply["id"] == "stubborn"
    assert reply["exception"]["message"] == "the liaison is shutting down"
    client.kill()


@pytest.mark.slow
def test_a_command_holding_the_gil_cannot_outlast_the_stop() -> None:
    client = StdioClient()
    client.send(client.command("run", "remote_helpers:hold_the_gil", "holding the GIL"))
    client.wait_for_stderr(b"holding the GIL\n")  # user output goes to stderr here
    client.process.send_signal(signal.SIGTERM)
    assert client.process.wait(30) == -signal.SIGKILL
    assert rest_of_channel(client) == []  # the stop marker is the last line all the same
    client.kill()
    assert b"killed the liaison (SIGKILL)" in client.stderr


def test_end_of_input_lets_the_running_command_finish_then_stops(tmp_path: Any) -> None:
    # EOF means "no more commands", not "stop now": a launcher may close stdin as soon as
    # it has written its last command.
    fifo = str(tmp_path / "release")
    os.mkfifo(fifo)
    client = StdioClient("--log-level", "info")
    client.send(client.command("run", "remote_helpers:announce_then_read", fifo, id="long"))
    client.send(client.command("run", "remote_helpers:echo", "queued", id="queued"))
    assert client.receive()["tag"] == "progress"  # it runs, "queued" waits behind it
    assert client.process.stdin is not None
    client.process.stdin.close()
    client.wait_for_stderr(b"stdin was closed")  # the liaison has seen the EOF
    with open(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK), "w") as release:
        release.write("released\n")
    assert client.process.wait(10) == 0
    replies = rest_of_channel(client)
    assert [(r["id"], r.get("response")) for r in replies] == [
        ("long", "released"), ("queued", "queued")]  # fmt: skip
    client.kill()


def test_a_file_of_commands_is_answered_in_full(tmp_path: Any) -> None:
    # The form protocol.md gives: `python -m liaison.stdio < commands.txt > replies.txt`.
    # The file's end arrives at once; every command in it still gets its real answer.
    messages = [
        {"command": {"command": "store", "args": ["x", [1, 2, 3, 4]]}, "id": "store"},
        {"command": {"command": "run", "args": ["statistics:mean", "$x"]}, "id": "mean"},
        {"command": {"command": "run", "args": ["remote_helpers:spin", 0.01]}, "id": "spin"},
        {"command": {"command": "run", "args": ["remote_helpers:echo", 1]}, "id": "conc",
         "concurrent": True},
        {"command": {"command": "ping"}, "id": "ping"},
    ]  # fmt: skip
    lines = [orjson.dumps(message) for message in messages]
    lines.append(b'{"command": {"command": "run", "args": ["os:getpid"]}, "id": "last"}')
    commands, replies = tmp_path / "commands.txt", tmp_path / "replies.txt"
    commands.write_bytes(b"\n".join(lines))  # the last line has no newline, as editors leave it
    with open(commands, "rb") as stdin, open(replies, "wb") as stdout:
        result = subprocess.run(
            [sys.executable, "-m", "liaison.stdio"], stdin=stdin, stdout=stdout,
            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": TESTS}, timeout=60,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    first, *answers, last = replies.read_bytes().decode().splitlines()
    assert (first, last) == (START + "stdio", STOP + "stdio")
    by_id = {reply["id"]: reply for reply in map(orjson.loads, answers)}
    assert sorted(by_id) == sorted(["store", "mean", "spin", "conc", "ping", "last"])
    assert all("response" in reply for reply in by_id.values()), by_id
    assert by_id["mean"]["response"] == 2.5


def test_an_absurd_frame_length_gets_an_error_and_the_next_line_is_read() -> None:
    client = StdioClient()
    try:
        assert client.process.stdin is not None
        client.process.stdin.write(b"#99999999999999999999\n")
        client.process.stdin.flush()
        reply = client.receive()
        assert reply["exception"]["type"] == "InvalidMessage"
        assert "bad binary frame header" in reply["exception"]["message"]
        assert client.call("ping") == "pong"  # not deaf: read on at the next line
    finally:
        assert client.close() == 0


@pytest.mark.in_process
def test_oversized_messages_get_an_error_reply_and_the_next_one_is_read() -> None:
    server = InProcessServer.start("stdio", "--max-message-size", "1KiB")
    client = InProcessStdioClient(server)
    try:
        client.send_raw('{"padding": "' + "x" * 2000 + '"}')
        reply = client.receive()
        assert reply["exception"]["type"] == "InvalidMessage"
        assert "exceeds the limit of 1024 bytes" in reply["exception"]["message"]
        client.send_raw(b"\0" * 5000)  # a binary frame, skipped unread
        assert "binary frame of 5000 bytes" in client.receive()["exception"]["message"]
        assert client.call("ping") == "pong"
    finally:
        client.kill()
        server.close()


def test_the_markers_name_stdio_and_no_port_is_opened() -> None:
    client = StdioClient()
    assert client.call("get", "liaison.address") == "stdio"
    assert client.close() == 0
    assert START.startswith("LIAISON:CONNECTED")


class _Reader:
    def __init__(self) -> None:
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def test_reading_pauses_while_max_pending_messages_are_unanswered() -> None:
    async def scenario() -> None:
        lost: list[str] = []
        connection = StdioConnection(LoopInbox(asyncio.get_running_loop()), 2, lost.append)
        reader = connection.reader = _Reader()  # type: ignore[assignment]

        def queue_it(data: Any, sink: Any) -> None:
            pass  # no reply yet: as a queued command

        connection.take("{}", queue_it)
        connection._check_room()
        assert not reader.paused
        connection.take("{}", queue_it)
        connection._check_room()
        assert reader.paused  # 2 unanswered: the peer waits (the pipe holds it back)
        connection.writer = None  # nothing written: replies stay queued
        connection.send(b"{}")
        connection.send(b"{}")
        connection._check_room()
        assert reader.paused  # answered, but still waiting to be written
        for _ in range(4 * 2):
            connection.push(b"{}")
        assert lost == []  # a full outbox holds its producers; it drops nobody at once

    assert Settings().max_pending == 4096
    asyncio.run(scenario())


def test_the_python_client_over_stdio_has_the_same_api() -> None:
    from liaison.client import RemoteError, spawn

    with spawn(transport="stdio", env={"PYTHONPATH": TESTS}) as remote:
        assert remote.url == "stdio"
        assert remote.run("statistics:mean", [1, 2, 3]) == 2
        steps: list[Any] = []
        assert remote.call("run", ["remote_helpers:report_progress", 2], on_progress=steps.append)
        assert [step["step"] for step in steps] == [0, 1]
        pushed: list[Any] = []
        remote.on("alert", pushed.append)
        remote.init("pusher", "remote_helpers:Pusher", "$liaison")
        assert remote.run("pusher.alert", "hello") == "hello"
        assert remote.ping() == "pong"  # pushes precede the next reply
        assert pushed == [{"tag": "alert", "text": "hello"}]
        array = remote.call("run", ["numpy:arange", 3], binary=True)
        assert array.tolist() == [0, 1, 2]
        with pytest.raises(RemoteError) as raised:
            remote.run("builtins:divmod", 1, 0)
        assert raised.value.type == "ZeroDivisionError"
        process = remote.process
    assert process is not None and process.returncode == 0


def test_help_offers_only_the_user_output_it_accepts() -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "liaison.stdio", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert helped.returncode == 0
    assert "--user-output {stderr}" in helped.stdout


def test_user_output_stdout_is_refused_and_stderr_accepted() -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "liaison.stdio", "--user-output", "stdout"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
    )  # fmt: skip
    assert refused.returncode == 2 and refused.stdout == b""
    assert b"stdout" in refused.stderr
    client = StdioClient("--user-output", "stderr")
    assert client.call("run", "builtins:print", "printed") is None
    assert client.close() == 0
    assert rest_of_channel(client) == []
    assert "printed" in client.stderr.decode()


def test_closing_the_transport_hands_its_connection_to_on_close() -> None:
    """In-process, over a real pipe pair: EOF asks for the stop once the message read is
    answered; close() then reports the connection closed (the dispatcher frees its
    references there) after writing what was queued."""

    async def scenario() -> None:
        peer_in, our_in = os.pipe()  # the liaison reads peer_in
        our_out, peer_out = os.pipe()  # the liaison writes peer_out
        received: list[Any] = []
        closed: list[Any] = []
        stopped, got = asyncio.Event(), asyncio.Event()

        def on_message(message: Any, sink: Any) -> None:
            received.append((message, sink))
            got.set()

        handlers = TransportHandlers(on_message, closed.append, stopped.set)
        transport = StdioTransport(Settings(), handlers, input_fd=peer_in, output_fd=peer_out)
        assert await transport.start() == "stdio"
        transport.start_reading()
        os.write(our_in, b'{"id": 1}\n')
        os.close(our_in)  # EOF
        await asyncio.wait_for(got.wait(), 10)
        ((message, sink),) = received
        assert message == '{"id": 1}' and sink is transport.connection
        assert not stopped.is_set()  # the message awaits its reply
        sink.send(b'{"tag": "response"}')
        await asyncio.wait_for(stopped.wait(), 10)
        assert closed == []
        await transport.close()
        assert closed == [transport.connection]
        assert transport.connection.state is ConnectionState.CLOSED
        assert os.read(our_out, 100) == b'{"tag": "response"}\n'
        for fd in (peer_in, peer_out, our_out):
            os.close(fd)

    asyncio.run(scenario())


def test_a_client_send_blocked_on_a_full_pipe_fails_when_the_child_goes() -> None:
    """In-process, over a real pipe pair: a send waiting for the child to read its stdin
    must end, not wait forever, once that pipe breaks (the child died or was killed)."""
    from liaison.client.stdio_channel import ChannelClosed, StdioChannel

    async def scenario() -> None:
        child_stdin, our_stdin = os.pipe()
        our_stdout, child_stdout = os.pipe()
        os.write(child_stdout, START.encode() + b"stdio\n")
        with (
            open(our_stdin, "wb", buffering=0) as stdin,
            open(our_stdout, "rb", buffering=0) as stdout,
        ):
            channel = await StdioChannel.open(stdin, stdout, 10)
            send = asyncio.ensure_future(channel.send("x" * (4 << 20)))  # far over the pipe's size
            await asyncio.wait({send}, timeout=0.2)  # the pipe is full: it waits
            assert not send.done()
            os.close(child_stdin)  # the child is gone
            with pytest.raises(ChannelClosed):
                await asyncio.wait_for(send, 10)
            await channel.close()
        os.close(child_stdout)

    asyncio.run(scenario())


def test_a_regular_file_as_stdin_is_not_read_before_start_reading(tmp_path: Any) -> None:
    """In-process: `< commands.txt` is read on a thread; started with the transport, it
    read (and the liaison answered) messages before the start marker was out."""

    async def scenario() -> None:
        commands = tmp_path / "commands.txt"
        commands.write_bytes(b'{"id": 1}\n')
        our_out, peer_out = os.pipe()
        received: list[Any] = []
        stopped = asyncio.Event()
        handlers = TransportHandlers(
            lambda message, sink: (received.append(message), sink.send(b"{}")),
            lambda sink: None,
            stopped.set,
        )
        with open(commands, "rb") as file:
            transport = StdioTransport(
                Settings(), handlers, input_fd=file.fileno(), output_fd=peer_out
            )
            await transport.start()
            readers = [t for t in threading.enumerate() if t.name == "liaison-stdin"]
            # No reader thread yet, and none that already read the file and ended.
            assert readers == [] and os.lseek(file.fileno(), 0, os.SEEK_CUR) == 0
            transport.start_reading()
            await asyncio.wait_for(stopped.wait(), 10)  # EOF once the file is read
            assert received == ['{"id": 1}']
            await transport.close()
        for fd in (our_out, peer_out):
            os.close(fd)

    asyncio.run(scenario())


def test_a_channel_that_cannot_be_opened_is_named_in_the_error() -> None:
    unused_fd = 2**20 - 1  # above any descriptor this process has open

    async def scenario() -> None:
        handlers = TransportHandlers(lambda message, sink: None, lambda sink: None, lambda: None)
        transport = StdioTransport(Settings(), handlers, input_fd=unused_fd, output_fd=unused_fd)
        with pytest.raises(OSError) as raised:
            await transport.start()
        # The runtime prints strerror alone: it names the channel, not an address.
        assert raised.value.strerror.startswith("cannot open stdio: "), raised.value

    asyncio.run(scenario())
