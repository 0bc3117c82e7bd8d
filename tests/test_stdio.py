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

from conftest import START, STOP, TESTS, StdioClient
from liaison.io_thread import TransportHandlers
from liaison.settings import Settings
from liaison.transports.inbox import LoopInbox
from liaison.transports.outbox import ConnectionState
from liaison.transports.stdio import StdioConnection, StdioTransport


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


@pytest.mark.parametrize("how", ["eof", "sigterm"])
def test_eof_and_sigterm_stop_the_running_command_and_exit_0(how: str) -> None:
    client = StdioClient()
    client.send(client.command("run", "remote_helpers:announce_then_sleep", 30, id="long"))
    assert client.receive()["tag"] == "progress"  # it runs
    started = time.monotonic()
    if how == "eof":
        assert client.close() == 0
    else:
        client.process.send_signal(signal.SIGTERM)
        assert client.process.wait(10) == 0
    assert time.monotonic() - started < 5
    (reply,) = rest_of_channel(client)
    assert reply["id"] == "long"
    assert reply["exception"]["message"] == "the liaison is shutting down"
    client.kill()
    assert "Traceback" not in client.stderr.decode()


def test_oversized_messages_get_an_error_reply_and_the_next_one_is_read() -> None:
    client = StdioClient("--max-message-size", "1KiB")
    try:
        client.send_raw('{"padding": "' + "x" * 2000 + '"}')
        reply = client.receive()
        assert reply["exception"]["type"] == "InvalidMessage"
        assert "exceeds the limit of 1024 bytes" in reply["exception"]["message"]
        client.send_raw(b"\0" * 5000)  # a binary frame, skipped unread
        assert "binary frame of 5000 bytes" in client.receive()["exception"]["message"]
        assert client.call("ping") == "pong"
    finally:
        assert client.close() == 0


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


def test_user_output_stdout_is_refused_and_stderr_accepted() -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "liaison.stdio", "--user-output", "stdout"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
    )  # fmt: skip
    assert refused.returncode == 2 and refused.stdout == b""
    assert b"stdout carries the messages" in refused.stderr
    client = StdioClient("--user-output", "stderr")
    assert client.call("run", "builtins:print", "printed") is None
    assert client.close() == 0
    assert rest_of_channel(client) == []
    assert "printed" in client.stderr.decode()


def test_closing_the_transport_hands_its_connection_to_on_close() -> None:
    """In-process, over a real pipe pair: EOF asks for the stop; close() then reports the
    connection closed (the dispatcher frees its references there) after writing what
    was queued."""

    async def scenario() -> None:
        peer_in, our_in = os.pipe()  # the liaison reads peer_in
        our_out, peer_out = os.pipe()  # the liaison writes peer_out
        received: list[Any] = []
        closed: list[Any] = []
        stopped = asyncio.Event()
        handlers = TransportHandlers(
            lambda message, sink: received.append((message, sink)),
            closed.append,
            stopped.set,
        )
        transport = StdioTransport(Settings(), handlers, input_fd=peer_in, output_fd=peer_out)
        assert await transport.start() == "stdio"
        transport.start_reading()
        os.write(our_in, b'{"id": 1}\n')
        os.close(our_in)  # EOF
        await asyncio.wait_for(stopped.wait(), 10)
        ((message, sink),) = received
        assert message == '{"id": 1}' and sink is transport.connection
        sink.send(b'{"tag": "response"}')
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
    from websockets.exceptions import ConnectionClosed

    from liaison.client.stdio_channel import StdioChannel

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
            with pytest.raises(ConnectionClosed):
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
            lambda message, sink: received.append(message), lambda sink: None, stopped.set
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
