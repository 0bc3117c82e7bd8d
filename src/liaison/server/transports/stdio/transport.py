"""The stdio transport: one peer, the process that started the liaison, over a pipe pair.

Messages are lines on the liaison's stdin and on a private copy of its stdout (the
framing is protocol/lines.py; docs/protocol.md, "The stdio transport"). The runtime points
fd 1 and ``sys.stdout`` at stderr, so nothing user code prints can reach the channel.
Needs no third-party package and opens no port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from ....protocol.lines import LineDecoder, binary_header, encode_text
from ....protocol.reads import READ_SIZE, limit_read_size
from ....protocol.replies import error_reply
from ...settings import Settings
from ..contract import LoopInbox, QueuedConnection, TransportHandlers

__all__ = ["StdioConnection", "StdioTransport"]

log = logging.getLogger("liaison.transport")

# Bytes the pipe transport may hold beyond what the pipe takes before the outbox waits.
_PIPE_HIGH_WATER = 256 * 2**10
# A larger pipe than Linux's 64 KiB default: a 2 MB message crosses in 2 wake-ups, not 32.
_PIPE_SIZE = 2**20


class StdioConnection(QueuedConnection):
    """The one peer: a thread-safe outbox in front of the output pipe.

    Flow control is :class:`QueuedConnection`'s, as over WebSocket; here reading pauses
    on the input pipe, and a peer dropped for not reading stops the liaison
    (``on_lost``). Everything queued in one turn of the event loop leaves in one write.

    Its lifecycle (contract.ConnectionState) is moved by QueuedConnection: to CLOSING when
    the peer is dropped or the transport closes (``flush_all``: what is queued is handed
    to the pipe transport); to CLOSED once the output pipe is closed (``writer_stopped``).
    """

    def __init__(
        self,
        inbox: LoopInbox,
        max_pending: int,
        on_lost: Callable[[str], None],
        read_timeout: float = 60.0,
    ) -> None:
        super().__init__(inbox, max_pending, read_timeout)
        self._on_lost = on_lost
        self._flush_pending = False
        self._writable = True  # the pipe transport is under its high-water mark
        self._on_answered: Callable[[], None] | None = None  # see when_answered
        self.writer: asyncio.WriteTransport | None = None
        self.reader: asyncio.ReadTransport | None = None

    def __repr__(self) -> str:
        return f"<StdioConnection {self.id}>"

    def when_answered(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (loop thread) once no message read awaits its reply: now if
        none does, else when the last reply is queued."""
        if self._unanswered:
            self._on_answered = callback
        else:
            callback()

    def _enqueue_reply(self, data: bytes | bytearray) -> None:
        super()._enqueue_reply(data)
        if self._on_answered is not None and not self._unanswered:
            self._on_answered()

    def _start_writing(self) -> None:
        if not self._flush_pending and self._writable:
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _pause_reading(self) -> None:
        if self.reader is not None:
            self.reader.pause_reading()

    def _resume_reading(self) -> None:
        if self.reader is not None:
            self.reader.resume_reading()

    def _drop(self, reason: str) -> None:
        self._on_lost(reason)

    def _flush(self) -> None:
        """Write what is queued, in one write, while the pipe transport has room."""
        self._flush_pending = False
        writer = self.writer
        if writer is None or writer.is_closing():
            return
        pieces: list[bytes | bytearray] = []
        outbox = self._outbox
        size = 0
        while outbox and size < _PIPE_HIGH_WATER:
            data = outbox.popleft()
            assert data is not None  # this outbox has no end mark: closing flushes it
            size += len(data)
            if type(data) is bytes:
                pieces.append(encode_text(data))
            else:  # a bytearray (protocol.frames.Frame) is a binary frame
                pieces += (binary_header(len(data)), data, b"\n")
            self._sent(data)
        if pieces:
            writer.writelines(pieces)
        if outbox and self._writable:  # more than one batch: the rest on the next turn
            self._flush_pending = True
            asyncio.get_running_loop().call_soon(self._flush)
        self._check_room()

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        if self._outbox:
            self._start_writing()

    def flush_all(self) -> None:
        """Hand everything queued to the pipe transport, room or not, and queue nothing
        more (when closing)."""
        self._writable = True
        while self._outbox and self.writer is not None and not self.writer.is_closing():
            self._flush()
        self._to_closing()


class _Input(asyncio.Protocol):
    def __init__(self, transport: StdioTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._transport.data_received(data)

    def eof_received(self) -> None:
        self._transport.input_ended()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            self._transport.input_ended()
        else:
            self._transport.lost(f"stdin failed: {exc}")


class _Output(asyncio.BaseProtocol):
    def __init__(self, transport: StdioTransport) -> None:
        self._transport = transport

    def pause_writing(self) -> None:
        self._transport.connection.pause_writing()

    def resume_writing(self) -> None:
        self._transport.connection.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport.output_closed(exc)


class StdioTransport:
    """Serves the one peer on ``input_fd`` and ``output_fd``, handing every message to
    ``handlers.on_message``; calls ``handlers.request_stop`` once when the peer goes (a
    broken output pipe, a peer that reads nothing, a failed read) or has said all it will
    (EOF on the input: once every message read is answered), and ``handlers.on_close``
    with the connection once it is closed (:meth:`close`). It reads nothing until
    :meth:`start_reading`, so the start marker can go first."""

    def __init__(
        self,
        settings: Settings,
        handlers: TransportHandlers,
        *,
        input_fd: int = 0,
        output_fd: int = 1,
    ) -> None:
        self.settings = settings
        self.handlers = handlers
        self._fds = (input_fd, output_fd)
        self._decoder = LineDecoder(settings.max_message_size)
        self._lost = False
        self._input_ended = False
        self.connection: StdioConnection
        self._output_closed: asyncio.Future[None]
        self._loop: asyncio.AbstractEventLoop

    async def start(self) -> str:
        """Open the pipes, reading paused; returns ``"stdio"``, the address the markers
        name. A regular file serves too (``< commands.txt``). Raises OSError if it cannot."""
        loop = self._loop = asyncio.get_running_loop()
        inbox = LoopInbox(loop)
        self.connection = StdioConnection(
            inbox, self.settings.max_pending, self._not_reading, self.settings.client_read_timeout
        )
        self._output_closed = loop.create_future()
        input_fd, output_fd = self._fds
        for fd in (input_fd, output_fd):
            _enlarge_pipe(fd)
        try:
            # The pipe transports own these file objects and close them; the fds stay open.
            output = open(output_fd, "wb", buffering=0, closefd=False)  # noqa: SIM115
            input_ = open(input_fd, "rb", buffering=0, closefd=False)  # noqa: SIM115
            writer = await _open_writer(loop, _Output(self), output)
            reader = await _open_reader(loop, _Input(self), input_)
        except OSError as error:  # the runtime prints strerror: say which channel
            raise OSError(error.errno, f"cannot open stdio: {error.strerror or error}") from error
        reader.pause_reading()
        # Low water 0: the outbox refills the transport once its buffer is empty; the
        # pipe (1 MiB) still holds data then, so the peer never waits on that.
        writer.set_write_buffer_limits(high=_PIPE_HIGH_WATER, low=0)
        self.connection.writer = writer
        self.connection.reader = reader
        return "stdio"

    def start_reading(self) -> None:
        """Begin reading messages (any thread): call it once the start marker is out."""
        connection = self.connection
        assert connection.reader is not None
        self._loop.call_soon_threadsafe(connection.reader.resume_reading)

    def data_received(self, data: bytes) -> None:
        for message in self._decoder.feed(data):
            self._handle(message)
        self.connection._check_room()

    def _handle(self, message: str | bytes | Exception) -> None:
        connection = self.connection
        if isinstance(message, (str, bytes)):
            connection.take(message, self.handlers.on_message)
        else:
            connection.take_invalid(error_reply(message, None, None))

    def input_ended(self) -> None:
        """EOF on the input: no more messages (``< commands.txt`` ends at once). Every
        message read is still answered, commands run to their end; then the stop."""
        if self._input_ended or self._lost:
            return
        self._input_ended = True
        for message in self._decoder.end():  # a last line without its newline
            self._handle(message)
        log.info("stdin was closed: stopping once every message read is answered")
        self.connection.when_answered(lambda: self.lost("every message read is answered"))

    def _not_reading(self, reason: str) -> None:
        log.warning("%s: stopping", reason)
        self.lost(reason)

    def lost(self, reason: str) -> None:
        if self._lost:
            return
        self._lost = True
        log.info("%s: stopping", reason)
        self.handlers.request_stop()

    def broadcast(self, data: bytes) -> None:
        """Send ``data`` to the peer; callable from any thread."""
        self.connection.push_unsolicited(data)

    async def close(self) -> None:
        """Write what is queued and close the pipes (waits at most a second), then hand
        the connection to ``handlers.on_close``: no message of the peer is handled after
        this. The fds stay open: the stop marker follows."""
        self._lost = True  # from here on the pipes closing is no news
        connection = self.connection
        try:
            await self._close_pipes(connection)
        finally:
            self.handlers.on_close(connection)

    async def _close_pipes(self, connection: StdioConnection) -> None:
        if connection.reader is not None:
            connection.reader.close()
        writer = connection.writer
        connection.flush_all()
        if writer is None or writer.is_closing():
            return
        writer.close()  # the pipe transport writes its buffer out, then closes
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._output_closed), 1.0)
        if not self._output_closed.done():
            writer.abort()  # the peer does not read: give up on the rest

    def output_closed(self, exc: Exception | None) -> None:
        self.connection.writer_stopped()
        if not self._output_closed.done():
            self._output_closed.set_result(None)
        self.lost("stdout was closed" if exc is None else f"stdout failed: {exc}")


async def _open_writer(
    loop: asyncio.AbstractEventLoop, protocol: _Output, file: Any
) -> asyncio.WriteTransport:
    try:
        writer, _ = await loop.connect_write_pipe(lambda: protocol, file)
    except ValueError:  # a regular file (`> out.txt`): writes to it never wait
        return _FileWriter(file.fileno())
    return writer


async def _open_reader(
    loop: asyncio.AbstractEventLoop, protocol: _Input, file: Any
) -> asyncio.ReadTransport:
    try:
        reader, _ = await loop.connect_read_pipe(lambda: protocol, file)
    except ValueError:  # a regular file (`< in.txt`): no event loop can poll one
        return _FileReader(loop, protocol, file.fileno())
    limit_read_size(reader)
    return reader


class _FileWriter(asyncio.WriteTransport):
    """Blocking writes to a regular file, in the shape of a pipe transport."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._closing = False

    def write(self, data: Any) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def abort(self) -> None:
        self._closing = True


class _FileReader(asyncio.ReadTransport):
    """Reads a regular file on a thread of its own, in the shape of a pipe transport.

    The thread starts at the first :meth:`resume_reading`: started at once, it would
    read (and the liaison answer) messages before the start marker is out.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: _Input, fd: int) -> None:
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self._fd = fd
        self._go = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None

    def _read(self) -> None:
        while self._go.wait() and not self._closing:
            data = os.read(self._fd, READ_SIZE)
            try:
                if not data:
                    self._loop.call_soon_threadsafe(self._protocol.eof_received)
                    return
                self._loop.call_soon_threadsafe(self._deliver, data)
            except RuntimeError:  # the loop has closed: the liaison is stopping
                return

    def _deliver(self, data: bytes) -> None:
        if not self._closing:  # read before close() but delivered after: not handled
            self._protocol.data_received(data)

    def pause_reading(self) -> None:
        self._go.clear()

    def resume_reading(self) -> None:
        self._go.set()
        if self._thread is None and not self._closing:
            self._thread = threading.Thread(target=self._read, name="liaison-stdin", daemon=True)
            self._thread.start()

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True
        self._go.set()


def _enlarge_pipe(fd: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    import fcntl

    with contextlib.suppress(OSError):  # not a pipe, or over the user's limit: keep it
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
