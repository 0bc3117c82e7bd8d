"""A Python client for a liaison: call Python in another process over its WebSocket.

Blocking code::

    from liaison.client import RemoteError, connect, spawn

    with spawn() as client:  # starts `python -m liaison.websocket` with a fresh token
        statistic, pvalue = client.run("scipy.stats:ttest_ind", [1, 2, 3], [2, 4, 7],
                                       equal_var=False)
        client.store("data", [3, 1, 2])
        client.run("builtins:sorted", "$data")                # [1, 2, 3]
        client.call("run", ["time:sleep", 60], timeout=1)     # raises CallTimeout
    # closing shut the liaison down and reaped it

    with connect("ws://127.0.0.1:8765", token="...") as client:
        client.on("alert", print)                            # pushed messages
        client.call("run", ["my.module:fit", data], on_progress=print, concurrent=True)

asyncio code mirrors it::

    async with connect_async(url, token=token) as client:
        results = await asyncio.gather(*(client.run("math:factorial", n) for n in range(9)))

The command methods (``run``, ``attempt`` for ``try``, ``get``, ``exists``, ``init``,
``register``, ``store``, ``ping``, ``names``, ``describe``, ``commands``, ``cancel``,
``release``, ``configure``, ``shutdown``) pass their keyword arguments on to the remote
call untouched; per-call
options (``timeout``, ``concurrent``, ``on_progress``, ``on_partial``, ``binary``,
``id``) belong to :meth:`Client.call`, the full form. Error replies raise
:class:`RemoteError` (``.type``, ``.message``, ``.traceback``, ``.reply``).

How the sync :class:`Client` works: see :mod:`liaison.client.sync_client`.
A WebSocket (``connect``, ``spawn``'s default) needs the ``websockets`` package
(``pip install "liaison-backend[websocket]"``; ImportError naming it otherwise);
``spawn(transport="stdio")`` needs only the core dependency.
"""

from __future__ import annotations

from .async_client import AsyncClient, Callback, connect_async
from .errors import (
    CallCancelled,
    CallTimeout,
    ClientError,
    ConnectFailed,
    ConnectionLost,
    RemoteError,
    SpawnError,
)
from .proxies import Remote
from .spawn import spawn, spawn_async
from .sync_client import Client, connect

__all__ = [
    "AsyncClient",
    "CallCancelled",
    "CallTimeout",
    "Callback",
    "Client",
    "ClientError",
    "ConnectFailed",
    "ConnectionLost",
    "Remote",
    "RemoteError",
    "SpawnError",
    "connect",
    "connect_async",
    "spawn",
    "spawn_async",
]
