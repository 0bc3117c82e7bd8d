"""One job: a request on its way to its single reply, and how it is interrupted.

A job's state moves only here, under its own lock (:class:`JobState`), whichever thread
runs it, cancels it or times it out. ``current_job`` names the job running on this
thread (or task); :func:`progress` reports through it.
"""

from __future__ import annotations

import asyncio
import enum
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol

from ..core import CommandCancelled, CommandTimedOut, Request
from ..protocol.errors import LiaisonInterrupt
from ..protocol.replies import progress_message, request_error_reply

__all__ = [
    "DONE",
    "QUEUED",
    "RUNNING",
    "Cancelled",
    "Interrupted",
    "Job",
    "JobState",
    "Sink",
    "Stopping",
    "TimedOut",
    "current_job",
    "current_sink",
    "progress",
]


class Sink(Protocol):
    """Where a job's messages go: one client connection.

    ``data`` is JSON text as bytes, or a binary frame as a bytearray (core.frames.Frame).
    Every method may be called from any thread and never blocks.
    """

    @property
    def id(self) -> int:
        """Tells this connection from every other one of the process (keys its jobs)."""

    immediate_pushes: bool  # see push_unsolicited

    def send(self, data: bytes | bytearray) -> None:
        """Queue the final reply to one of the client's messages."""

    def push(self, data: bytes | bytearray) -> None:
        """Queue a message of a running command of this client (progress, partial)."""

    def push_unsolicited(self, data: bytes | bytearray) -> None:
        """Queue a message no command of this client asked for (``liaison.send``).

        Unless the client opted in to immediate pushes (:meth:`set_immediate_pushes`),
        it waits until none of the client's messages awaits its reply: liaison 1.0
        clients read ``evt.id`` of every message while a call is pending.
        """

    def set_immediate_pushes(self, immediate: bool) -> None:
        """Send unsolicited messages at once (True) or hold them as above (False)."""


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
