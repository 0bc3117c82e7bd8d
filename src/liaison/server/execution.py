"""Run requests without ever blocking the I/O.

Ordered requests run one at a time, in arrival order, on the thread that calls
:meth:`Executor.run_forever` (the main thread: GUI toolkits need it). ``concurrent``
requests get a worker thread each; coroutines run on a separate event-loop thread.
Replies leave through each job's :class:`Sink`, which must be thread-safe.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import queue
import signal
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ..core import CommandCancelled, CommandTimedOut, Companion, Request
from ..protocol.errors import LiaisonInterrupt
from ..protocol.replies import partial_message, progress_message, request_error_reply, success_reply
from .handoff import OrderedQueue, new_ordered_queue
from .hostos import HostOS, current_host, interrupt_main_thread
from .transports.contract import Sink  # re-exported: the dispatcher and tests import it here

if TYPE_CHECKING:
    from .gui import GuiLoop

__all__ = [
    "Cancelled",
    "Executor",
    "Interrupted",
    "Job",
    "JobState",
    "Sink",
    "Stopping",
    "TimedOut",
    "current_job",
    "progress",
]

log = logging.getLogger("liaison.execution")


class Interrupted(LiaisonInterrupt):
    """Raised inside a running command to stop it; a BaseException so `try` won't eat it."""

    def reply_error(self, job: Job) -> Exception:
        return CommandCancelled("the command was cancelled")


class Cancelled(Interrupted):
    pass


class TimedOut(Interrupted):
    def reply_error(self, job: Job) -> Exception:
        return CommandTimedOut(f"the command ran past its timeout of {job.request.timeout} s")


class Stopping(Interrupted):
    def reply_error(self, job: Job) -> Exception:
        return CommandCancelled("the liaison is shutting down")


class JobState(enum.Enum):
    """A job's lifecycle: QUEUED -> RUNNING -> DONE, or QUEUED -> DONE if cancelled first.

    Moved only under the job's lock: to RUNNING by the thread that runs it
    (:meth:`Job.start`), to DONE by whichever thread replies first (:meth:`Job.finish`:
    the runner, or a cancel, timeout or stop from another thread). Never moves back.
    """

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


QUEUED, RUNNING, DONE = JobState.QUEUED, JobState.RUNNING, JobState.DONE

# Under a GUI loop an interrupt can land in a toolkit's callback, which swallows it
# (prints it): it is sent again this often, in seconds, until the job ends.
INTERRUPT_REPEAT_SECONDS = 0.1

current_job: ContextVar[Job | None] = ContextVar("liaison_current_job", default=None)


def progress(data: Any) -> bool:
    """Send ``data`` as a progress message to the client whose command is running.

    Returns False (and sends nothing) when called outside a command.
    """
    job = current_job.get()
    if job is None:
        return False
    job.sink.push(progress_message(job.request.id, data, job.request.binary))
    return True


def _current_sink() -> Sink | None:
    """The sink of the command running on this thread (or task), if any."""
    job = current_job.get()
    return None if job is None else job.sink


class Job:
    """One request on its way to its single reply."""

    __slots__ = ("_lock", "cancel_timeout", "interrupt", "key", "on_done", "request", "sink",
                 "state", "task", "thread")  # fmt: skip

    def __init__(self, request: Request, sink: Sink) -> None:
        self.request = request
        self.sink = sink
        self.state: JobState = QUEUED
        self.interrupt: type[Interrupted] | None = None
        self.thread: int | None = None
        self.task: tuple[asyncio.AbstractEventLoop, asyncio.Task[None]] | None = None
        # Called with the job once it has replied, to forget its key (sink id, request
        # id) under which it can be cancelled, and to cancel its timeout.
        self.on_done: Callable[[Job], None] | None = None
        self.key: tuple[int, Any] | None = None
        self.cancel_timeout: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def start(self) -> bool:
        """Mark the job running on this thread; False if it was cancelled while queued."""
        with self._lock:
            if self.state is not QUEUED:
                return False
            self.state = RUNNING
            self.thread = threading.get_ident()
            return True

    def finish(self, data: bytes | bytearray) -> bool:
        """Send the final reply; only the first call sends anything."""
        with self._lock:
            if self.state is DONE:
                return False
            self.state = DONE
        # The reply is encoded: let go of the arguments before handing it over. Freed here
        # and now, their memory serves the next message; freed while the I/O thread works
        # on the reply, large ones fragment its heap (with 2 MB messages: ~300 page faults
        # each, and 3-4x the resident memory).
        self.request = self.request.released()
        if self.on_done is not None:
            self.on_done(self)
        self.sink.send(data)
        return True

    def fail(self, error: BaseException) -> bool:
        return self.finish(request_error_reply(self.request, error))


# The ids a job is registered under (core.request validates every message's id).
_CANCELLABLE_ID_TYPES = frozenset({str, int, float})

# Results that can be neither awaitable nor a generator.
_PLAIN_TYPES = frozenset({type(None), bool, int, float, str, bytes, list, dict, tuple})


class Executor:
    """Runs jobs for the Companion and interrupts them on request."""

    def __init__(
        self,
        companion: Companion,
        call_later: Callable[[float, Callable[[], None]], Callable[[], None]] | None = None,
        host: HostOS | None = None,
    ) -> None:
        """``call_later(seconds, callback)`` schedules a timeout and returns its canceller;
        ``host`` says how to interrupt the main thread (default: this OS's way)."""
        self.companion = companion
        companion.current_owner = _current_sink  # `release` frees the sender's references
        self._call_later = call_later
        self._host = host or current_host()
        self._gui: GuiLoop | None = None
        self._queue: OrderedQueue[Job | None] = new_ordered_queue(self._host.handoff)
        self._jobs: dict[tuple[int, Any], Job] = {}  # by (sink.id, request id)
        self._jobs_lock = threading.Lock()
        self._main_thread: int | None = None
        self._main_job: Job | None = None
        self._pending_interrupt: tuple[Job | None, type[Interrupted]] | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._async_lock = threading.Lock()
        # Set once, by stop() or when run_forever ends, from any thread; read on every job
        # (a bool: Event.is_set is a Python call).
        self.stopping = False
        self._serving = threading.Event()  # run_forever has begun

    @property
    def serving(self) -> bool:
        """True once :meth:`run_forever` has begun; no command runs before."""
        return self._serving.is_set()

    # -- intake (any thread) ------------------------------------------------------------

    def submit(self, request: Request, sink: Sink) -> Job:
        job = Job(request, sink)
        if request.id is not None:
            job.key = key = (sink.id, request.id)
            with self._jobs_lock:
                self._jobs[key] = job
            job.on_done = self._forget
        if request.timeout is not None and self._call_later is not None:

            def time_out() -> None:
                self._interrupt(job, TimedOut)

            job.cancel_timeout = self._call_later(request.timeout, time_out)
            job.on_done = self._forget
        if request.concurrent:
            if self.stopping:
                job.fail(Stopping().reply_error(job))
            else:
                threading.Thread(target=self._run_in_worker, args=(job,), daemon=True).start()
        else:
            self._queue.put(job)
            if self.stopping:
                # run_forever may have drained the queue already; if not, its drain (or
                # run) of this job sends nothing more: a job replies once.
                job.fail(Stopping().reply_error(job))
            elif self._gui is not None:
                self._gui.wake()
        return job

    def _forget(self, job: Job) -> None:
        key = job.key
        if key is not None:
            with self._jobs_lock:
                if self._jobs.get(key) is job:
                    del self._jobs[key]
        if job.cancel_timeout is not None:
            job.cancel_timeout()

    def cancel(self, sink: Sink, request_id: Any) -> bool:
        """Cancel the command ``request_id`` of this sink; True if it was queued or running.

        An id no message can carry (an array, an object, a boolean) names no command.
        """
        if type(request_id) not in _CANCELLABLE_ID_TYPES:
            return False  # an array or object would not even hash; `true` would match 1
        with self._jobs_lock:
            job = self._jobs.get((sink.id, request_id))
        return job is not None and self._interrupt(job, Cancelled)

    def _interrupt(self, job: Job, reason: type[Interrupted]) -> bool:
        with job._lock:
            state = job.state
            if state is RUNNING:
                job.interrupt = reason
                if job.task is not None:
                    loop, task = job.task
                    loop.call_soon_threadsafe(task.cancel)
                elif job.thread == self._main_thread:
                    self._interrupt_main(job, reason)
                elif job.thread is not None:
                    # Raise inside the worker at its next bytecode; C code is not interrupted.
                    import ctypes  # imported on first use: start-up stays short

                    ctypes.pythonapi.PyThreadState_SetAsyncExc(
                        ctypes.c_ulong(job.thread), ctypes.py_object(reason)
                    )
        if state is QUEUED:
            return job.fail(reason().reply_error(job))
        return state is RUNNING

    # -- the ordered queue (main thread) ------------------------------------------------

    def claim_main_thread(self) -> None:
        """Make this (main) thread the ordered one; the host's interrupt signal (SIGUSR1;
        Windows: SIGBREAK) interrupts its command."""
        self._main_thread = threading.get_ident()
        signal.signal(self._host.interrupt_signal, self._on_interrupt_signal)

    def run_forever(self, gui: GuiLoop | None = None) -> None:
        """Run ordered jobs on this thread until :meth:`stop`; inside ``gui``'s event
        loop if given (see liaison.server.gui)."""
        if self._main_thread != threading.get_ident():
            self.claim_main_thread()
        self._serving.set()
        if gui is not None:
            self._run_gui_forever(gui)
            return
        try:
            while not self.stopping:
                job = self._queue.get()
                if job is None:
                    break
                try:  # noqa: SIM105 - free when nothing is raised, unlike suppress()
                    self._run_on_main(job)
                except Interrupted:
                    pass  # landed after the job's reply, as it left
        finally:
            self.stopping = True
            self._drain_queue()

    def _run_gui_forever(self, gui: GuiLoop) -> None:
        self._gui = gui
        if self.stopping:
            gui.quit()
        try:
            while not self.stopping:
                try:
                    gui.run(self._pull)
                    break
                except Stopping:
                    break
                except Interrupted:
                    pass  # aimed at a job that had already replied: the loop goes on
        finally:
            self.stopping = True
            self._drain_queue()

    def _pull(self) -> None:
        """Run the next ordered job, inside a callback of the GUI loop."""
        gui = self._gui
        assert gui is not None
        if self._main_job is not None:
            return  # a command runs a nested event loop: the next waits until it returns
        if self._stopped():  # a stop signal's handler raised Stopping in a command
            gui.quit()
            return
        try:
            job = self._queue.get_nowait()
        except queue.Empty:
            return
        if job is None:
            gui.quit()
            return
        try:  # noqa: SIM105 - free when nothing is raised, unlike suppress()
            self._run_on_main(job)
        except Interrupted:
            pass  # landed after the job's reply, as it left
        if self._stopped():
            gui.quit()
        elif not self._queue.empty():
            gui.wake()  # one job per callback: the windows repaint between commands

    def _stopped(self) -> bool:
        # A call, not the attribute: a check of self.stopping would tell mypy it stays
        # false for the rest of the method, though the job just run may have set it.
        return self.stopping

    def _run_on_main(self, job: Job) -> None:
        """Run an ordered job on this (main) thread. It replies once, even when a stop or
        an interrupt lands on either side of the command itself."""
        if not job.start():
            return  # cancelled while queued: it has replied
        self._main_job = job
        try:
            if self.stopping:
                raise Stopping  # stop() came after the job left the queue
            self._run(job)
        except Interrupted as interrupted:
            job.fail(interrupted.reply_error(job))  # sends nothing if it has replied
        finally:
            self._main_job = None

    def wake_main(self) -> None:
        """Let the main thread run Python soon (so pending signal handlers run) even if
        a GUI loop idles there; without a GUI loop, nothing to do."""
        if self._gui is not None:
            self._gui.wake()

    def _drain_queue(self) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job.fail(Stopping().reply_error(job))

    def abandon(self) -> None:
        """Reply "the liaison is shutting down" for every command still queued or running
        (any thread): the stop will not wait for them any longer. A command that goes on
        running sends nothing more (a job replies once)."""
        running = self._main_job
        with self._jobs_lock:
            jobs = [running, *self._jobs.values()]  # in the order they came
        for job in jobs:
            if job is not None:
                job.fail(Stopping().reply_error(job))
        self._drain_queue()  # those without an id, which are never registered

    def stop_when_idle(self) -> None:
        """Ask :meth:`run_forever` to return once the ordered jobs queued so far have run."""
        self._queue.put(None)

    def stop(self) -> None:
        """Ask :meth:`run_forever` to return soon, interrupting the running command."""
        if self.stopping:
            return
        self.stopping = True
        self._queue.put(None)
        if self._gui is not None:
            self._gui.quit()
        job = self._main_job
        if job is not None:
            self._interrupt_main(job, Stopping)

    def _interrupt_main(self, job: Job | None, reason: type[Interrupted]) -> None:
        self._pending_interrupt = (job, reason)
        if self._main_thread is None:
            return
        # The handler (_on_interrupt_signal) raises `reason` in the main thread.
        interrupt_main_thread(self._host, self._main_thread)
        if self._gui is not None and job is not None and reason is not Stopping:

            def repeat() -> None:
                if job.state is RUNNING and job is self._main_job:
                    self._interrupt_main(job, reason)

            if self._call_later is not None:
                self._call_later(INTERRUPT_REPEAT_SECONDS, repeat)

    def _on_interrupt_signal(self, signum: int, frame: Any) -> None:
        pending, self._pending_interrupt = self._pending_interrupt, None
        if pending is None:
            return
        job, reason = pending
        # Only into a running command: raised anywhere else (the idle loop, a toolkit,
        # the executor's own bookkeeping) it would lose a reply or end the process. A
        # stop without a running command ends run_forever through the queue instead.
        if job is not None and job is self._main_job and job.state is RUNNING:
            raise reason

    # -- running a job (any thread) -----------------------------------------------------

    def _run_in_worker(self, job: Job) -> None:
        # No user code before the start marker, which precedes run_forever: it would
        # write to stdout ahead of the marker.
        self._serving.wait()
        try:
            if job.start():
                self._run(job)
        except Interrupted:
            pass  # arrived after the job replied

    def _run(self, job: Job) -> None:
        data = None
        try:
            data = self._result(job)
            if data is not None:
                job.finish(data)
        except Interrupted as late:  # landed after the result was ready: still reply once
            if data is None:
                job.fail(late.reply_error(job))
            else:
                job.finish(data)

    def _result(self, job: Job) -> bytes | bytearray | None:
        """The encoded final reply, or None when a coroutine will reply later."""
        token = current_job.set(job)
        try:
            result = self.companion.execute(job.request)
            if type(result) not in _PLAIN_TYPES:  # the inspect checks cost ~2 us a call
                if inspect.isawaitable(result) or inspect.isasyncgen(result):
                    self._run_async(job, result)
                    return None
                if inspect.isgenerator(result):
                    result = self._drain(job, result)
            if job.request.ref:
                result = self.companion.response(job.request, result, job.sink)
            return success_reply(job.request, result)
        except Interrupted as interrupted:
            return request_error_reply(job.request, interrupted.reply_error(job))
        except BaseException as error:  # user code: SystemExit and KeyboardInterrupt too
            return request_error_reply(job.request, error)
        finally:
            current_job.reset(token)

    def _drain(self, job: Job, generator: Any) -> Any:
        if not job.request.stream:
            return list(generator)
        count = 0
        for item in generator:
            job.sink.push(partial_message(job.request.id, item, job.request.binary))
            count += 1
        return count

    # -- coroutines ---------------------------------------------------------------------

    def _run_async(self, job: Job, awaitable: Any) -> None:
        loop = self._event_loop()
        loop.call_soon_threadsafe(self._start_task, loop, job, awaitable)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._async_lock:
            if self._async_loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="liaison-async", daemon=True).start()
                self._async_loop = loop
            return self._async_loop

    def _start_task(self, loop: asyncio.AbstractEventLoop, job: Job, awaitable: Any) -> None:
        task = loop.create_task(self._drive(job, awaitable))
        with job._lock:
            job.task = (loop, task)
            if job.interrupt is not None:
                task.cancel()

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
                    result = self._drain(job, result)
            if job.request.ref:
                result = self.companion.response(job.request, result, job.sink)
            data = success_reply(job.request, result)
        except asyncio.CancelledError:
            reason = job.interrupt or Cancelled
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
