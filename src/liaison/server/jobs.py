"""One job: a request on its way to its single reply, and how it is interrupted.

A job's state moves only here, under its own lock (:class:`JobState`), whichever thread
runs it, cancels it or times it out. ``current_job`` names the job running on this
thread (or task); :func:`progress` reports through it.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ..core import CommandCancelled, CommandTimedOut, Request
from ..protocol.errors import LiaisonInterrupt
from ..protocol.replies import partial_message, progress_message, request_error_reply
from .transports.contract import Sink

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "DONE",
    "QUEUED",
    "RUNNING",
    "Cancelled",
    "Interrupted",
    "Interruption",
    "Job",
    "JobState",
    "Stopping",
    "TimedOut",
    "current_job",
    "current_sink",
    "progress",
]


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

    Moved only by :class:`Job`'s methods, under its lock: to RUNNING by the thread that
    runs it (:meth:`Job.start`), to DONE by whichever thread replies first
    (:meth:`Job.finish`, :meth:`Job.fail`: the runner, or a cancel, timeout or stop from
    another thread, through :meth:`Job.interrupt`). Never moves back.
    """

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


QUEUED, RUNNING, DONE = JobState.QUEUED, JobState.RUNNING, JobState.DONE

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


def current_sink() -> Sink | None:
    """The sink of the command running on this thread (or task), if any."""
    job = current_job.get()
    return None if job is None else job.sink


class Job:
    """One request on its way to its single reply."""

    __slots__ = ("_lock", "cancel_timeout", "held", "interrupted_by", "key", "on_done",
                 "request", "sink", "state", "task", "thread")  # fmt: skip

    def __init__(self, request: Request, sink: Sink) -> None:
        self.request = request
        self.sink = sink
        # Bytes of the job's message that its connection counts until the reply
        # (Sink.hold_arriving, called as the message is handled): the reply gives them back.
        self.held = sink.hold_arriving()
        self.state: JobState = QUEUED
        self.interrupted_by: type[Interrupted] | None = None  # set once, while it runs
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
        self.sink.send(data, self.held)
        return True

    def fail(self, error: BaseException) -> bool:
        """Reply with ``error``; only the first reply of a job is sent."""
        return self.finish(request_error_reply(self.request, error))

    def interrupt(self, reason: type[Interrupted], main_thread: int | None) -> Interruption:
        """Stop this job for ``reason`` (any thread); says what is left to the caller.

        A queued job replies ``reason``'s error at once. A running one has ``reason``
        raised where it runs: its task is cancelled, or a worker thread gets it at its
        next bytecode (``PyThreadState_SetAsyncExc``: C code is not interrupted), both
        under the job's lock so that it cannot finish meanwhile; on ``main_thread`` the
        caller raises it (the executor, through the interrupt signal).
        """
        with self._lock:
            state = self.state
            if state is RUNNING:
                self.interrupted_by = reason
                if self.task is not None:
                    loop, task = self.task
                    loop.call_soon_threadsafe(task.cancel)
                elif self.thread == main_thread:
                    return Interruption.ON_MAIN_THREAD
                elif self.thread is not None:
                    import ctypes  # imported on first use: start-up stays short

                    ctypes.pythonapi.PyThreadState_SetAsyncExc(
                        ctypes.c_ulong(self.thread), ctypes.py_object(reason)
                    )
                return Interruption.RAISED
        if state is QUEUED and self.fail(reason().reply_error(self)):
            return Interruption.REPLIED
        return Interruption.NONE

    def attach_task(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> None:
        """The job goes on as ``task`` on ``loop`` (its thread): an interrupt cancels it,
        at once if one came while the task was being made."""
        with self._lock:
            self.task = (loop, task)
            if self.interrupted_by is not None:
                task.cancel()

    def drain(self, generator: Any) -> Any:
        """The job's result from a generator: its items in a list, or with ``stream``
        each pushed as a ``partial`` message as it comes, and their count."""
        if not self.request.stream:
            return list(generator)
        count = 0
        for item in generator:
            self.sink.push(partial_message(self.request.id, item, self.request.binary))
            count += 1
        return count


class Interruption(enum.Enum):
    """What :meth:`Job.interrupt` did, and what is left to the caller."""

    NONE = "none"  # it had replied already: nothing
    REPLIED = "replied"  # it was queued: it replied with the interrupt's error, and never runs
    RAISED = "raised"  # it runs as a task or on a worker: the interrupt is on its way there
    ON_MAIN_THREAD = "on main thread"  # it runs on the main thread: the caller raises it there
