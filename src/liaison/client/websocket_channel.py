"""The client's WebSocket: the one module of the client that needs the websockets package.

Imported when a WebSocket is opened, so that a client of a stdio child (``spawn(...,
transport="stdio")``) runs with the core dependency alone.
"""

from __future__ import annotations

import asyncio
from typing import cast

from ..protocol.reads import limit_read_size
from .errors import ConnectFailed

try:
    from websockets.asyncio.client import ClientConnection
    from websockets.asyncio.client import connect as websocket_connect
    from websockets.exceptions import (
        ConnectionClosed,
        InvalidStatus,
        InvalidURI,
        WebSocketException,
    )
    from websockets.typing import Origin
except ImportError as missing:
    raise ImportError(
        'a WebSocket needs the websockets package: pip install "liaison-backend[websocket]"',
        name=missing.name,
    ) from missing

__all__ = ["WebSocketChannel", "open_websocket"]


class WebSocketChannel(ClientConnection):
    """websockets' client connection, reading at most ``READ_SIZE`` bytes at a time
    (``create_connection``): asyncio's 256 KiB reads cost an mmap and munmap each."""

    closed_error: type[Exception] = ConnectionClosed  # what send and receive raise once closed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        limit_read_size(transport)
        super().connection_made(transport)


async def open_websocket(
    url: str,
    token: str | None,
    timeout: float | None,
    origin: str | None,
    max_size: int | None,
) -> WebSocketChannel:
    """Open the WebSocket, presenting ``token`` as a Bearer header; raises ConnectFailed."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else None
    try:
        connection = await websocket_connect(
            url,
            additional_headers=headers,
            origin=None if origin is None else Origin(origin),
            open_timeout=timeout,
            max_size=max_size,
            compression=None,  # loopback peers: deflate costs more CPU than it saves
            close_timeout=2,
            create_connection=WebSocketChannel,
        )
    except InvalidStatus as refused:
        response = refused.response
        body = response.body.decode(errors="replace").strip() if response.body else ""
        raise ConnectFailed(
            f"{url} refused the connection: HTTP {response.status_code} {body}".rstrip(),
            response.status_code,
        ) from None
    except InvalidURI as error:
        raise ConnectFailed(f"not a WebSocket URL: {url!r} ({error})") from None
    except (OSError, asyncio.TimeoutError, WebSocketException) as error:
        raise ConnectFailed(
            f"could not connect to {url}: {error or type(error).__name__}"
        ) from error
    return cast(WebSocketChannel, connection)  # create_connection made it one
