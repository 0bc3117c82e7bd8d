"""What the WebSocket server does when the process runs out of file descriptors.

asyncio's accept loop reports a failed ``accept()`` (EMFILE) through the loop's exception
handler, once for each of up to 100 tries per wake-up, each with a traceback (206,699 in
under a minute), pauses for 1 s and tries again, while the clients wait unanswered in the
listen backlog. :class:`DescriptorShortage` is that exception handler instead: it spends
one descriptor held in reserve to accept each waiting client and answer it 503,
and logs one line when the shortage starts and at most one a minute after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import time
from typing import Any

__all__ = ["REFUSAL", "REQUEST_WAIT_SECONDS", "SHORTAGE_LOG_INTERVAL_SECONDS", "DescriptorShortage"]

log = logging.getLogger("liaison.transport")

_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})
# Like websockets' own 503 (`--max-connections`), with no upgrade.
_REFUSAL_BODY = b"the liaison is out of file descriptors\n"
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_REFUSAL_BODY), _REFUSAL_BODY)
)
SHORTAGE_LOG_INTERVAL_SECONDS = 60.0
# How long a refused client may take to send its request; clients wait in line meanwhile.
REQUEST_WAIT_SECONDS = 1.0
_MAX_REQUEST_HEAD = 16384  # as websockets' limits on the request line and headers


class DescriptorShortage:
    """The loop's exception handler: refuses clients with 503 when ``accept()`` fails
    for lack of descriptors, logs that rarely, and passes every other report on."""

    def __init__(self) -> None:
        self._reserve: int | None = _open_reserve()
        self._refusing: asyncio.Task[None] | None = None
        self._refused = 0  # since the last log line
        self._logged_at: float | None = None  # None: no shortage logged yet
        self._closed = False

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        listener = context.get("socket")
        if not (isinstance(error, OSError) and error.errno in _OUT_OF_DESCRIPTORS and listener):
            loop.default_exception_handler(context)
            return
        # asyncio calls this for each of its tries in a row: one refusing task is enough.
        if self._refusing is None or self._refusing.done():
            self._refusing = loop.create_task(self._refuse_waiting_clients(listener.fileno()))
        self._log(error)

    def close(self) -> None:
        """Give the reserve descriptor back and stop refusing (the server has closed)."""
        self._closed = True
        if self._refusing is not None:
            self._refusing.cancel()
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None

    def _log(self, error: OSError) -> None:
        now = time.monotonic()
        if self._logged_at is None:
            log.warning(
                "out of file descriptors (%s): refusing new connections with 503 until "
                "some close", error.strerror,
            )  # fmt: skip
            self._logged_at, self._refused = now, 0
        elif now - self._logged_at >= SHORTAGE_LOG_INTERVAL_SECONDS:
            log.warning(
                "out of file descriptors: %d more connections refused with 503 in the "
                "last %.0f s", self._refused, now - self._logged_at,
            )  # fmt: skip
            self._logged_at, self._refused = now, 0

    async def _refuse_waiting_clients(self, listener_fd: int) -> None:
        """Accept each client waiting on the (non-blocking) listener and answer it 503,
        one at a time, with the reserve descriptor."""
        # A socket object over asyncio's listener, detached after: closing it would
        # close the listener.
        listener = socket.socket(fileno=listener_fd)
        try:
            while True:
                if self._reserve is not None:
                    os.close(self._reserve)
                    self._reserve = None
                try:
                    client, _ = listener.accept()
                except OSError:  # none waiting (BlockingIOError), or still no descriptor
                    break
                with client:
                    await _refuse(client)
                self._refused += 1
                self._reserve = _open_reserve()
        finally:
            listener.detach()
            if self._reserve is None and not self._closed:
                self._reserve = _open_reserve()


async def _refuse(client: socket.socket) -> None:
    """Read the client's request, then answer 503 and close: closing with its request
    unread would reset the connection, and the client could lose the answer."""
    loop = asyncio.get_running_loop()
    client.setblocking(False)
    with contextlib.suppress(OSError, asyncio.TimeoutError):
        await asyncio.wait_for(_read_request_head(loop, client), REQUEST_WAIT_SECONDS)
    with contextlib.suppress(OSError):  # the client left already
        await loop.sock_sendall(client, REFUSAL)
        client.shutdown(socket.SHUT_WR)


async def _read_request_head(loop: asyncio.AbstractEventLoop, client: socket.socket) -> None:
    received = b""
    while b"\r\n\r\n" not in received and len(received) < _MAX_REQUEST_HEAD:
        chunk = await loop.sock_recv(client, 4096)
        if not chunk:
            return
        received += chunk


def _open_reserve() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return None
