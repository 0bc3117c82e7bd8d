"""One liaison process, whatever its transport: start, serve, stop.

The main thread runs ordered commands (execution.Executor); the I/O thread
(io_thread.IOThread) runs the transport. This module wires them together and owns the
lifecycle in one place: the start marker once the transport serves, the stop on a
signal, a ``shutdown`` command, the parent's death or the transport's end, and the stop
marker with exit status 0 within a grace time even if a command ignores the stop (or,
if a command holds the GIL so that no thread can act, a kill by the watchdog process of
stop_deadline.py). Its signal handlers are signals.ProcessSignals'.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from ..constants import START_MARKER, STOP_MARKER
from ..core import Companion
from .dispatch import Dispatcher
from .execution import Executor
from .gui import GuiLoop, create_gui_loop
from .handle import Liaison
from .hostos import current_host
from .io_thread import IOThread
from .output import StandardOutput
from .settings import Settings
from .signals import ProcessSignals
from .stop_deadline import StopDeadline
from .transports.contract import TransportFactory, TransportHandlers

__all__ = ["KILL_AFTER_SECONDS", "STOP_GRACE_SECONDS", "Runtime"]

log = logging.getLogger("liaison")

# How long a stop may wait for a running command before the process exits regardless;
# then the commands still unanswered get their reply within ABANDON_SECONDS.
STOP_GRACE_SECONDS = 3.0
ABANDON_SECONDS = 1.0
# When the watchdog process kills a liaison that cannot run Python code at all (a C call
# holding the GIL): past the two above, within the 5 s docs/protocol.md promises.
KILL_AFTER_SECONDS = 4.5


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
        self.io = IOThread(settings, transport_factory, self.host_os, self._on_signal_heard)
        self.signals = ProcessSignals(self.host_os)
        self.executor = Executor(
            self.companion,
            call_later=self.io.call_later,
            host=self.host_os,
            interrupt_main=self.signals.interrupt_main,
        )
        self.dispatcher = Dispatcher(self.companion, self.executor, request_stop=self.stop)
        self._closed = False  # the transport is closed: every reply that will go, went
        self._deadline: StopDeadline | None = None
        self._watchdog_started = False

    def run(self, on_listening: Callable[[], None] | None = None) -> int:
        """Serve until stopped; must run on the main thread. Returns the exit status.

        ``on_listening`` is called once the start marker is written. The stop marker is
        written at exit, by an atexit handler (this runtime owns the process).
        """
        try:
            gui = self._start_gui()
        except (ImportError, RuntimeError, ValueError) as error:
            print(f"liaison: error: --gui {self.settings.gui}: {error}", file=sys.stderr)
            return 1
        # The main thread runs commands, so the handlers (which run there) can stop one.
        self.signals.handle_interrupts(self.executor.on_interrupt_signal)
        self.signals.handle_stops(self.executor.stop, self.io.wakeup_fd)
        try:
            address = self.io.start(
                TransportHandlers(self.dispatcher.handle, self.dispatcher.on_close, self.stop)
            )
        except OSError as error:
            print(f"liaison: error: {error.strerror or error}", file=sys.stderr)
            return 1
        self.companion.namespace["liaison"] = Liaison(address, self.io.broadcast, self.stop)
        self.output.started(f"{START_MARKER}@{address}")
        self.io.transport.start_reading()
        self._deadline = StopDeadline.start(
            self.output.encode_marker(self._stop_marker()), self.output.fd, KILL_AFTER_SECONDS
        )
        if self._deadline is not None:
            self.signals.tell_on_stop(self._deadline.notices)
        # The stop marker goes at exit, after the atexit handlers registered since (user
        # code's, such as psychopy.logging's flush), so what they print precedes it.
        atexit.register(self._write_stop_marker)
        if on_listening is not None:
            on_listening()
        log.info("serving on %s", address)
        try:
            self.executor.run_forever(gui)
        finally:
            self.io.shutdown()
            self.signals.stop_waking()
            self._closed = True
            self._start_watchdog()  # the exit, too, keeps the deadline (threads, atexit)
        return 0

    def stop(self) -> None:
        """Stop gracefully: interrupt the running command, then end; any thread."""
        if self._deadline is not None:
            self._deadline.begin()
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
        # faulthandler told the watchdog process already, unless user code has taken the
        # signal over since.
        if self._deadline is not None:
            self._deadline.begin()
        self._start_watchdog()
        self.executor.wake_main()

    def _stop_marker(self) -> str:
        return f"{STOP_MARKER}@{self.io.address}"

    def _write_stop_marker(self, flush: bool = True) -> None:
        self.output.stopped(self._stop_marker(), flush=flush)
        if self._deadline is not None:
            self._deadline.marker_written()

    def _start_watchdog(self) -> None:
        """Exit the process (status 0) if it still runs after the grace: a command that
        ignores the stop, a user thread that never ends, a slow atexit handler. Needs the
        GIL; the watchdog process (stop_deadline.py) covers a command holding it."""
        if self._watchdog_started:
            return
        self._watchdog_started = True
        threading.Thread(target=self._watch, name="liaison-watchdog", daemon=True).start()

    def _watch(self) -> None:
        time.sleep(STOP_GRACE_SECONDS)  # a daemon thread: gone if the process ends first
        if not self._closed:
            log.warning("a command ignored the stop for %.0f s: exiting", STOP_GRACE_SECONDS)
            # Its client, and those of commands queued behind it, get their reply.
            self.executor.abandon()
            self.io.shutdown(ABANDON_SECONDS)
        # No flush: the stuck command may hold stdout's lock (a full pipe).
        self._write_stop_marker(flush=False)
        os._exit(0)
