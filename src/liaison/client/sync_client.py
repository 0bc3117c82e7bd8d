"""The blocking client: an :class:`AsyncClient` driven from a private event-loop thread.

Each :class:`Client` owns one daemon thread running an asyncio loop, on which its
AsyncClient lives. A method submits the coroutine to that loop and blocks on the result,
so the two clients share every line of protocol logic, and a Client is thread-safe: calls
from several threads are in flight at once, their replies matched by id. Callbacks and
push handlers run on the loop thread; a blocking Client method called from one of them
raises RuntimeError instead of deadlocking. Interrupting a waiting call (Ctrl-C) sends
``cancel`` for it.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
from collections.abc import Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from .async_client import AsyncClient, Callback, connect_client
from .proxies import Remote

__all__ = ["Client", "connect", "open_client"]

T = TypeVar("T")


class _LoopThread:
    """An event loop on a daemon thread that runs coroutines for other threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="liaison-client", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and return its result (or raise its error)."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError(
                "a blocking Client method was called from a callback or handler, which "
                "runs on the client's own thread: it would wait for itself forever"
            )
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # KeyboardInterrupt while waiting: cancel the task (and call)
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class Client:
    """A connection to a liaison, for blocking code. Open it with :func:`connect`.

    The methods mirror :class:`AsyncClient`'s and block until the reply. Use it as a
    context manager, or call :meth:`close`.
    """

    def __init__(self, portal: _LoopThread, client: AsyncClient) -> None:
        """Use :func:`connect` or :func:`~liaison.client.spawn` rather than this."""
        self._portal = portal
        self._client = client
        self.url = client.url
        self.token = client.token  # a spawned liaison's token, for other connections

    def __repr__(self) -> str:
        return repr(self._client).replace("AsyncClient", "Client", 1)

    @property
    def closed(self) -> bool:
        """True once the connection is closed (by :meth:`close` or by the liaison)."""
        return self._client.closed

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The liaison process :func:`~liaison.client.spawn` started, else None."""
        child = self._client.child
        return None if child is None else child.process

    @property
    def output(self) -> str:
        """What the commands of the liaison :func:`~liaison.client.spawn` started printed
        to its stdout (the last 64 KiB); "" for a liaison connected to."""
        child = self._client.child
        return "" if child is None else child.output

    def call(
        self,
        command: str,
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        concurrent: bool = False,
        on_progress: Callback | None = None,
        on_partial: Callback | None = None,
        binary: bool = False,
        echo: bool = False,
        id: str | None = None,
        ref: bool | str = False,
    ) -> Any:
        """Send any command with options; see :meth:`AsyncClient.call`."""
        return self._portal.run(
            self._client.call(
                command, args, kwargs, timeout=timeout, concurrent=concurrent,
                on_progress=on_progress, on_partial=on_partial, binary=binary, echo=echo, id=id,
                ref=ref,
            )
        )  # fmt: skip

    def run(self, target: str, /, *args: Any, **kwargs: Any) -> Any:
        """``target(*args, **kwargs)`` in the liaison; a generator's items as a list."""
        return self._portal.run(self._client.run(target, *args, **kwargs))

    def attempt(self, target: str, /, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The ``try`` command: ``{"success": bool, "result": value or traceback text}``."""
        return self._portal.run(self._client.attempt(target, *args, **kwargs))

    def get(self, target: str | Remote) -> Any:
        """The value of ``target`` (a string, or a :class:`Remote`'s value)."""
        return self._portal.run(self._client.get(target))

    def module(self, name: str) -> Remote:
        """The module ``name`` of the liaison, as a :class:`Remote` (no round trip):
        ``client.module("numpy").arange(10)``; see :meth:`AsyncClient.module`."""
        return Remote(self._client, self._portal.run, name, None)

    def release(self, *references: str | Remote) -> list[str]:
        """Free references made for this connection; see :meth:`AsyncClient.release`."""
        return self._portal.run(self._client.release(*references))

    def exists(self, target: str) -> bool:
        """Whether ``target`` resolves."""
        return self._portal.run(self._client.exists(target))

    def init(self, name: str, cls: str, /, *args: Any, **kwargs: Any) -> str:
        """Store ``cls(*args, **kwargs)`` as ``name`` in the namespace; returns ``name``."""
        return self._portal.run(self._client.init(name, cls, *args, **kwargs))

    def register(self, name: str, target: str) -> str:
        """Store the object ``target`` resolves to as ``name``; returns ``name``."""
        return self._portal.run(self._client.register(name, target))

    def store(self, name: str, value: Any) -> str:
        """Store ``value`` as ``name``; returns ``name``."""
        return self._portal.run(self._client.store(name, value))

    def ping(self) -> str:
        """``"pong"``, answered at once even while a command runs."""
        return self._portal.run(self._client.ping())

    def names(self) -> list[str]:
        """The sorted names of the liaison's namespace."""
        return self._portal.run(self._client.names())

    def describe(self, target: str) -> dict[str, Any]:
        """The signature and doc of ``target`` (see docs/protocol.md)."""
        return self._portal.run(self._client.describe(target))

    def commands(self) -> dict[str, Any]:
        """Every command of the liaison with its arguments and doc."""
        return self._portal.run(self._client.commands())

    def cancel(self, id: str) -> bool:
        """Cancel this connection's call ``id``; True if it was queued or running."""
        return self._portal.run(self._client.cancel(id))

    def configure(self, **options: str) -> dict[str, str]:
        """Set options of this connection; see :meth:`AsyncClient.configure`."""
        return self._portal.run(self._client.configure(**options))

    def shutdown(self) -> bool:
        """Stop the liaison gracefully (the connection then closes)."""
        return self._portal.run(self._client.shutdown())

    def on(self, tag: str, handler: Callback) -> None:
        """Call ``handler(message)`` for pushed messages tagged ``tag`` (``"*"``: all).

        Handlers run on the client's thread."""
        self._client.on(tag, handler)

    def off(self, tag: str, handler: Callback | None = None) -> None:
        """Remove ``handler`` (or, without it, every handler) for ``tag``."""
        self._client.off(tag, handler)

    def close(self) -> None:
        """Close the connection and stop the client's thread; a spawned liaison is shut
        down and waited for. Calling it again does nothing."""
        if self._portal.loop.is_closed():
            return
        try:
            self._portal.run(self._client.close())
        finally:
            self._portal.stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_client(opening: Coroutine[Any, Any, AsyncClient]) -> Client:
    """A Client around the AsyncClient ``opening`` makes on a new loop thread."""
    portal = _LoopThread()
    try:
        return Client(portal, portal.run(opening))
    except BaseException:
        portal.stop()
        raise


def connect(
    url: str,
    token: str | None = None,
    timeout: float | None = 10.0,
    *,
    origin: str | None = None,
    max_size: int | None = None,
) -> Client:
    """Connect to the liaison at ``url`` (``ws://HOST:PORT``).

    ``token``: presented as ``Authorization: Bearer``; ``timeout``: seconds the opening
    handshake may take (not a limit on calls: pass ``timeout=`` to :meth:`Client.call`);
    ``origin``: an ``Origin`` header to send (none by default); ``max_size``: the largest
    message accepted, in bytes (None: no limit). Raises :class:`ConnectFailed`.
    """

    async def opening() -> AsyncClient:
        return await connect_client(url, token, timeout, origin, max_size)

    return open_client(opening())
