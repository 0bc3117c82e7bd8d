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
    a loop iteration per reply.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._calls: collections.deque[tuple[Callable[[Any], None], Any]] = collections.deque()
        self._lock = threading.Lock()
        self._wake_pending = False

    def put(self, function: Callable[[Any], None], argument: Any) -> None:
        self._calls.append((function, argument))
        with self._lock:
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
        calls = self._calls
        while calls:
            function, argument = calls.popleft()
            function(argument)
