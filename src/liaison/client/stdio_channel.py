"""A spawned ``python -m liaison.stdio`` child's pipes, as the message channel of an
:class:`~liaison.client.async_client.AsyncClient`.

It has the part of a websockets connection the client uses (``send``, ``close``, async
iteration, ``close_code``/``close_reason``), so the client's message handling is the
same over both transports. The framing is liaison.protocol.lines.
"""

from __future__ import annotations

import asyncio
import collections
from typing import IO

from ..constants import START_MARKER, STOP_MARKER
from ..protocol.lines import LineDecoder, binary_header, encode_text
from ..protocol.reads import limit_read_size

__all__ = ["ChannelClosed", "StdioChannel"]

_STARTED = f"{START_MARKER}@stdio"
_STOPPED = f"{STOP_MARKER}@stdio"
_EOF = None


class _Pipes(asyncio.Protocol):
    """Both pipes' events, handed to the channel."""

    def __init__(self, channel: StdioChannel, reading: bool) -> None:
        self._channel = channel
        self._reading = reading

    def data_received(self, data: bytes) -> None:
        self._channel.feed(data)

    def eof_received(self) -> None:
        self._channel.feed_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._reading:
            self._channel.feed_eof()
        else:  # stdin broke or closed: a send waiting for room must end, not wait forever
            self._channel.writable.set()

    def pause_writing(self) -> None:
        self._channel.writable.clear()

    def resume_writing(self) -> None:
        self._channel.writable.set()


class ChannelClosed(Exception):
    """The child's pipes have closed (what websockets' ConnectionClosed is to a WebSocket)."""


class StdioChannel:
    """Messages over a child's stdin (to it) and stdout (from it)."""

    close_code: int | None = None
    closed_error: type[Exception] = ChannelClosed  # what send and receive raise once closed

    def __init__(self) -> None:
        self.close_reason = ""
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.writable = asyncio.Event()
        self.writable.set()
        self._decoder = LineDecoder(2**62)  # the liaison limits what it sends, not us
        self._messages: collections.deque[str | bytes | None] = collections.deque()
        self._arrived = asyncio.Event()
        self._writer: asyncio.WriteTransport | None = None
        self._reader: asyncio.ReadTransport | None = None

    @classmethod
    async def open(cls, stdin: IO[bytes], stdout: IO[bytes], timeout: float | None) -> StdioChannel:
        """Read the child's start marker (the first line) and return the channel.
        Raises ChannelClosed if stdout ends first, TimeoutError after ``timeout``."""
        loop = asyncio.get_running_loop()
        channel = cls()
        channel._writer, _ = await loop.connect_write_pipe(lambda: _Pipes(channel, False), stdin)
        channel._reader, _ = await loop.connect_read_pipe(lambda: _Pipes(channel, True), stdout)
        limit_read_size(channel._reader)
        await asyncio.wait_for(asyncio.shield(channel.started), timeout)
        return channel

    def feed(self, data: bytes) -> None:
        for message in self._decoder.feed(data):
            if isinstance(message, Exception):
                self.close_reason = f"unreadable output from the liaison: {message}"
                self.feed_eof()
                return
            if not self.started.done():
                if message == _STARTED:
                    self.started.set_result(None)
                else:
                    self.close_reason = f"the first line was not the start marker: {message!r}"
                    self.feed_eof()
                continue
            if message == _STOPPED:
                self.close_reason = "the liaison stopped"
                continue
            self._messages.append(message)
        self._arrived.set()

    def feed_eof(self) -> None:
        if not self.started.done():
            self.started.set_exception(ChannelClosed())
        if not self._messages or self._messages[-1] is not _EOF:
            self._messages.append(_EOF)
        self._arrived.set()

    async def send(self, data: str | bytes) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise ChannelClosed()
        if isinstance(data, str):
            writer.write(encode_text(data.encode()))
        else:
            writer.writelines([binary_header(len(data)), data, b"\n"])
        await self.writable.wait()  # the pipe is full: wait till the liaison reads
        if writer.is_closing():  # ... or till the pipe broke or close() was called
            raise ChannelClosed()

    async def close(self) -> None:
        """Close the child's stdin (a stdio liaison stops on EOF) and stop reading."""
        if self._writer is not None:
            self._writer.close()
        self.writable.set()  # a send waiting for room gives up (it raises ChannelClosed)
        if self._reader is not None:
            self._reader.close()
        self.feed_eof()

    def __aiter__(self) -> StdioChannel:
        return self

    async def __anext__(self) -> str | bytes:
        while not self._messages:
            self._arrived.clear()
            await self._arrived.wait()
        message = self._messages[0]
        if message is _EOF:
            raise StopAsyncIteration
        self._messages.popleft()
        return message

    def __repr__(self) -> str:
        return f"<StdioChannel {self.close_reason or 'open'}>"
