"""The I/O thread: an asyncio loop hosting one transport, beside the main thread's commands.

It also hears stop signals while the main thread is stuck in C code (through the signal
wakeup fd), and watches the process that started the liaison.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable

from .hostos import HostOS, watch_parent, watch_wakeup_socket
from .settings import Settings
from .transports.contract import TransportFactory, TransportHandlers

__all__ = ["IOThread"]

log = logging.getLogger("liaison")


class IOThread:
    """The asyncio loop serving the transport, on a thread of its own."""

    def __init__(
        self,
        settings: Settings,
        transport_factory: TransportFactory,
        host_os: HostOS,
        on_signal: Callable[[int], None] = lambda signum: None,
    ) -> None:
        """``host_os`` says how to hear signals and watch the parent (hostos.py);
        ``on_signal(signum)`` runs on this thread for each SIGINT or SIGTERM heard."""
        self.settings = settings
        self.host_os = host_os
        # Read now: the parent may exit as soon as it sees the start marker.
        self._parent = os.getppid()
        self.transport_factory = transport_factory
        self.loop = asyncio.new_event_loop()
        self.address = ""
        self._on_signal = on_signal
        self._thread = threading.Thread(target=self._run, name="liaison-io", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Event | None = None
        self._wakeup_r, self._wakeup_w = socket.socketpair()
        self._wakeup_w.setblocking(False)

    def start(self, handlers: TransportHandlers) -> str:
        """Start the loop and the transport; return the transport's address."""
        self.transport = self.transport_factory(self.settings, handlers)
        self._request_stop = handlers.request_stop
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        return self.address

    @property
    def wakeup_fd(self) -> int:
        """Where signal numbers go (signals.ProcessSignals.handle_stops): signals are
        handled on the main thread, which may be stuck in C code; this thread hears them
        too, so the watchdog can still enforce the stop."""
        return self._wakeup_w.fileno()

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` on this thread in ``seconds``; returns its canceller."""
        handle = self.loop.call_later(seconds, callback)

        def cancel() -> None:
            self.loop.call_soon_threadsafe(handle.cancel)

        return cancel

    def broadcast(self, data: bytes) -> None:
        self.transport.broadcast(data)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        try:
            self.address = await self.transport.start()
        except BaseException as error:
            self._error = error
            self._started.set()
            return
        self._started.set()
        reader = watch_wakeup_socket(self.host_os, self.loop, self._wakeup_r, self._heard)
        if self.settings.watch_parent:
            watch_parent(self.host_os, self._request_stop, self._parent)
        await self._stopped.wait()
        if reader is not None:
            reader.cancel()
        await self.transport.close()

    def _heard(self, signum: int) -> None:
        if signum in (signal.SIGINT, signal.SIGTERM):
            self._on_signal(signum)

    def shutdown(self, wait: float = 2.0) -> None:
        """Close every connection and end the loop (waits up to ``wait`` seconds); any
        thread, the main one last."""
        if self._thread.is_alive() and self._stopped is not None:
            with contextlib.suppress(RuntimeError):  # closed meanwhile by another thread
                self.loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(wait)
