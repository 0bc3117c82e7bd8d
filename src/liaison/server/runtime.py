"""One liaison process, whatever its transport: start, serve, stop.

The main thread runs ordered commands (execution.Executor); the I/O thread
(io_thread.IOThread) runs the transport. This module wires them together and owns the
lifecycle in one place: the start marker once the transport serves, the stop on a
signal, a ``shutdown`` command, the parent's death or the transport's end, and the stop
marker with exit status 0 within a grace time even if a command ignores the stop.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

from ..constants import START_MARKER, STOP_MARKER
from ..core import Companion
from .dispatch import Dispatcher
from .execution import Executor
from .gui import GuiLoop, create_gui_loop
from .handle import Liaison
from .hostos import current_host
from .io_thread import IOThread, TransportFactory, TransportHandlers
from .output import StandardOutput
from .settings import Settings

__all__ = ["STOP_GRACE_SECONDS", "Runtime"]

log = logging.getLogger("liaison")

# How long a stop may wait for a running command before the process exits regardless.
STOP_GRACE_SECONDS = 3.0


class Runtime:
    """Serves ``settings`` over the transport ``transport_factory`` builds.

    ``output`` owns stdout (markers first); built from ``settings.user_output`` if not
    given. ``companion`` defaults to a fresh one limited to ``settings.allowed_modules``.
    """

    def __init__(
        self,
        settings: Settings,
        transport_factory: TransportFactory,
        output: StandardOutput | None = None,
        companion: Companion | None = None,
    ) -> None:
        self.settings = settings
        self.host_os = settings.host_os or current_host()
        self.output = output or StandardOutput(settings.user_output)
        self.companion = companion or Companion(settings.allowed_modules)
        self.io = IOThread(settings, transport_factory, self.host_os)
        self.executor = Executor(self.companion, call_later=self.io.call_later, host=self.host_os)
        self.dispatcher = Dispatcher(self.companion, self.executor, request_stop=self.stop)
        self._done = threading.Event()

    def run(self, on_listening: Callable[[], None] | None = None) -> int:
        """Serve until stopped; must run on the main thread. Returns the exit status.

        ``on_listening`` is called once the start marker is written.
        """
        try:
            gui = self._start_gui()
        except (ImportError, RuntimeError, ValueError) as error:
            print(f"liaison: error: --gui {self.settings.gui}: {error}", file=sys.stderr)
            return 1
        self._install_signal_handlers()
        self.io.on_signal = self._on_signal_heard
        try:
            address = self.io.start(
                TransportHandlers(self.dispatcher.handle, self.dispatcher.on_close, self.stop)
            )
        except OSError as error:
            print(f"liaison: error: cannot listen on {self.settings.host}:{self.settings.port}: "
                  f"{error.strerror or error}", file=sys.stderr)  # fmt: skip
            return 1
        self.companion.namespace["liaison"] = Liaison(address, self.io.broadcast, self.stop)
        self.output.started(f"{START_MARKER}@{address}")
        if on_listening is not None:
            on_listening()
        log.info("serving on %s", address)
        try:
            self.executor.run_forever(gui)
        finally:
            self.io.shutdown()
            self.output.stopped(self._stop_marker())
            self._done.set()
        return 0

    def stop(self) -> None:
        """Stop gracefully: interrupt the running command, then end; any thread."""
        self.executor.stop()
        self._start_watchdog()

    def _start_gui(self) -> GuiLoop | None:
        """The GUI loop ``settings.gui`` names, started on this (main) thread."""
        if self.settings.gui is None:
            return None
        gui = create_gui_loop(self.settings.gui, fd_readers=self.host_os.wakeup == "reader")
        gui.prepare()
        return gui

    def _on_signal_heard(self, signum: int) -> None:
        """On the I/O thread: enforce the stop even if the main thread is stuck, and let
        a GUI loop idling there run the signal's Python handler."""
        log.info("received %s: stopping", signal.Signals(signum).name)
        self._start_watchdog()
        self.executor.wake_main()

    def _stop_marker(self) -> str:
        return f"{STOP_MARKER}@{self.io.address}"

    def _install_signal_handlers(self) -> None:
        # The main thread runs commands, so the handlers (which run there) can stop one.
        self.executor.claim_main_thread()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_stop_signal)

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        # Raises nothing itself: raised here, Stopping could land in the idle loop, a
        # toolkit or the executor's bookkeeping and lose a reply. The executor
        # interrupts the running command, if any, and ends its loop. No logging either:
        # the main thread may be inside a logging call (the I/O thread logs it).
        self.executor.stop()

    def _start_watchdog(self) -> None:
        """Exit the process if the main thread is still stuck in a command after the grace."""
        done = self._done

        def watch() -> None:
            if not done.wait(STOP_GRACE_SECONDS):
                log.warning("a command ignored the stop for %.0f s: exiting", STOP_GRACE_SECONDS)
                # No flush: the stuck command may hold stdout's lock (a full pipe).
                self.output.stopped(self._stop_marker(), flush=False)
                os._exit(0)

        threading.Thread(target=watch, name="liaison-watchdog", daemon=True).start()
