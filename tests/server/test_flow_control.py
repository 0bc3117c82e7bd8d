"""Flow control (server/transports/contract.py): a client that reads gets every message of a burst,
a command sending to a slow client waits for it, a client that reads nothing is dropped
only after ``client_read_timeout``, and queued requests pause reading by their bytes.

Memory itself is measured in bench/ (bench/memory_cases.py), not asserted here.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect

from conftest import RawClient
from liaison.server.settings import Settings
from liaison.server.transports.contract import (
    OUTBOX_HIGH_WATER_BYTES,
    QUEUED_REQUESTS_MAX_BYTES,
    ConnectionState,
    LoopInbox,
    QueuedConnection,
    TransportHandlers,
)
from liaison.server.transports.stdio.transport import StdioTransport
from liaison.server.transports.websocket.settings import WebSocketSettings
from liaison.server.transports.websocket.transport import Connection, WebSocketTransport

BURST = 20_000
MEGABYTE = b'"' + b"x" * (2**20 - 2) + b'"'
# More than the outbox holds, with room for what the kernel's socket buffers take.
PUSHES_PAST_THE_BOUND = 2 * OUTBOX_HIGH_WATER_BYTES // len(MEGABYTE) + 16


def messages_until_reply(client: RawClient, request_id: str) -> list[dict[str, Any]]:
    received = []
    while True:
        message = client.receive(timeout=60)
        received.append(message)
        if message.get("id") == request_id and message.get("tag") in ("response", "error"):
            return received


def test_a_reading_client_gets_all_of_20000_progress_messages_and_the_reply(
    client: RawClient,
) -> None:
    client.send(client.command("run", "remote_helpers:report_progress", BURST, id="p"))
    *progress, reply = messages_until_reply(client, "p")
    assert reply["response"] == "done", reply
    assert [m["progress"]["step"] for m in progress] == list(range(BURST))
    assert client.call("ping") == "pong"


def test_a_reading_client_gets_all_of_a_20000_item_stream_and_the_reply(
    client: RawClient,
) -> None:
    client.send(client.command("run", "remote_helpers:count", BURST, id="s", stream=True))
    *partials, reply = messages_until_reply(client, "s")
    assert reply["response"] == BURST, reply
    assert [m["partial"] for m in partials] == list(range(BURST))


def test_a_reading_client_gets_all_of_20000_immediate_pushes_and_the_reply(
    client: RawClient,
) -> None:
    assert client.call("configure", kwargs={"pushes": "immediate"}) == {"pushes": "immediate"}
    client.call("init", "pusher", "remote_helpers:Pusher", kwargs={"liaison": "$liaison"})
    client.send(client.command("run", "remote_helpers:push_many", "$pusher", BURST, id="n"))
    *pushes, reply = messages_until_reply(client, "n")
    assert reply["response"] == BURST, reply
    assert [m["text"] for m in pushes] == [str(i) for i in range(BURST)]


def test_a_reading_client_gets_all_three_bursts_at_once_and_every_reply(
    client: RawClient,
) -> None:
    # Three producers (the main thread and two workers) outrun the I/O thread: before the
    # outbox was bounded in bytes and held its producers, this closed the client (1008).
    assert client.call("configure", kwargs={"pushes": "immediate"}) == {"pushes": "immediate"}
    client.call("init", "pusher", "remote_helpers:Pusher", kwargs={"liaison": "$liaison"})
    stream = client.command("run", "remote_helpers:count", BURST, stream=True, concurrent=True)
    pushes = client.command("run", "remote_helpers:push_many", "$pusher", BURST, concurrent=True)
    for message in (stream, pushes, client.command("run", "remote_helpers:report_progress", BURST)):
        client.send(message)
    replies: dict[str, Any] = {}
    counts = {"progress": 0, "partial": 0, "alert": 0}
    while len(replies) < 3:
        message = client.receive(timeout=60)
        if message.get("tag") in ("response", "error"):
            replies[message["id"]] = message.get("response", message)
        else:
            counts[message["tag"]] += 1
    assert sorted(map(str, replies.values())) == sorted(map(str, [BURST, BURST, "done"]))
    assert counts == {"progress": BURST, "partial": BURST, "alert": BURST}


# -- in this process: the WebSocket transport with a producer thread standing in for a command


def push_from_a_thread(count: int, done: threading.Event) -> Callable[[Any, Any], None]:
    """A message handler that pushes ``count`` 1 MiB messages from a thread of its own,
    then the final reply, as a command calling ``liaison.progress`` does."""

    def on_message(data: Any, connection: Any) -> None:
        def produce() -> None:
            for _ in range(count):
                connection.push(MEGABYTE)
            connection.send(b'"done"')
            done.set()

        threading.Thread(target=produce, daemon=True).start()

    return on_message


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the loop run until ``condition()`` holds (checked every loop turn, 30 s at most)."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.001)

    try:
        await asyncio.wait_for(poll(), 30)
    except asyncio.TimeoutError:
        raise AssertionError(f"not within 30 s: {what}") from None


async def serve(on_message: Any, **settings: Any) -> tuple[WebSocketTransport, list[Any]]:
    closed: list[Any] = []
    handlers = TransportHandlers(on_message, closed.append, request_stop=lambda: None)
    transport = WebSocketTransport(
        Settings(**settings), handlers, websocket_settings=WebSocketSettings()
    )
    await transport.start()
    return transport, closed


def url_of(transport: WebSocketTransport) -> str:
    assert transport._server is not None
    return f"ws://127.0.0.1:{transport._server.sockets[0].getsockname()[1]}/"


def test_a_command_sending_to_a_client_that_does_not_read_waits_and_nothing_is_lost() -> None:
    done = threading.Event()

    async def test() -> None:
        on_message = push_from_a_thread(PUSHES_PAST_THE_BOUND, done)
        transport, closed = await serve(on_message, client_read_timeout=3600)
        try:
            async with connect(url_of(transport), max_size=None, max_queue=1) as client:
                await client.send("go")
                (connection,) = transport.connections
                inbox = connection._inbox
                await until(lambda: inbox.waiting == 1, "the producer waits for room")
                assert connection.state is ConnectionState.OPEN and not done.is_set()
                messages = [await client.recv() for _ in range(PUSHES_PAST_THE_BOUND + 1)]
                assert all(len(m) == len(MEGABYTE) for m in messages[:-1])
                assert messages[-1] == '"done"'
                assert done.wait(10) and connection.state is ConnectionState.OPEN
        finally:
            await transport.close()
        assert closed == [connection]

    asyncio.run(test())


def test_a_client_that_reads_nothing_is_dropped_after_the_read_timeout() -> None:
    done = threading.Event()

    async def test() -> None:
        on_message = push_from_a_thread(PUSHES_PAST_THE_BOUND, done)
        transport, closed = await serve(on_message, client_read_timeout=0.2)
        try:
            async with connect(url_of(transport), max_size=None, max_queue=1) as client:
                await client.send("go")
                (connection,) = transport.connections
                await until(lambda: connection.state is not ConnectionState.OPEN, "dropped")
                assert await asyncio.to_thread(done.wait, 10)  # the producer was let go
                await until(lambda: closed == [connection], "on_close")
                assert connection.state is ConnectionState.CLOSED
                # A client that reads nothing cannot finish a close handshake: cut it.
                client.transport.abort()
        finally:
            await transport.close()

    asyncio.run(test())


def test_reading_pauses_while_queued_requests_hold_their_byte_bound() -> None:
    received: list[tuple[int, Connection]] = []
    size = QUEUED_REQUESTS_MAX_BYTES // 2 + 1

    def queue_it(data: Any, connection: Any) -> None:  # no reply: as a queued command's job
        received.append((connection.hold_arriving(), connection))

    async def test() -> None:
        transport, _ = await serve(queue_it)
        try:
            async with connect(url_of(transport), max_size=None) as client:

                async def send_three() -> None:  # TCP holds the third back while paused
                    for _ in range(3):
                        await client.send("x" * size)

                sender = asyncio.create_task(send_three())
                await until(lambda: len(received) == 2, "two messages read")
                connection = received[0][1]
                assert connection._reading_paused and len(received) == 2
                connection.send(b'"first"', size)  # one answered: under the bound again
                await until(lambda: len(received) == 3, "the third message read")
                assert await client.recv() == '"first"'
                await sender
                # The other two answered: reading resumes, so the close handshake is read.
                connection.send(b'"second"', size)
                connection.send(b'"third"', size)
                assert [await client.recv(), await client.recv()] == ['"second"', '"third"']
        finally:
            await transport.close()

    asyncio.run(test())


# -- in this process: the stdio transport over a pipe nobody reads


def test_a_stdio_peer_that_reads_nothing_stops_the_liaison_after_the_read_timeout() -> None:
    done = threading.Event()
    stops: list[str] = []

    async def test() -> None:
        input_r, input_w = os.pipe()
        output_r, output_w = os.pipe()
        try:
            handlers = TransportHandlers(
                push_from_a_thread(PUSHES_PAST_THE_BOUND, done),
                on_close=lambda connection: None,
                request_stop=lambda: stops.append("stop"),
            )
            settings = Settings(client_read_timeout=0.2)
            transport = StdioTransport(settings, handlers, input_fd=input_r, output_fd=output_w)
            await transport.start()
            transport.start_reading()
            os.write(input_w, orjson.dumps({"go": 1}) + b"\n")
            await until(lambda: stops == ["stop"], "the stop for a peer that does not read")
            assert await asyncio.to_thread(done.wait, 10)
            assert transport.connection.state is not ConnectionState.OPEN
            await transport.close()
        finally:
            for fd in (input_r, input_w, output_r, output_w):
                os.close(fd)

    asyncio.run(test())


class _Recording(QueuedConnection):
    """A queued connection that writes nothing: its counts, by plain calls."""

    def _start_writing(self) -> None:
        pass


def recording_connection(max_pending: int) -> QueuedConnection:
    """On the running loop's thread (call it inside asyncio.run)."""
    return _Recording(LoopInbox(asyncio.get_running_loop()), max_pending, 60.0)


@pytest.mark.parametrize("reply_at_once", [True, False])
def test_only_messages_held_by_a_job_count_as_queued_bytes(reply_at_once: bool) -> None:
    async def test() -> None:
        connection = recording_connection(max_pending=10)
        held: list[int] = []

        def on_message(data: Any, sink: Any) -> None:
            if reply_at_once:  # a ping's reply, an error: no job
                sink.send(b"{}")
            else:  # a job for a command (jobs.Job holds its message)
                held.append(sink.hold_arriving())

        connection.take("x" * 100, on_message)
        assert connection._queued_bytes == (0 if reply_at_once else 100)
        if not reply_at_once:
            assert held == [100] and connection.hold_arriving() == 0  # once, while handled
            connection.send(b"{}", held[0])
            assert connection._queued_bytes == 0

    asyncio.run(test())


def test_each_reply_gives_back_its_own_messages_bytes_in_any_order() -> None:
    # Paired in arrival order, the reply of a quick command gave back the bytes of a
    # concurrent command's large message, still held: 20 such 8 MiB messages, each
    # followed by 40 quick commands, held 203 MB with reading never paused.
    async def test() -> None:
        connection = recording_connection(max_pending=10_000)
        held: list[int] = []

        def hold(data: Any, sink: Any) -> None:
            held.append(sink.hold_arriving())

        for _ in range(3):
            connection.take("x" * (QUEUED_REQUESTS_MAX_BYTES // 2), hold)  # stays running
            big = held.pop()
            for _ in range(40):  # quick commands, answered before the next large one
                connection.take("y", hold)
                connection.send(b"{}", held.pop())
            held.insert(0, big)
        assert connection._queued_bytes == 3 * (QUEUED_REQUESTS_MAX_BYTES // 2)
        assert connection._crowded()
        for size in held:
            connection.send(b"{}", size)
        assert connection._queued_bytes == 0 and not connection._crowded()

    asyncio.run(test())


def test_a_cancel_that_answers_a_queued_message_releases_its_bytes() -> None:
    async def test() -> None:
        connection = recording_connection(max_pending=10)
        held: list[int] = []
        connection.take("x" * 100, lambda data, sink: held.append(sink.hold_arriving()))

        def cancel(data: Any, sink: Any) -> None:  # the cancelled job replies, then cancel
            sink.send(b"{}", held[0])
            sink.send(b"{}")

        connection.take("cancel", cancel)
        assert connection._queued_bytes == 0 and connection._unanswered == 0

    asyncio.run(test())
