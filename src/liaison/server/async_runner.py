"""The ``liaison-async`` thread: an event loop driving jobs' coroutines to their reply.

A command whose result is awaitable (an ``async def``) or an async generator replies
from here, so the thread that ran it (main or worker) goes on at once. The loop runs on
a daemon thread of its own, started on first use, or is given (the loop of the thread
that submits the jobs, as in Pyodide).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

from ..core import Companion
from ..protocol.replies import partial_message, request_error_reply, success_reply
from .jobs import Cancelled, Job, current_job

__all__ = ["AsyncRunner"]


class AsyncRunner:
    """Drives each job's awaitable (or async generator) to its reply on one event loop.

    Without ``loop``, a ``liaison-async`` thread runs one, started on first use, and
    :meth:`run` may be called from any thread. With ``loop``, that loop is the caller's:
    :meth:`run` must be called on the thread running it, and starts the task at once.
    """

    def __init__(self, companion: Companion, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.companion = companion
        self._loop = loop
        self._own_loop = loop is None
        self._lock = threading.Lock()

    def run(self, job: Job, awaitable: Any) -> None:
        """Reply to ``job`` with what ``awaitable`` gives; a cancel or timeout of the
        job cancels its task (:meth:`Job.attach_task`)."""
        if self._own_loop:
            loop = self._event_loop()
            loop.call_soon_threadsafe(self._start_task, loop, job, awaitable)
        else:
            assert self._loop is not None
            self._start_task(self._loop, job, awaitable)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="liaison-async", daemon=True).start()
                self._loop = loop
            return self._loop

    def _start_task(self, loop: asyncio.AbstractEventLoop, job: Job, awaitable: Any) -> None:
        job.attach_task(loop, loop.create_task(self._drive(job, awaitable)))

    async def _drive(self, job: Job, awaitable: Any) -> None:
        current_job.set(job)
        try:
            if inspect.isasyncgen(awaitable):
                result: Any = await self._drain_async(job, awaitable)
            else:
                result = await awaitable
                if inspect.isasyncgen(result):
                    result = await self._drain_async(job, result)
                elif inspect.isgenerator(result):
                    result = job.drain(result)
            if job.request.ref:
                result = self.companion.response(job.request, result, job.sink)
            data = success_reply(job.request, result)
        except asyncio.CancelledError:
            reason = job.interrupted_by or Cancelled
            data = request_error_reply(job.request, reason().reply_error(job))
        except BaseException as error:
            data = request_error_reply(job.request, error)
        job.finish(data)

    async def _drain_async(self, job: Job, generator: Any) -> Any:
        if not job.request.stream:
            return [item async for item in generator]
        count = 0
        async for item in generator:
            job.sink.push(partial_message(job.request.id, item, job.request.binary))
            count += 1
        return count
