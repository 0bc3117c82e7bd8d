"""The WebSocket transport in this process: a real server and client on loopback, with a
message handler standing in for the dispatcher. No subprocess."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from liaison.protocol.reads import READ_SIZE, limit_read_size
from liaison.server.settings import Settings
from liaison.server.transports.contract import ConnectionState, TransportHandlers
from liaison.server.transports.websocket.settings import WebSocketSettings
from liaison.server.transports.websocket.transport import Connection, WebSocketTransport

Handler = Callable[[str | bytes, Connection], None]


async def serving(on_message: Handler, **websocket_settings: Any) -> tuple[WebSocketTransport, str]:
    handlers = TransportHandlers(on_message, on_close=lambda connection: None,
                                 request_stop=lambda: None)  # fmt: skip
    transport = WebSocketTransport(
        Settings(), handlers, websocket_settings=WebSocketSettings(**websocket_settings)
    )
    address = await transport.start()
    return transport, f"ws://{address}/"


async def replies(client: ClientConnection, count: int) -> list[Any]:
    return [orjson.loads(await asyncio.wait_for(client.recv(), 10)) for _ in range(count)]


def run(test: Callable[[], Any]) -> None:
    asyncio.run(test())


def reply_to(data: str | bytes, connection: Connection) -> None:
    """Answer each message at once, as the dispatcher answers a control command."""
    connection.send(orjson.dumps({"tag": "response", "response": orjson.loads(data)}))


def test_text_and_binary_frames_reach_the_handler_and_replies_come_back_in_order() -> None:
    seen: list[str | bytes] = []

    def record(data: str | bytes, connection: Connection) -> None:
        seen.append(data)
        reply_to(b"1" if isinstance(data, bytes) else data, connection)

    async def test() -> None:
        transport, url = await serving(record)
        try:
            async with connect(url) as client:
                for n in range(3):
                    await client.send(str(n))
                await client.send(b"\x00binary")
                assert [r["response"] for r in await replies(client, 4)] == [0, 1, 2, 1]
        finally:
            await transport.close()
        assert seen == ["0", "1", "2", b"\x00binary"]

    run(test)


def test_replies_from_another_thread_reach_the_client() -> None:
    def later(data: str | bytes, connection: Connection) -> None:
        threading.Thread(target=reply_to, args=(data, connection)).start()

    async def test() -> None:
        transport, url = await serving(later)
        try:
            async with connect(url) as client:
                await client.send("7")
                assert (await replies(client, 1))[0]["response"] == 7
        finally:
            await transport.close()

    run(test)


def test_a_push_waits_for_the_pending_reply_unless_the_client_opted_in() -> None:
    pending: list[tuple[str | bytes, Connection]] = []

    def hold(data: str | bytes, connection: Connection) -> None:
        if data == "immediate":
            connection.set_immediate_pushes(True)
            reply_to("0", connection)
        else:
            pending.append((data, connection))

    async def test() -> None:
        transport, url = await serving(hold)
        try:
            async with connect(url) as client:
                await client.send("1")
                while not pending:
                    await asyncio.sleep(0)  # the handler has the message: a reply is due
                transport.broadcast(b'{"tag": "alert"}')
                data, connection = pending.pop()
                for _ in range(3):  # the loop runs the broadcast (a call from its inbox)
                    await asyncio.sleep(0)
                reply_to(data, connection)
                assert [m["tag"] for m in await replies(client, 2)] == ["response", "alert"]
                await client.send("immediate")
                await replies(client, 1)
                await client.send("2")
                while not pending:
                    await asyncio.sleep(0)
                transport.broadcast(b'{"tag": "alert"}')
                assert (await replies(client, 1))[0]["tag"] == "alert"
        finally:
            await transport.close()

    run(test)


@pytest.mark.parametrize(
    ("headers", "status"),
    [({"Origin": "https://evil.example"}, 403), ({"Origin": "http://localhost:3000"}, 101)],
)
def test_the_handshake_policy_is_applied_before_the_upgrade(
    headers: dict[str, str], status: int
) -> None:
    async def test() -> int:
        transport, url = await serving(reply_to)
        try:
            async with connect(url, origin=headers["Origin"]):  # type: ignore[arg-type]
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code
        finally:
            await transport.close()

    assert asyncio.run(test()) == status


def test_connections_beyond_the_limit_get_503() -> None:
    async def test() -> None:
        transport, url = await serving(reply_to, max_connections=1)
        try:
            async with connect(url):
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(url):
                        pass
                assert refused.value.response.status_code == 503
        finally:
            await transport.close()

    run(test)


def test_a_connection_is_open_until_its_client_leaves_then_closed_and_drops_sends() -> None:
    connections: list[Connection] = []

    def keep(data: str | bytes, connection: Connection) -> None:
        connections.append(connection)
        reply_to(data, connection)

    async def test() -> None:
        transport, url = await serving(keep)
        try:
            async with connect(url) as client:
                await client.send("1")
                await replies(client, 1)
                (connection,) = connections
                assert connection.state is ConnectionState.OPEN and not connection.closed

            async def closed() -> None:  # the server's side of the close: its writer ends
                while connection.state is not ConnectionState.CLOSED:
                    await asyncio.sleep(0)

            await asyncio.wait_for(closed(), 10)
            assert connection.closed and connection not in transport.connections
            connection.send(b'{"late": true}')  # dropped, no error
            connection.push_unsolicited(b'{"late": true}')
        finally:
            await transport.close()

    run(test)


def test_a_reply_made_after_the_loop_closed_is_dropped_quietly() -> None:
    # A concurrent command may finish while the liaison exits, after the I/O loop closed.
    from liaison.server.transports.contract import LoopInbox

    loop = asyncio.new_event_loop()
    inbox = LoopInbox(loop)
    loop.close()
    sent: list[Any] = []
    inbox.put(sent.append, b"late")  # raised RuntimeError ("Event loop is closed")
    assert sent == []


def test_the_server_reads_its_socket_in_heap_sized_chunks_and_large_messages_arrive_whole() -> None:
    seen: list[tuple[int, int]] = []

    def record(data: str | bytes, connection: Connection) -> None:
        seen.append((len(data), connection.ws.transport.max_size))  # type: ignore[attr-defined]
        reply_to(b"1", connection)

    async def test() -> None:
        transport, url = await serving(record)
        try:
            async with connect(url, max_size=None) as client:
                await client.send("x" * (5 * READ_SIZE + 3))
                assert (await replies(client, 1))[0]["response"] == 1
        finally:
            await transport.close()

    run(test)
    assert seen == [(5 * READ_SIZE + 3, READ_SIZE)]


def test_limit_read_size_lowers_a_selector_pipe_transport_and_leaves_others_alone() -> None:
    async def test() -> None:
        read_end, write_end = os.pipe()
        with open(read_end, "rb", buffering=0) as pipe, open(write_end, "wb"):
            loop = asyncio.get_running_loop()
            reader, _ = await loop.connect_read_pipe(asyncio.Protocol, pipe)
            assert reader.max_size > READ_SIZE  # type: ignore[attr-defined]  # asyncio's 256 KiB
            limit_read_size(reader)
            assert reader.max_size == READ_SIZE  # type: ignore[attr-defined]
            reader.close()

    run(test)
    no_read_size = asyncio.BaseTransport()
    limit_read_size(no_read_size)
    assert not hasattr(no_read_size, "max_size")


def test_websockets_own_debug_log_never_holds_the_token(caplog: pytest.LogCaptureFixture) -> None:
    # Redacted where websockets logs, so a handler the liaison did not set up (an
    # embedding program's; here pytest's) gets no token, however the client encoded it.
    token = "s3cr3t+/Tok"
    every_byte = "".join(f"%{byte:02x}" for byte in token.encode())

    async def test() -> None:
        transport, url = await serving(reply_to, token=token)
        try:
            async with connect(url + "?token=" + every_byte) as client:
                await client.send('"ping"')
                assert await replies(client, 1) == [{"tag": "response", "response": "ping"}]
        finally:
            await transport.close()

    caplog.set_level(logging.DEBUG, logger="websockets.server")  # not our own client
    run(test)
    assert "GET /?token=<redacted> HTTP/1.1" in caplog.text
    assert every_byte not in caplog.text and token not in caplog.text


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists descriptors via /proc")
def test_a_closed_transport_leaves_no_descriptor_behind() -> None:
    # It holds one in reserve, to answer 503 when the process runs out (descriptors.py).
    async def test() -> tuple[int, int]:
        before = len(os.listdir("/proc/self/fd"))
        transport, url = await serving(reply_to)
        async with connect(url) as client:
            await client.send('"x"')
            await replies(client, 1)
        await transport.close()
        return before, len(os.listdir("/proc/self/fd"))

    before, after = asyncio.run(test())
    assert after == before
