"""The WebSocket transport, on the ``websockets`` library's asyncio server.

It only moves messages (text and binary frames) and enforces the connection policy;
what messages mean is the dispatcher's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any, cast

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HTTPRequest
from websockets.http11 import Response as HTTPResponse

from ....protocol.reads import limit_read_size
from ...settings import Settings
from ..contract import CLOSED, LoopInbox, QueuedConnection, TransportHandlers
from .descriptors import DescriptorShortage
from .handshake import RedactingFilter, check_handshake
from .settings import WebSocketSettings

__all__ = ["Connection", "WebSocketTransport"]

log = logging.getLogger("liaison.transport")
# The logger websockets' server and its connections log to (serve's default `logger`).
_WEBSOCKETS_LOG = logging.getLogger("websockets.server")

# Called with each message received: str for a text frame, bytes for a binary frame.
MessageHandler = Callable[[str | bytes, "Connection"], None]

_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)  # Linux only


# Frames websockets may buffer for a connection whose reader is busy, as bytes: it counts
# frames (max_queue), so it gets as many messages of the largest size as fit, at least 1.
RECEIVE_BUFFER_BYTES = 64 * 2**20

# Seconds a closing handshake may take before the socket is cut.
CLOSE_TIMEOUT = 2

# Why reading the socket is paused (bits of _ReadCountingConnection._holds).
_FRAMES_QUEUED = 1  # websockets' buffer of received frames is full (max_queue)
_WRITES_PENDING = 2  # the transport's write buffer is over websockets' write_limit
_CONNECTION_FULL = 4  # the liaison's own rule (QueuedConnection._crowded)


class _ReadCountingConnection(ServerConnection):
    """websockets' server connection, counting the socket reads it parses messages from
    (``create_connection``, a documented extension point): messages from one read were
    sent together, a burst whose replies may share TCP segments.

    It also stops reading the socket while its write buffer is over ``write_limit``:
    websockets answers every PING with a PONG whether the client reads or not, so a
    client that sends pings and never reads would otherwise grow that buffer without end.
    """

    reads = 0
    _holds = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        limit_read_size(transport)
        super().connection_made(transport)
        # The frame buffer's pauses join ours, so neither resumes what the other paused.
        self.recv_messages.pause = lambda: self._hold_reading(_FRAMES_QUEUED)
        self.recv_messages.resume = lambda: self._release_reading(_FRAMES_QUEUED)

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        super().data_received(data)

    def pause_writing(self) -> None:
        super().pause_writing()
        self._hold_reading(_WRITES_PENDING)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._release_reading(_WRITES_PENDING)

    def _hold_reading(self, reason: int) -> None:
        if not self._holds:
            cast(asyncio.ReadTransport, self.transport).pause_reading()
        self._holds |= reason

    def _release_reading(self, reason: int) -> None:
        held = self._holds
        self._holds = held & ~reason
        if held and not self._holds:
            cast(asyncio.ReadTransport, self.transport).resume_reading()


class Connection(QueuedConnection):
    """One client: a thread-safe outbox in front of a websockets connection.

    Flow control is :class:`QueuedConnection`'s; here reading pauses by not taking the
    next message, and a client dropped for not reading is closed with 1008.

    Its lifecycle (contract.ConnectionState) is moved by QueuedConnection: to CLOSING when
    the client left (the transport calls ``close_outbox`` once the reader ends) or is
    dropped; to CLOSED (``writer_stopped``) when the writer stops, at the outbox's end
    mark (``None``) or when the socket closes under it.
    """

    def __init__(
        self, ws: _ReadCountingConnection, inbox: LoopInbox, max_pending: int, read_timeout: float
    ) -> None:
        super().__init__(inbox, max_pending, read_timeout)
        self.ws = ws
        # One future wakes the writer: asyncio.Queue costs ~10 Python calls per message.
        self._outbox_filled: asyncio.Future[None] | None = None
        # Who sends next, moved on the I/O thread only: the reader sets _handling around
        # on_message, a reply made then lands in _reply_now and the reader sends it; any
        # other send goes through the outbox, under _sending (reader or writer task).
        self._sending = False  # a task is sending: only one may be
        self._reply_now: bytes | bytearray | None = None  # made while handling, unsent
        self._room = asyncio.Event()
        self._room.set()
        self._reads_seen = -1  # ws.reads when the reader took the previous message
        self._uncork_pending = False
        self._corked = False
        self._socket: Any = ws.transport.get_extra_info("socket") if _TCP_CORK else None

    def __repr__(self) -> str:
        return f"<Connection {self.id} from {self.ws.remote_address}>"

    def send(self, data: bytes | bytearray, held: int = 0) -> None:
        """Queue the final reply to a message this connection sent (any thread)."""
        if (
            self._handling
            and not held  # a job's reply: it gives its message's bytes back (super)
            and self._reply_now is None
            and not self._outbox
            and not self._sending
            and threading.get_ident() == self._loop_thread
        ):
            # Made while the reader handles its message (a ping's reply, an error): the
            # reader sends it next, past the outbox (~100 bytecodes less per message).
            self._unanswered -= 1
            self._reply_now = data
            if self._held and not self._unanswered:
                self._release_held()  # after _reply_now: the reader sends that first
        else:
            super().send(data, held)

    def _start_writing(self) -> None:
        waiter = self._outbox_filled
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _pause_reading(self) -> None:
        self._room.clear()
        # websockets would go on reading frames into its buffer (max_queue): stop it too.
        self.ws._hold_reading(_CONNECTION_FULL)

    def _resume_reading(self) -> None:
        self._room.set()
        self.ws._release_reading(_CONNECTION_FULL)

    def _drop(self, reason: str) -> None:
        asyncio.get_running_loop().create_task(self._close_unread(reason))

    async def _close_unread(self, reason: str) -> None:
        # The close frame waits behind what the client has not read (websockets drains
        # before it closes, without a deadline): past the close timeout the socket is cut.
        try:
            await asyncio.wait_for(self.ws.close(1008, reason), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            self.ws.transport.abort()

    async def writer(self) -> None:
        """Send what others queue (replies from the main thread, pushes) until closed."""
        try:
            outbox = self._outbox
            while self._state is not CLOSED:
                while not outbox or self._sending:
                    self._outbox_filled = asyncio.get_running_loop().create_future()
                    await self._outbox_filled
                    self._outbox_filled = None
                await self._send_queued()
        except ConnectionClosed:
            pass
        finally:
            self.writer_stopped()
            self._room.set()

    # Pipelined messages come many per read and are handled in one turn of the event
    # loop, and replies from the main thread come in batches. Sending each reply as it
    # is made costs a TCP segment each: the kernel's loopback path, ~40% of the CPU per
    # ping. So in such bursts the socket is corked (TCP_CORK) and the replies leave
    # together when the turn ends. A lone message's reply is sent at once, uncorked, and
    # costs no callback: the reader tells a burst by the socket read its message came in.

    def _cork(self) -> None:
        if self._corked or self._socket is None:
            return
        try:
            self._socket.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, 1)
        except OSError:  # closed
            return
        self._corked = True
        if not self._uncork_pending:
            self._uncork_pending = True
            asyncio.get_running_loop().call_soon(self._uncork)  # at the end of this turn

    def _uncork(self) -> None:
        self._uncork_pending = False
        if self._corked:
            self._corked = False
            with contextlib.suppress(OSError):  # closed meanwhile: nothing to hold back
                self._socket.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, 0)

    async def _send_queued(self) -> None:
        """Send the outbox until it is empty. One sender at a time keeps the order."""
        self._sending = True
        try:
            outbox = self._outbox
            if len(outbox) > 1:
                self._cork()
            while outbox:
                data = outbox.popleft()
                if data is None:  # the end mark
                    self.writer_stopped()
                    return
                # bytes are JSON text; a bytearray (protocol.frames.Frame) is a binary frame
                await self.ws.send(data, text=not isinstance(data, bytearray))
                self._sent(data)
        finally:
            self._sending = False
            if outbox:  # queued while the last send was awaited: the writer's now
                self._start_writing()

    async def reader(self, on_message: MessageHandler) -> None:
        ws = self.ws
        async for data in ws:
            if ws.reads != self._reads_seen:
                self._reads_seen = ws.reads
            elif not self._corked:
                self._cork()  # this message came in the previous one's read: a burst
            self.take(data, on_message)
            reply = self._reply_now
            if reply is not None:
                self._reply_now = None
                self._sending = True
                try:
                    await ws.send(reply, text=not isinstance(reply, bytearray))
                finally:
                    self._sending = False
            if self._outbox and not self._sending:
                # Replies made while handling or sending go out now: no task switch.
                await self._send_queued()
            if (self._unanswered or self._outbox) and self._crowded():  # no call if idle
                self._reading_paused = True
                self._pause_reading()
                del data, reply  # not held while paused: the message may be large
                await self._wait_for_room()

    async def _wait_for_room(self) -> None:
        """Until reading may resume, or the connection is closed (then nothing resumes
        it: the replies it waits for are dropped)."""
        room = asyncio.ensure_future(self._room.wait())
        closed = asyncio.ensure_future(self.ws.wait_closed())
        await asyncio.wait((room, closed), return_when=asyncio.FIRST_COMPLETED)
        for waiter in (room, closed):
            waiter.cancel()


class WebSocketTransport:
    """Serves WebSocket clients on the address ``websocket_settings`` names, with its
    handshake policy, handing every message to ``handlers.on_message`` and each closed
    connection to ``handlers.on_close``."""

    def __init__(
        self,
        settings: Settings,
        handlers: TransportHandlers,
        *,
        websocket_settings: WebSocketSettings,
    ) -> None:
        self.settings = settings
        self.websocket_settings = websocket_settings
        self.handlers = handlers
        self.connections: set[Connection] = set()
        self._server: Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._inbox: LoopInbox | None = None
        # websockets logs the request line and headers at debug level, token included.
        token = websocket_settings.token
        self._log_filter = None if token is None else RedactingFilter([token])
        self._descriptor_shortage: DescriptorShortage | None = None

    async def start(self) -> str:
        """Bind and listen; returns ``HOST:PORT`` with the real port. Raises OSError if it
        cannot bind (its ``strerror`` names the address)."""
        self.loop = asyncio.get_running_loop()
        self._inbox = LoopInbox(self.loop)
        # Out of descriptors, asyncio logs a traceback per try and leaves clients hanging.
        self._descriptor_shortage = DescriptorShortage()
        self.loop.set_exception_handler(self._descriptor_shortage)
        settings, websocket = self.settings, self.websocket_settings
        options: dict[str, Any] = dict(
            process_request=self._process_request,
            max_size=settings.max_message_size,
            open_timeout=websocket.handshake_timeout,
            compression=None,  # deflate costs more CPU than loopback bandwidth saves
            ping_interval=None,  # loopback peers; liaison's `ping` command serves liveness
            close_timeout=CLOSE_TIMEOUT,
            server_header=None,
            create_connection=_ReadCountingConnection,
            # In frames: as many messages of the largest size as RECEIVE_BUFFER_BYTES hold.
            max_queue=(max(1, RECEIVE_BUFFER_BYTES // settings.max_message_size), 0),
        )
        if self._log_filter is not None:
            _WEBSOCKETS_LOG.addFilter(self._log_filter)
        # `[::1]` on the command line: brackets belong to the address form, not the host.
        host = websocket.host.removeprefix("[").removesuffix("]")
        try:
            self._server = await self._bind(host, websocket.port, options)
        except OSError as error:  # the runtime prints strerror: name the address in it
            address = f"{websocket.host}:{websocket.port}"
            reason = f"cannot listen on {address}: {error.strerror or error}"
            raise OSError(error.errno, reason) from error
        port: int = self._server.sockets[0].getsockname()[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def _bind(self, host: str, port: int, options: dict[str, Any]) -> Server:
        server: Server
        if port != 0 or _is_ip_literal(host):
            server = await serve(self._handle, host, port, **options)
            return server
        # A name such as `localhost` may stand for 127.0.0.1 and ::1: port 0 would give
        # each its own port, so pick one on the first address and bind all to it.
        for _attempt in range(5):
            family, _, _, _, address = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind(address)
                free_port = probe.getsockname()[1]
            try:
                server = await serve(self._handle, host, free_port, **options)
            except OSError:
                continue
            return server
        server = await serve(self._handle, host, 0, **options)
        return server

    def _process_request(self, ws: ServerConnection, request: HTTPRequest) -> HTTPResponse | None:
        refusal = check_handshake(self.websocket_settings, request.path, request.headers)
        if refusal is None:
            limit = self.websocket_settings.max_connections
            if limit is not None and len(self.connections) >= limit:
                return ws.respond(503, "too many connections\n")
            return None
        status, reason = refusal
        # Info, not warning: launchers show stderr as errors, and a page probing ports is
        # no error of the liaison's. The reason and Origin hold no secret.
        origins = request.headers.get_all("Origin")
        log.info(
            "refused a connection from %s: %s (Origin: %s)",
            ws.remote_address, reason, ", ".join(origins) if origins else None,
        )  # fmt: skip
        return ws.respond(status, reason + "\n")

    async def _handle(self, ws: ServerConnection) -> None:
        assert self._inbox is not None
        # serve() made ws with create_connection=_ReadCountingConnection
        connection = Connection(
            cast(_ReadCountingConnection, ws),
            self._inbox,
            self.settings.max_pending,
            self.settings.client_read_timeout,
        )
        self.connections.add(connection)
        log.info("client connected: %r", connection)
        writer = asyncio.create_task(connection.writer())
        try:
            await connection.reader(self.handlers.on_message)
        except ConnectionClosed:
            pass
        finally:
            self.connections.discard(connection)
            connection.close_outbox()
            try:
                await writer
            finally:  # whatever ended the writer, the connection's references go
                log.info("client disconnected: %r", connection)
                self.handlers.on_close(connection)

    def start_reading(self) -> None:
        """Nothing to do: clients are read from :meth:`start` on (the start marker goes to
        stdout, not to them)."""

    def broadcast(self, data: bytes) -> None:
        """Send ``data`` to every connected client; callable from any thread. A thread
        other than the I/O thread waits while a client's outbox is full (QueuedConnection)."""
        for connection in self.connections.copy():
            connection.push_unsolicited(data)

    async def close(self) -> None:
        """Stop listening and close every connection (1001 going away)."""
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        if self._log_filter is not None:
            _WEBSOCKETS_LOG.removeFilter(self._log_filter)
        if self._descriptor_shortage is not None:
            self._descriptor_shortage.close()


def _is_ip_literal(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True
