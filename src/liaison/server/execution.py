"""Run requests without ever blocking the I/O: the executor's intake, its ordered loop
and its workers.

Ordered requests run one at a time, in arrival order, on the thread that calls
:meth:`Executor.run_forever` (the main thread: GUI toolkits need it). ``concurrent``
requests get a worker thread each; coroutines run on the ``liaison-async`` thread
(async_runner.py). A job's state and its lock are its own (jobs.py); its replies leave
through its :class:`Sink`, which must be thread-safe. The executor installs no signal
handler: signals.py installs :meth:`Executor.on_interrupt_signal`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core import Companion, Request
from ..protocol.replies import request_error_reply, success_reply
from .async_runner import AsyncRunner
from .handoff import OrderedQueue, new_ordered_queue
from .hostos import HostOS, current_host
from .jobs import (
    RUNNING,
    Cancelled,
    Interrupted,
    Interruption,
    Job,
    Stopping,
    TimedOut,
    current_job,
    current_sink,
)
from .transports.contract import Sink

if TYPE_CHECKING:
    from .gui import GuiLoop

__all__ = ["Executor"]

log = logging.getLogger("liaison.execution")

# Under a GUI loop an interrupt can land in a toolkit's callback, which swallows it
# (prints it): it is sent again this often, in seconds, until the job ends.
INTERRUPT_REPEAT_SECONDS = 0.1


# The ids a job is registered under (core.request validates every message's id).
_CANCELLABLE_ID_TYPES = frozenset({str, int, float})

# Results that can be neither awaitable nor a generator.
_PLAIN_TYPES = frozenset({type(None), bool, int, float, str, bytes, list, dict, tuple})


class Executor:
    """Runs jobs for the Companion and interrupts them on request.

    Its thread contexts: the intake (:meth:`submit`, :meth:`cancel`, :meth:`interrupt`,
    any thread: the I/O thread's dispatcher, a timeout); the ordered loop
    (:meth:`run_forever`, on the main thread); running a job (the main thread or a
    worker); coroutines go to an :class:`AsyncRunner`.

    A host with no threads of its own (the Pyodide host) uses the same jobs through
    three seams: :meth:`serve_inline` and :meth:`run_queued` run the ordered jobs on
    the caller's thread without the loop (:meth:`run_ordered` runs one, and can be
    wrapped); ``async_loop`` runs coroutines as tasks on the caller's loop; and without
    ``interrupt_main`` an interrupt of an ordered command is only recorded, for the
    host to raise (or not) its own way.
    """

    def __init__(
        self,
        companion: Companion,
        call_later: Callable[[float, Callable[[], None]], Callable[[], None]] | None = None,
        host: HostOS | None = None,
        interrupt_main: Callable[[], None] | None = None,
        async_loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """``call_later(seconds, callback)`` schedules a timeout and returns its canceller.
        ``host`` says how the main thread waits for jobs (default: this OS's way).
        ``interrupt_main()`` makes the main thread run :meth:`on_interrupt_signal` soon
        (any thread; signals.ProcessSignals.interrupt_main once it installed it).
        ``async_loop``: the caller's event loop for coroutines (see AsyncRunner);
        default: a ``liaison-async`` thread."""
        self.companion = companion
        companion.current_owner = current_sink  # `release` frees the sender's references
        self._call_later = call_later
        self._host = host or current_host()
        self._signal_main = interrupt_main
        self._async = AsyncRunner(companion, async_loop)
        self._gui: GuiLoop | None = None
        self._queue: OrderedQueue[Job | None] = new_ordered_queue(self._host.handoff)
        self._jobs: dict[tuple[int, Any], Job] = {}  # by (sink.id, request id)
        self._jobs_lock = threading.Lock()
        self._main_thread: int | None = None
        self._main_job: Job | None = None
        self._pending_interrupt: tuple[Job | None, type[Interrupted]] | None = None
        # Set once, by stop() or when run_forever ends, from any thread; read on every job
        # (a bool: Event.is_set is a Python call).
        self.stopping = False
        self._serving = threading.Event()  # run_forever has begun

    @property
    def serving(self) -> bool:
        """True once :meth:`run_forever` has begun; no command runs before."""
        return self._serving.is_set()

    @property
    def ordered_job(self) -> Job | None:
        """The ordered job running now on the main thread, if any."""
        return self._main_job

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
                self.interrupt(job, TimedOut)

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

    def jobs(self) -> list[Job]:
        """The jobs with an id that have not replied yet, in arrival order."""
        with self._jobs_lock:
            return list(self._jobs.values())

    def cancel(self, sink: Sink, request_id: Any) -> bool:
        """Cancel the command ``request_id`` of this sink; True if it was queued or running.

        An id no message can carry (an array, an object, a boolean) names no command.
        """
        if type(request_id) not in _CANCELLABLE_ID_TYPES:
            return False  # an array or object would not even hash; `true` would match 1
        with self._jobs_lock:
            job = self._jobs.get((sink.id, request_id))
        return job is not None and self.interrupt(job, Cancelled)

    def interrupt(self, job: Job, reason: type[Interrupted]) -> bool:
        """Stop ``job`` for ``reason`` (:meth:`Job.interrupt`); True if it was queued or
        running."""
        done = job.interrupt(reason, self._main_thread)
        if done is Interruption.ON_MAIN_THREAD:
            self._interrupt_main(job, reason)
        return done is not Interruption.NONE

    # -- the ordered queue (main thread) ------------------------------------------------

    def run_forever(self, gui: GuiLoop | None = None) -> None:
        """Run ordered jobs on this thread until :meth:`stop`; inside ``gui``'s event
        loop if given (see liaison.server.gui)."""
        self._main_thread = threading.get_ident()
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
                    self.run_ordered(job)
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
            self.run_ordered(job)
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

    def serve_inline(self) -> None:
        """Serve without :meth:`run_forever`: this thread is the ordered one, and runs
        the ordered jobs when its caller calls :meth:`run_queued` (a host without
        threads, such as Pyodide: in the call that submitted them)."""
        self._main_thread = threading.get_ident()
        self._serving.set()

    def run_queued(self) -> None:
        """Run the ordered jobs queued so far, in order, on this thread, then return;
        after a stop (or :meth:`stop_when_idle`'s mark) answer the rest "shutting
        down". Inside a running ordered job (a command that let its host submit more)
        it does nothing: they run once that job is done."""
        if self._main_job is not None:
            return
        while not self.stopping:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is None:
                break
            try:  # noqa: SIM105 - free when nothing is raised, unlike suppress()
                self.run_ordered(job)
            except Interrupted:
                pass  # landed after the job's reply, as it left
        self.stopping = True
        self._drain_queue()

    def run_ordered(self, job: Job) -> None:
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
        if self._main_thread is None or self._signal_main is None:
            return
        self._signal_main()  # on_interrupt_signal raises `reason` in the main thread
        if self._gui is not None and job is not None and reason is not Stopping:

            def repeat() -> None:
                if job.state is RUNNING and job is self._main_job:
                    self._interrupt_main(job, reason)

            if self._call_later is not None:
                self._call_later(INTERRUPT_REPEAT_SECONDS, repeat)

    def on_interrupt_signal(self, signum: int, frame: Any) -> None:
        """The main thread's handler of the interrupt signal (installed by signals.py):
        raises the pending interrupt into the running ordered command, if it is the one
        aimed at."""
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
                    self._async.run(job, result)
                    return None
                if inspect.isgenerator(result):
                    result = job.drain(result)
            if job.request.ref:
                result = self.companion.response(job.request, result, job.sink)
            return success_reply(job.request, result)
        except Interrupted as interrupted:
            return request_error_reply(job.request, interrupted.reply_error(job))
        except BaseException as error:  # user code: SystemExit and KeyboardInterrupt too
            return request_error_reply(job.request, error)
        finally:
            current_job.reset(token)
