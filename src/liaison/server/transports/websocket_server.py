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

from ...protocol.reads import limit_read_size
from ..io_thread import TransportHandlers
from ..settings import Settings
from .descriptors import DescriptorShortage
from .inbox import LoopInbox
from .outbox import CLOSED, CLOSING, OPEN, OUTBOX_HIGH_WATER_BYTES, QueuedConnection
from .security import RedactingFilter, check_handshake

__all__ = ["Connection", "WebSocketTransport"]

log = logging.getLogger("liaison.transport")
# The logger websockets' server and its connections log to (serve's default `logger`).
_WEBSOCKETS_LOG = logging.getLogger("websockets.server")

# Called with each message received: str for a text frame, bytes for a binary frame.
MessageHandler = Callable[[str | bytes, "Connection"], None]

_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)  # Linux only


class _ReadCountingConnection(ServerConnection):
    """websockets' server connection, counting the socket reads it parses messages from
    (``create_connection``, a documented extension point): messages from one read were
    sent together, a burst whose replies may share TCP segments."""

    reads = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        limit_read_size(transport)
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        super().data_received(data)


class Connection(QueuedConnection):
    """One client: a thread-safe outbox in front of a websockets connection.

    Reading pauses while ``max_pending`` messages await their reply or their turn on
    the wire, or ``OUTBOX_HIGH_WATER_BYTES`` wait to be sent, so a client that floods
    holds bounded memory; a client that stops reading while messages are pushed to it
    is disconnected (1008) once its outbox overflows.

    Its lifecycle (outbox.ConnectionState): to CLOSING when the client left (the
    transport calls ``close_outbox`` once the reader ends) or is disconnected for not
    reading (``_enqueue``); to CLOSED by the writer when it stops, at the outbox's end
    mark (``None``) or when the socket closes under it. Unsolicited pushes follow the
    shared rule of :class:`QueuedConnection`.
    """

    def __init__(self, ws: _ReadCountingConnection, inbox: LoopInbox, max_pending: int):
        super().__init__(inbox)
        self.ws = ws
        # One future wakes the writer: asyncio.Queue costs ~10 Python calls per message.
        self._outbox_filled: asyncio.Future[None] | None = None
        # Who sends next, moved on the I/O thread only: the reader sets _handling around
        # on_message, a reply made then lands in _reply_now and the reader sends it; any
        # other send goes through the outbox, under _sending (reader or writer task).
        self._sending = False  # a task is sending: only one may be
        self._handling = False  # the reader is in on_message
        self._reply_now: bytes | bytearray | None = None  # made while handling, unsent
        self._max_pending = max_pending
        self._room = asyncio.Event()
        self._room.set()
        self._reads_seen = -1  # ws.reads when the reader took the previous message
        self._uncork_pending = False
        self._corked = False
        self._socket: Any = ws.transport.get_extra_info("socket") if _TCP_CORK else None

    def __repr__(self) -> str:
        return f"<Connection {self.id} from {self.ws.remote_address}>"

    def send(self, data: bytes | bytearray) -> None:
        """Queue the final reply to a message this connection sent (any thread)."""
        if (
            self._handling
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
            self._call(self._enqueue_reply, data)

    def _enqueue(self, data: bytes | bytearray) -> None:
        if self._state is not OPEN:
            return
        if len(self._outbox) >= 4 * self._max_pending:
            log.warning("%r does not read its messages: disconnecting it", self)
            self._state = CLOSING
            asyncio.get_running_loop().create_task(
                self.ws.close(1008, "client does not read its messages")
            )
            return
        outbox = self._outbox
        outbox.append(data)
        outbox.nbytes += len(data)
        self._wake_writer()

    def _wake_writer(self) -> None:
        waiter = self._outbox_filled
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _crowded(self) -> bool:
        return (
            self._unanswered + len(self._outbox) >= self._max_pending
            or self._outbox.nbytes >= OUTBOX_HIGH_WATER_BYTES
        )

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
            self._state = CLOSED
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
                    self._state = CLOSED
                    return
                # bytes are JSON text; a bytearray (core.frames.Frame) is a binary frame
                await self.ws.send(data, text=not isinstance(data, bytearray))
                outbox.nbytes -= len(data)
                if not self._room.is_set() and not self._crowded():
                    self._room.set()
        finally:
            self._sending = False
            if outbox:  # queued while the last send was awaited: the writer's now
                self._wake_writer()

    async def reader(self, on_message: MessageHandler) -> None:
        ws = self.ws
        async for data in ws:
            self._unanswered += 1
            if ws.reads != self._reads_seen:
                self._reads_seen = ws.reads
            elif not self._corked:
                self._cork()  # this message came in the previous one's read: a burst
            self._handling = True
            try:
                on_message(data, self)
            finally:
                self._handling = False
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
                self._room.clear()
                await self._room.wait()

    def close_outbox(self) -> None:
        """The client left: queue nothing more, and end the writer after what is queued."""
        if self._state is OPEN:
            self._state = CLOSING
        self._outbox.append(None)
        self._wake_writer()


class WebSocketTransport:
    """Serves WebSocket clients on one address, handing every message to
    ``handlers.on_message`` and each closed connection to ``handlers.on_close``."""

    def __init__(self, settings: Settings, handlers: TransportHandlers) -> None:
        self.settings = settings
        self.handlers = handlers
        self.connections: set[Connection] = set()
        self._server: Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._inbox: LoopInbox | None = None
        # websockets logs the request line and headers at debug level, token included.
        self._log_filter = None if settings.token is None else RedactingFilter([settings.token])
        self._descriptor_shortage: DescriptorShortage | None = None

    async def start(self) -> str:
        """Bind and listen; returns ``HOST:PORT`` with the real port. Raises OSError if it
        cannot bind."""
        self.loop = asyncio.get_running_loop()
        self._inbox = LoopInbox(self.loop)
        # Out of descriptors, asyncio logs a traceback per try and leaves clients hanging.
        self._descriptor_shortage = DescriptorShortage()
        self.loop.set_exception_handler(self._descriptor_shortage)
        settings = self.settings
        options: dict[str, Any] = dict(
            process_request=self._process_request,
            max_size=settings.max_message_size,
            open_timeout=settings.handshake_timeout,
            compression=None,  # deflate costs more CPU than loopback bandwidth saves
            ping_interval=None,  # loopback peers; liaison's `ping` command serves liveness
            close_timeout=2,
            server_header=None,
            create_connection=_ReadCountingConnection,
        )
        if self._log_filter is not None:
            _WEBSOCKETS_LOG.addFilter(self._log_filter)
        # `[::1]` on the command line: brackets belong to the address form, not the host.
        host = settings.host.removeprefix("[").removesuffix("]")
        self._server = await self._bind(host, settings.port, options)
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
        refusal = check_handshake(self.settings, request.path, request.headers)
        if refusal is None:
            limit = self.settings.max_connections
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
            cast(_ReadCountingConnection, ws), self._inbox, self.settings.max_pending
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

    def broadcast(self, data: bytes) -> None:
        """Send ``data`` to every connected client; callable from any thread."""
        assert self._inbox is not None
        self._inbox.put(self._broadcast, data)

    def _broadcast(self, data: bytes) -> None:
        for connection in list(self.connections):
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
