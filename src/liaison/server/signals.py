"""Every signal handler of a liaison process, installed (and put back) here only.

Python runs signal handlers on the main thread, between bytecodes; the main thread runs
commands. So the handlers here raise nothing of their own and only hand the signal on:

- the host's interrupt signal (SIGUSR1; Windows: SIGBREAK) runs the executor's
  ``on_interrupt_signal``, which raises a cancel, timeout or stop into the running
  ordered command; :meth:`ProcessSignals.interrupt_main` sends it (hostos.py says how);
- SIGINT and SIGTERM call ``on_stop`` (the executor's ``stop``);
- every signal's number is written to the I/O thread's wakeup socket
  (``signal.set_wakeup_fd``), so the stop is heard even while the main thread is stuck
  in C code;
- faulthandler's C handlers of SIGINT and SIGTERM write the threads' tracebacks to the
  stop deadline's watchdog process (stop_deadline.py), without the GIL, then chain to
  the Python handlers;
- in a child forked by user code (multiprocessing), all of that is put back: its
  SIGINT and SIGTERM are its own.

The watchdog process's own handlers (it is another process) stay in stop_deadline.py.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

from .hostos import HostOS, interrupt_main_thread

__all__ = ["STOP_SIGNALS", "ProcessSignals"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

SignalHandler = Callable[[int, Any], None]


class ProcessSignals:
    """The signal handlers of one liaison process; install them on the main thread."""

    def __init__(self, host: HostOS) -> None:
        """``host`` names the interrupt signal and how to send it (hostos.py)."""
        self.host = host
        self._main_thread: int | None = None
        self._on_stop: Callable[[], None] = lambda: None
        self._previous: dict[int, Any] = {}  # what each installed handler replaced
        self._notices: BinaryIO | None = None  # the watchdog's pipe, which faulthandler writes
        self._fork_hook = False

    def handle_interrupts(self, on_interrupt: SignalHandler) -> None:
        """From now on :meth:`interrupt_main` runs ``on_interrupt`` on this (the main)
        thread."""
        self._install(self.host.interrupt_signal, on_interrupt)
        self._main_thread = threading.get_ident()

    def interrupt_main(self) -> None:
        """Run the interrupt handler on the main thread soon (any thread); nothing before
        :meth:`handle_interrupts`: the signal's default action would end the process."""
        if self._main_thread is not None:
            interrupt_main_thread(self.host, self._main_thread)

    def handle_stops(self, on_stop: Callable[[], None], wakeup_fd: int) -> None:
        """SIGINT and SIGTERM call ``on_stop()`` on the main thread, and every signal's
        number goes to ``wakeup_fd`` (non-blocking), which another thread reads."""
        self._on_stop = on_stop
        for signum in STOP_SIGNALS:
            self._install(signum, self._on_stop_signal)
        signal.set_wakeup_fd(wakeup_fd, warn_on_full_buffer=False)
        if hasattr(os, "register_at_fork") and not self._fork_hook:  # POSIX
            self._fork_hook = True
            os.register_at_fork(after_in_child=self._forget_in_forked_child)

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        # Raises nothing itself: raised here, Stopping could land in the idle loop, a
        # toolkit or the executor's bookkeeping and lose a reply. The executor
        # interrupts the running command, if any, and ends its loop. No logging either:
        # the main thread may be inside a logging call (the I/O thread logs it).
        self._on_stop()

    def tell_on_stop(self, notices: BinaryIO) -> None:
        """On SIGINT and SIGTERM, faulthandler writes every thread's traceback to
        ``notices`` from C (no GIL needed), then runs the Python handler. Call after
        :meth:`handle_stops`: a Python handler installed later would replace it. In a
        forked child ``notices`` is closed."""
        import faulthandler

        self._notices = notices
        for signum in STOP_SIGNALS:
            faulthandler.register(signum, file=notices, all_threads=False, chain=True)

    def stop_waking(self) -> None:
        """No more signal numbers to the wakeup fd (its reader has ended); main thread."""
        if threading.current_thread() is threading.main_thread():
            signal.set_wakeup_fd(-1)

    def restore(self) -> None:
        """Put back every handler installed here (a liaison inside a test process)."""
        self._forget_faulthandler()
        self.stop_waking()
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        self._main_thread = None

    def _install(self, signum: int, handler: SignalHandler) -> None:
        previous = signal.signal(signum, handler)
        self._previous.setdefault(signum, previous)

    def _forget_faulthandler(self) -> None:
        if self._notices is not None:
            import faulthandler

            for signum in STOP_SIGNALS:
                faulthandler.unregister(signum)
            self._notices = None

    def _forget_in_forked_child(self) -> None:
        """In a child that user code forked (multiprocessing): its SIGINT and SIGTERM are
        its own, and do what they do in any Python process (``Process.terminate()`` ends
        it). Inherited, the wakeup fd and faulthandler's handlers would stop the liaison,
        and its copy of the watchdog's pipe would keep the watchdog waiting."""
        notices = self._notices
        self._forget_faulthandler()  # first: it puts back what it wraps
        if notices is not None:
            notices.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
