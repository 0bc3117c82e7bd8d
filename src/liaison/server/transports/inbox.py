"""Calls handed to a transport's event loop from other threads (replies from the main
thread, pushes from workers): shared by every transport."""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["LoopInbox"]


class LoopInbox:
    """Calls handed to the event loop from other threads, run in order, in batches.

    ``call_soon_threadsafe`` wakes the loop (a write to its self-pipe) for every call; the
    main thread produces replies in bursts, so one wake-up per batch saves a syscall and
    a loop iteration per reply. It counts the bytes of messages on their way (``nbytes``)
    and holds the threads that must wait for a connection's outbox to drain
    (:meth:`wait_for_room`).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._calls: collections.deque[tuple[Callable[[Any], None], Any]] = collections.deque()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._wake_pending = False
        self.nbytes = 0  # of the calls not yet run; changed under the lock
        self.waiting = 0  # threads in wait_for_room; changed under the lock

    def put(self, function: Callable[[Any], None], argument: Any, nbytes: int = 0) -> None:
        with self._lock:
            self._calls.append((function, argument))
            self.nbytes += nbytes
            if self._wake_pending:
                return  # the pending _run_all will find this call
            self._wake_pending = True
        try:  # noqa: SIM105 - on every reply: free when nothing is raised, unlike suppress()
            self._loop.call_soon_threadsafe(self._run_all)
        except RuntimeError:
            pass  # the loop has closed: the liaison is exiting and no one is left to send to

    def _run_all(self) -> None:
        with self._lock:
            self._wake_pending = False
            # Calls put from here on count until the next _run_all, which they schedule.
            self.nbytes = 0
        calls = self._calls
        while calls:
            function, argument = calls.popleft()
            function(argument)
        if self.waiting:
            self.notify_room()

    def wait_for_room(self, must_wait: Callable[[], bool]) -> None:
        """Block this (non-I/O) thread while ``must_wait()``; woken by :meth:`notify_room`."""
        with self._lock:
            self.waiting += 1
            try:
                while must_wait():
                    # A timeout, so an exception raised into a worker thread to cancel its
                    # command (PyThreadState_SetAsyncExc) is seen within a second.
                    self._room.wait(WAIT_RECHECK_SECONDS)
            finally:
                self.waiting -= 1

    def notify_room(self) -> None:
        """Let the waiting threads check again (I/O thread)."""
        with self._lock:
            self._room.notify_all()


WAIT_RECHECK_SECONDS = 1.0
