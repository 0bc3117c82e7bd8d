"""The liaison as a library: messages in from JavaScript, replies and pushes out to it.

Pyodide has no threads, sockets or subprocesses, so the I/O thread and the main-thread
loop of a liaison process do not exist here: JavaScript hands each message to
:meth:`PyodideHost.receive`. Everything behind it is the other transports' own code:
the route step, the dispatcher's control commands, the executor's jobs, the Companion,
references and replies. What differs is where commands run:

- ordered synchronous commands run one at a time, in arrival order, inside ``receive``
  (JavaScript's messages wait meanwhile);
- ``async def`` commands (and async generators) run as tasks on the event loop given
  (Pyodide's WebLoop), so control commands are answered while they ``await``;
- a running synchronous command is interrupted only from outside, by the client's
  thread writing Pyodide's interrupt buffer; :class:`SyncInterrupts` says what it asked
  for (a cancel or a timeout), and :meth:`PyodideHost.on_interrupt` is the SIGINT
  handler that raises it in the command.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, Protocol

from ....core import Companion, Request
from ....protocol.errors import RequestError
from ...dispatch import Dispatcher
from ...execution import Executor
from ...handle import Liaison
from ...hostos import current_host
from ...jobs import Cancelled, Job, JobState, Stopping, TimedOut
from ..contract import LoopInbox, QueuedConnection, Sink

__all__ = [
    "ADDRESS",
    "PyodideConnection",
    "PyodideExecutor",
    "PyodideHost",
    "SyncInterrupts",
    "Unsupported",
]

# What `liaison.address` says in Pyodide (a start marker would name it; there is none).
ADDRESS = "pyodide"

# Ids cancelled from the client's thread before their command ran, remembered until
# their `cancel` message comes (it always follows): bounded, as every per-client table.
EARLY_CANCELS_MAX = 1024

# Turns of the event loop a stop waits for cancelled coroutines to reply.
STOP_TURNS = 100

_CANCELLABLE_ID_TYPES = frozenset({str, int, float})


CONCURRENT_UNSUPPORTED = (
    "concurrent commands need threads, which Pyodide does not have;"
    " send it without concurrent, or make the command an async def"
)


class Unsupported(RequestError):
    """The request asks for what Pyodide lacks (``concurrent``: threads)."""


class SyncInterrupts(Protocol):
    """The client's side of Pyodide's interrupt buffer (clients/js/src/pyodide/).

    It can interrupt only a synchronous command, and only while one runs: the host
    tells it which (:meth:`running`), and asks it, from the SIGINT handler, why it
    interrupted (:meth:`take`).
    """

    def running(self, seq: int, timeout: float | None) -> None:
        """Command number ``seq`` (0: none) starts running; interrupt it after
        ``timeout`` seconds if it is still the running one."""

    def take(self) -> str | None:
        """The pending request, cleared: ``"cancel:<id as JSON>"``, ``"timeout:<seq>"``,
        or None."""


class PyodideConnection(QueuedConnection):
    """The one client of a Pyodide host: what is queued leaves at once through
    ``deliver`` (JSON text as bytes, a binary frame as a bytearray). JavaScript takes
    each message as it comes, so nothing waits in the outbox and reading never pauses."""

    def __init__(self, inbox: LoopInbox, deliver: Callable[[bytes | bytearray], None]) -> None:
        # No read timeout applies: the outbox never holds a message past this call.
        super().__init__(inbox, max_pending=2**62, read_timeout=float("inf"))
        self._deliver = deliver

    def __repr__(self) -> str:
        return f"<PyodideConnection {self.id}>"

    def _start_writing(self) -> None:
        outbox = self._outbox
        while outbox:
            data = outbox.popleft()
            if data is None:  # the end mark: nothing more leaves
                self.writer_stopped()
                return
            self._sent(data)
            self._deliver(data)

    def _pause_reading(self) -> None:
        pass  # JavaScript hands every message in; the outbox empties as it fills

    def _resume_reading(self) -> None:
        pass

    def _drop(self, reason: str) -> None:
        pass  # never: nothing waits in the outbox for the read timeout to see

    def close(self) -> None:
        """Send nothing more."""
        self.close_outbox()


class PyodideExecutor(Executor):
    """The executor's jobs without its threads: ordered jobs run on the caller's thread
    when they are submitted (``serve_inline``/``run_queued``), coroutines on ``loop``.
    Built without ``interrupt_main``: a running synchronous command is interrupted only
    through the interrupt buffer (:meth:`on_interrupt`)."""

    def __init__(
        self,
        companion: Companion,
        loop: asyncio.AbstractEventLoop,
        interrupts: SyncInterrupts | None,
    ) -> None:
        def call_later(seconds: float, callback: Callable[[], None]) -> Callable[[], None]:
            return loop.call_later(seconds, callback).cancel

        super().__init__(companion, call_later=call_later, host=current_host(), async_loop=loop)
        self.serve_inline()
        self._interrupts = interrupts
        self._seq = 0  # numbers the synchronous commands run, for their timeouts
        self._running_seq = 0
        self._deadlines: dict[Job, float] = {}  # jobs with a timeout: when it passes
        # Cancels from the client's thread that found no running command (yet):
        # id -> whether a command was cancelled for it.
        self._early_cancels: dict[Any, bool] = {}

    def submit(self, request: Request, sink: Sink) -> Job:
        if request.concurrent:
            job = Job(request, sink)
            job.fail(Unsupported(CONCURRENT_UNSUPPORTED))
            return job
        job = super().submit(request, sink)
        if request.timeout is not None:
            self._deadlines[job] = time.monotonic() + request.timeout
        # Unless a job already runs below us (a command that lets JavaScript run, e.g.
        # through ``pyodide.ffi.run_sync``): then it runs once that one is done.
        self.run_queued()
        return job

    def run_ordered(self, job: Job) -> None:
        """Run one ordered job, first honouring a cancel or timeout that came from the
        client's thread before it ran, and telling the interrupt buffer's side which
        command runs."""
        deadline = self._deadlines.pop(job, None)
        key = job.request.id
        if type(key) in _CANCELLABLE_ID_TYPES and self._early_cancels.get(key) is False:
            self._early_cancels[key] = True
            job.fail(Cancelled().reply_error(job))
            return
        timeout = None
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                job.fail(TimedOut().reply_error(job))
                return
        self._seq += 1
        self._running_seq = self._seq
        if self._interrupts is not None:
            self._interrupts.running(self._seq, timeout)
        try:
            super().run_ordered(job)
        finally:
            self._running_seq = 0
            if self._interrupts is not None:
                self._interrupts.running(0, None)

    def cancel(self, sink: Sink, request_id: Any) -> bool:
        if type(request_id) in _CANCELLABLE_ID_TYPES and self._early_cancels.pop(request_id, False):
            return True  # cancelled from the client's thread already
        return super().cancel(sink, request_id)

    def on_interrupt(self) -> None:
        """The client's thread interrupted: raise its reason in the running synchronous
        command if it is the one meant; otherwise remember an early cancel."""
        request = None if self._interrupts is None else self._interrupts.take()
        if request is None:
            return
        kind, _, detail = request.partition(":")
        job = self.ordered_job
        running = job is not None and job.state is JobState.RUNNING and self._running_seq
        if kind == "timeout":
            if running and detail == str(self._running_seq):
                raise TimedOut
            return
        if kind != "cancel":
            return
        try:
            request_id = json.loads(detail)
        except ValueError:
            return
        if type(request_id) not in _CANCELLABLE_ID_TYPES:
            return
        if running and job is not None and job.request.id == request_id:
            self._early_cancels[request_id] = True
            raise Cancelled
        if len(self._early_cancels) >= EARLY_CANCELS_MAX:
            del self._early_cancels[next(iter(self._early_cancels))]
        self._early_cancels[request_id] = False

    def stop(self) -> None:
        super().stop()
        if self.ordered_job is None:
            self.run_queued()  # answers what is queued "shutting down"
        # Coroutines have no thread to end with: cancel them (each replies).
        for job in self.jobs():
            if job.task is not None:
                self.interrupt(job, Stopping)

    def coroutines_running(self) -> bool:
        return any(job.task is not None and not job.task[1].done() for job in self.jobs())


class PyodideHost:
    """One liaison served to one JavaScript client, in this interpreter.

    ``deliver(data)`` gets every reply and push: JSON text as ``bytes``, a binary frame
    as a ``bytearray``. ``loop`` runs ``async def`` commands (default: the current event
    loop, Pyodide's WebLoop). ``interrupts`` is the client's side of the interrupt
    buffer, if there is one (without it a running synchronous command cannot be
    interrupted). ``on_stop`` is called once the host has stopped (``shutdown``,
    ``liaison.stop()`` or :meth:`stop`) and sent its last message.
    """

    def __init__(
        self,
        deliver: Callable[[bytes | bytearray], None],
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        interrupts: SyncInterrupts | None = None,
        on_stop: Callable[[], None] | None = None,
        companion: Companion | None = None,
    ) -> None:
        self.loop = loop or asyncio.get_event_loop()
        self.companion = companion or Companion()
        self.connection = PyodideConnection(LoopInbox(self.loop), deliver)
        self.executor = PyodideExecutor(self.companion, self.loop, interrupts)
        self.dispatcher = Dispatcher(self.companion, self.executor, request_stop=self.stop)
        self.companion.namespace["liaison"] = Liaison(
            ADDRESS, self.connection.push_unsolicited, self.stop
        )
        self._on_stop = on_stop
        self._stopped = False

    @property
    def stopped(self) -> bool:
        return self._stopped

    def receive(self, data: str | bytes) -> None:
        """Handle one message from the client: ``str`` (text) or ``bytes`` (a binary
        frame). Ordered synchronous commands run before it returns."""
        if self._stopped:
            return
        self.connection.take(data, self.dispatcher.handle)

    def on_interrupt(self, signum: int = 0, frame: Any = None) -> None:
        """The SIGINT handler for Pyodide's interrupt buffer (signal.signal)."""
        self.executor.on_interrupt()

    def stop(self) -> None:
        """Stop: the queued and running commands reply that the liaison is shutting down
        (a running synchronous one first returns), then nothing more is sent."""
        if self._stopped or self.executor.stopping:
            return
        self.executor.stop()
        # After the stack that asked (a command, or shutdown's reply) has unwound and the
        # cancelled coroutines have replied.
        self.loop.call_soon(self._finish_stop)

    def _finish_stop(self, turns: int = 0) -> None:
        if self.executor.coroutines_running() and turns < STOP_TURNS:
            self.loop.call_soon(self._finish_stop, turns + 1)
            return
        self._stopped = True
        self.dispatcher.on_close(self.connection)
        self.connection.close()
        if self._on_stop is not None:
            self._on_stop()
