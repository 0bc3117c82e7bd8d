"""The asyncio client: one connection (a WebSocket, or a stdio child's pipes), many calls
in flight, replies matched by id.

A reader task owns the receiving side. Each call registers a future under a fresh
uuid4-hex ``id``, sends its message and awaits the future; the reader resolves it with
the final reply and routes ``progress`` and ``partial`` messages to the call's callbacks.
Any other message (one without a pending ``id``) is *pushed*: it goes to the handlers
registered with :meth:`AsyncClient.on`. When the connection drops, the reader fails every
pending call with :class:`ConnectionLost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

import orjson

from ..protocol.encoding import dumps
from ..protocol.errors import InvalidMessage
from ..protocol.frames import decode_frame, encode_frame
from .errors import (
    CallTimeout,
    ClientError,
    ConnectionLost,
    RemoteError,
    remote_error,
)
from .proxies import Remote, as_is, refusing_module_paths, target_of

if TYPE_CHECKING:
    import subprocess

    from .stdio_channel import StdioChannel
    from .websocket_channel import WebSocketChannel

__all__ = [
    "AsyncClient",
    "Callback",
    "ChildProcess",
    "Opening",
    "connect_async",
    "connect_client",
]

log = logging.getLogger("liaison.client")

Callback = Callable[[Any], object]


class ChildProcess(Protocol):
    """A liaison process a client owns and stops when it closes (spawn's ChildLiaison)."""

    @property
    def process(self) -> subprocess.Popen[bytes]: ...

    @property
    def output(self) -> str:
        """What its commands printed to stdout (the last 64 KiB)."""
        ...

    def stop(self, graceful: bool = True, timeout: float = 10.0) -> int:
        """Wait for the process to exit (asking it first if not ``graceful``); its status."""
        ...


"""A progress, partial or push callback: called with one value, its result ignored."""

_FINAL_TAGS = ("response", "error")
_CALL_TAGS = ("response", "error", "progress", "partial")

ClientT = TypeVar("ClientT")


@dataclass
class _Pending:
    future: asyncio.Future[dict[str, Any]]
    on_progress: Callback | None
    on_partial: Callback | None
    callback_error: Exception | None = None


class AsyncClient:
    """A connection to a liaison, for asyncio code. Open it with :func:`connect_async`.

    Every method is a coroutine; any number of calls may be in flight at once. Callbacks
    and push handlers run in the event loop, between messages: they must not block.
    """

    #: Seconds a call with a ``timeout`` waits past it for the liaison's TimeoutError
    #: reply before it sends ``cancel`` and raises :class:`CallTimeout` by itself.
    reply_margin: float = 1.0

    def __init__(
        self, websocket: WebSocketChannel | StdioChannel, url: str, token: str | None = None
    ) -> None:
        """Wrap an open connection; use :func:`connect_async` rather than this.

        ``url`` and ``token`` (None without one) say how it was opened: a frontend may
        open its own connection with them.
        """
        self.url = url
        self.token = token
        self._websocket = websocket
        # What its send and receive raise once it has closed: each channel names its own,
        # so that the stdio client needs no websockets package.
        self._channel_closed = websocket.closed_error
        self._pending: dict[str, _Pending] = {}
        self._abandoned: set[str] = set()  # ids whose late messages are dropped
        self._handlers: dict[str, list[Callback]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._lost: ConnectionLost | None = None
        self._closing = False
        self._closed = False
        self.child: ChildProcess | None = None  # set by spawn_async: stopped by close()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def __repr__(self) -> str:
        state = "closed" if self._lost is not None else "open"
        return f"<AsyncClient {self.url} {state}, {len(self._pending)} pending>"

    @property
    def closed(self) -> bool:
        """True once the connection is closed (by :meth:`close` or by the liaison)."""
        return self._lost is not None

    # -- calls --------------------------------------------------------------------------

    async def call(
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
        """Send ``command`` with ``args`` and ``kwargs``; return the reply's ``response``.

        ``timeout``: seconds the liaison lets the command run (then it replies
        TimeoutError); ``concurrent``: run it on a worker thread, out of order;
        ``on_progress(data)``: called for each progress message of this call (without it,
        they go to ``on("progress")`` handlers); ``on_partial(item)``: stream a generator's
        items to it, the response is then the number of items; ``binary``: have numpy
        arrays and bytes in the result sent raw (they arrive as numpy arrays and bytes;
        arguments holding them are always sent so); ``echo``: have the reply's ``evt``
        carry the arguments back (the client matches replies by id, so by default it
        does not, as in the JavaScript client); ``id``: the message id (default: a fresh
        uuid4 hex), for :meth:`cancel`; ``ref``: ``True`` or ``"auto"`` to have the
        result kept in the liaison and a reference object returned (see :meth:`module`).

        Raises :class:`RemoteError` (:class:`CallCancelled`, :class:`CallTimeout`) for an
        error reply, :class:`ConnectionLost` if the connection drops first, and the first
        exception a callback raised, once the reply is in. Cancelling the awaiting task
        sends ``cancel`` for the call.
        """
        if self._lost is not None:
            raise ConnectionLost(str(self._lost))
        if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        call_id = uuid.uuid4().hex if id is None else id
        if call_id in self._pending:
            raise ValueError(f"a call with id {call_id!r} is already pending")
        message: dict[str, Any] = {
            "command": {"command": command, "args": list(args), "kwargs": dict(kwargs or {})},
            "id": call_id,
            "echo": echo,
        }
        if timeout is not None:
            message["timeout"] = timeout
        if concurrent:
            message["concurrent"] = True
        if on_partial is not None:
            message["stream"] = True
        if binary:
            message["binary"] = True
        if ref:
            message["ref"] = ref
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        pending = _Pending(future, on_progress, on_partial)
        self._pending[call_id] = pending
        try:
            await self._send(message)
            if timeout is None:
                reply = await future
            else:
                try:
                    reply = await asyncio.wait_for(future, timeout + self.reply_margin)
                except asyncio.TimeoutError:
                    self._abandoned.add(call_id)
                    await self._request_cancel(call_id)
                    raise CallTimeout(
                        "TimeoutError",
                        f"no reply within {timeout} s (+{self.reply_margin} s margin); "
                        f"sent cancel for call {call_id}",
                    ) from None
        except asyncio.CancelledError:
            if not future.done() or future.cancelled():
                self._abandoned.add(call_id)
                self._in_background(self._request_cancel(call_id))
            raise
        finally:
            del self._pending[call_id]
        if pending.callback_error is not None:
            raise pending.callback_error
        if reply.get("tag") != "response" or "response" not in reply:
            raise remote_error(reply)
        return reply["response"]

    async def run(self, target: str, /, *args: Any, **kwargs: Any) -> Any:
        """``target(*args, **kwargs)`` in the liaison; a generator's items as a list."""
        return await self.call("run", [target, *args], kwargs)

    async def attempt(self, target: str, /, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The ``try`` command: ``{"success": True, "result": value}``, or
        ``{"success": False, "result": "formatted exception"}`` instead of raising."""
        result: dict[str, Any] = await self.call("try", [target, *args], kwargs)
        return result

    async def get(self, target: str | Remote) -> Any:
        """The value of ``target``; for a :class:`Remote`, as ``await remote`` reads it."""
        if isinstance(target, Remote):
            return await target._ask("get", [target._target], {})
        return await self.call("get", [target])

    def module(self, name: str) -> Remote:
        """The module ``name`` of the liaison, as a :class:`Remote` (no round trip).

        ``await client.module("math").sqrt(2)``; results that are not plain JSON come
        back as Remotes for references (see :class:`Remote`).
        """
        return Remote(self, as_is, name, None)

    async def release(self, *references: str | Remote) -> list[str]:
        """Free references made for this connection; all or none (NameNotFound names
        each unknown or already released one)."""
        return list(await self.call("release", [target_of(r) for r in references]))

    async def exists(self, target: str) -> bool:
        """Whether ``target`` resolves."""
        return bool(await self.call("exists", [target]))

    async def init(self, name: str, cls: str, /, *args: Any, **kwargs: Any) -> str:
        """Store ``cls(*args, **kwargs)`` as ``name`` in the namespace; returns ``name``."""
        return str(await self.call("init", [name, cls, *args], kwargs))

    async def register(self, name: str, target: str) -> str:
        """Store the object ``target`` resolves to as ``name``; returns ``name``."""
        return str(await self.call("register", [name, target]))

    async def store(self, name: str, value: Any) -> str:
        """Store ``value`` as ``name``; returns ``name``."""
        return str(await self.call("store", [name, value]))

    async def ping(self) -> str:
        """``"pong"``, answered at once even while a command runs."""
        return str(await self.call("ping"))

    async def names(self) -> list[str]:
        """The sorted names of the liaison's namespace."""
        return list(await self.call("names"))

    async def describe(self, target: str) -> dict[str, Any]:
        """The signature and doc of ``target`` (see docs/protocol.md)."""
        result: dict[str, Any] = await self.call("describe", [target])
        return result

    async def commands(self) -> dict[str, Any]:
        """Every command of the liaison with its arguments and doc."""
        result: dict[str, Any] = await self.call("commands")
        return result

    async def configure(self, **options: str) -> dict[str, str]:
        """Set options of this connection (``pushes="immediate"`` or ``"after-reply"``);
        returns all of them. The client sets ``pushes="immediate"`` when it connects."""
        result: dict[str, str] = await self.call("configure", (), options)
        return result

    async def cancel(self, id: str) -> bool:
        """Cancel this connection's call ``id``; True if it was queued or running.

        That call then raises :class:`CallCancelled`.
        """
        return bool(await self.call("cancel", [id]))

    async def shutdown(self) -> bool:
        """Stop the liaison gracefully (the connection then closes)."""
        return bool(await self.call("shutdown"))

    # -- pushed messages ----------------------------------------------------------------

    def on(self, tag: str, handler: Callback) -> None:
        """Call ``handler(message)`` for each pushed message whose ``tag`` is ``tag``;
        ``"*"`` receives every pushed message. A handler's exception is logged."""
        self._handlers.setdefault(tag, []).append(handler)

    def off(self, tag: str, handler: Callback | None = None) -> None:
        """Remove ``handler`` (or, without it, every handler) for ``tag``."""
        if handler is None:
            self._handlers.pop(tag, None)
        elif handler in self._handlers.get(tag, ()):
            self._handlers[tag].remove(handler)

    # -- closing ------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connection; pending calls raise :class:`ConnectionLost`. A spawned
        liaison is shut down and waited for. Calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        graceful = False
        if self.child is not None and self._lost is None:
            with contextlib.suppress(ClientError, asyncio.TimeoutError):
                graceful = await asyncio.wait_for(self.shutdown(), self.reply_margin + 4)
        self._closing = True
        await self._websocket.close()
        await self._reader
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.child is not None:
            await asyncio.to_thread(self.child.stop, graceful)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- the wire -----------------------------------------------------------------------

    async def _send(self, message: dict[str, Any]) -> None:
        with refusing_module_paths():
            # Arguments holding numpy arrays or bytes travel raw, in one binary frame.
            frame = encode_frame(message)
            data = dumps(message).decode() if frame is None else bytes(frame)
        try:
            await self._websocket.send(data)
        except self._channel_closed:
            await asyncio.shield(self._reader)  # it records why the connection ended
            raise ConnectionLost(str(self._lost)) from None

    async def _request_cancel(self, call_id: str) -> None:
        """Send ``cancel`` for ``call_id`` without waiting for its reply."""
        cancel_id = uuid.uuid4().hex
        self._abandoned.add(cancel_id)
        message = {"command": {"command": "cancel", "args": [call_id]}, "id": cancel_id}
        try:
            await self._send(message)
        except ConnectionLost:
            self._abandoned.discard(cancel_id)

    def _in_background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _read(self) -> None:
        try:
            async for data in self._websocket:
                try:
                    message = decode_frame(data) if isinstance(data, bytes) else orjson.loads(data)
                except (orjson.JSONDecodeError, InvalidMessage):
                    log.warning("dropped a malformed message from %s", self.url)
                    continue
                self._route(message)
        except self._channel_closed:
            pass
        finally:
            websocket = self._websocket
            if self._closing:
                reason = "the client was closed"
            else:
                reason = (
                    f"the connection to {self.url} was lost "
                    f"(close code {websocket.close_code}, reason {websocket.close_reason!r})"
                )
            self._lost = ConnectionLost(reason)
            for pending in self._pending.values():
                if not pending.future.done():
                    pending.future.set_exception(ConnectionLost(reason))

    def _route(self, message: Any) -> None:
        if isinstance(message, dict) and message.get("tag") in _CALL_TAGS:
            tag, call_id = message["tag"], message.get("id")
            pending = self._pending.get(call_id) if isinstance(call_id, str) else None
            if pending is not None:
                if tag in _FINAL_TAGS:
                    if not pending.future.done():
                        pending.future.set_result(message)
                    return
                callback = pending.on_progress if tag == "progress" else pending.on_partial
                if callback is not None:
                    if pending.callback_error is None:
                        try:
                            callback(message.get(tag))
                        except Exception as error:
                            pending.callback_error = error
                    return
            elif call_id in self._abandoned:
                if tag in _FINAL_TAGS:
                    self._abandoned.discard(call_id)
                return
        self._push(message)

    def _push(self, message: Any) -> None:
        tag = message.get("tag") if isinstance(message, dict) else None
        handlers = (
            [*self._handlers.get(tag, ()), *self._handlers.get("*", ())]
            if isinstance(tag, str)
            else list(self._handlers.get("*", ()))
        )
        if not handlers:
            log.debug("no handler for a pushed message with tag %r", tag)
        for handler in handlers:
            try:
                handler(message)
            except Exception:
                log.exception("a handler of pushed %r messages raised", tag)


async def connect_client(
    url: str,
    token: str | None,
    timeout: float | None,
    origin: str | None = None,
    max_size: int | None = None,
) -> AsyncClient:
    """Connect and opt in to pushed messages at once; raises ConnectFailed, or ImportError
    without the websockets package."""
    from .websocket_channel import open_websocket

    client = AsyncClient(await open_websocket(url, token, timeout, origin, max_size), url, token)
    # This client routes pushed messages by tag whenever they come, so it need not have
    # them held until its calls' replies, as liaison 1.0 clients do. A liaison that does
    # not know `configure` (2.0.0) sends them at once anyway.
    with contextlib.suppress(RemoteError):
        await client.call("configure", (), {"pushes": "immediate"})
    return client


class Opening(Generic[ClientT]):
    """What :func:`connect_async` returns: await it for the client, or use it in
    ``async with`` to have the client closed at the end of the block."""

    def __init__(self, open: Callable[[], Coroutine[Any, Any, ClientT]]) -> None:
        self._open = open
        self._client: ClientT | None = None

    def __await__(self) -> Generator[Any, None, ClientT]:
        return self._open().__await__()

    async def __aenter__(self) -> ClientT:
        self._client = await self._open()
        return self._client

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await cast(AsyncClient, self._client).close()


def connect_async(
    url: str,
    token: str | None = None,
    timeout: float | None = 10.0,
    *,
    origin: str | None = None,
    max_size: int | None = None,
) -> Opening[AsyncClient]:
    """Connect to the liaison at ``url`` (``ws://HOST:PORT``) for asyncio code.

    ``token``: presented as ``Authorization: Bearer``; ``timeout``: seconds the opening
    handshake may take (not a limit on calls: see :meth:`AsyncClient.call`); ``origin``:
    an ``Origin`` header to send (none by default); ``max_size``: the largest message
    accepted, in bytes (None: no limit). Raises :class:`ConnectFailed`.
    """

    async def open() -> AsyncClient:
        return await connect_client(url, token, timeout, origin, max_size)

    return Opening(open)
