"""The stop deadline, held by a watchdog process: it needs no GIL of ours.

A command stuck in C code that holds the GIL (``sum(range(10**10))``) keeps every thread
of the liaison from running Python, the stop watchdog thread included: the liaison hears
a SIGTERM but cannot act on it. So at start-up (POSIX) the liaison starts this module as
a small child process, and tells it when a stop begins: from Python when it can, and from
faulthandler's C-level handler of SIGINT and SIGTERM (installed by signals.py), which
writes the traceback of the thread the signal landed on (the main thread, which runs
commands, where the kernel delivers it) to the child's stdin without the GIL, then runs
the Python handler as before. Only that thread: dumping every thread from a signal
handler reads the others' frames while they run, and crashed the liaison (SIGSEGV) in
about one stop in 17.
If the liaison still lives ``seconds`` after the first notice, the child kills it
(SIGKILL), writes the stop marker unless the liaison said it did (a NUL byte), and
reports on stderr where that thread was when the stop began. It exits as soon
as the liaison does (EOF on its stdin).

The child runs this file with ``python -I -S``: only the standard library, imported at
the top, is used on that side.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from typing import BinaryIO

__all__ = ["MARKER_WRITTEN", "StopDeadline"]

MARKER_WRITTEN = b"\0"  # no traceback text holds one
_STOP_BEGUN = b"stop\n"
_NOTICES_KEPT = 2**16  # bytes of tracebacks the child keeps for its report
_LAST_WORDS_SECONDS = 1.0  # for the killed liaison to end, then for the marker to be written


class StopDeadline:
    """The parent's side: the pipe to a running watchdog process."""

    def __init__(self, notices: BinaryIO) -> None:
        # For faulthandler's C handlers too (signals.ProcessSignals.tell_on_stop), which
        # write the threads' tracebacks to it when a stop signal comes.
        self.notices = notices
        self._notices = notices.fileno()

    @classmethod
    def start(cls, marker: bytes, output_fd: int, seconds: float) -> StopDeadline | None:
        """Start the watchdog (call once the start marker is out); None where it cannot
        run (no faulthandler signal handlers to tell it without the GIL: Windows; no file
        to run). Hand :attr:`notices` to signals.ProcessSignals.tell_on_stop."""
        import faulthandler

        if not hasattr(faulthandler, "register") or not hasattr(os, "posix_spawn"):
            return None
        if not sys.executable or not os.path.isfile(__file__):  # embedded, or in a zip
            return None
        reader, writer = os.pipe()
        argv = [sys.executable, "-I", "-S", __file__, str(os.getpid()), str(seconds),
                marker.decode()]  # fmt: skip
        # posix_spawn, not subprocess.Popen: ~1.5 ms rather than ~7 on the main thread,
        # before the first command runs. Nobody waits for the child: it outlives us.
        dup2 = os.POSIX_SPAWN_DUP2
        try:
            os.posix_spawn(
                sys.executable, argv, os.environ,
                file_actions=[(dup2, reader, 0), (dup2, output_fd, 1)],
                setpgroup=0,  # out of the terminal's foreground group: no ^C for it
            )  # fmt: skip
        except OSError:
            os.close(writer)
            return None
        finally:
            os.close(reader)
        os.set_blocking(writer, False)  # a signal handler must never wait on a full pipe
        notices = open(writer, "wb", buffering=0)  # noqa: SIM115 - kept by faulthandler
        return cls(notices)

    def begin(self) -> None:
        """A stop has begun (any thread)."""
        self._tell(_STOP_BEGUN)

    def marker_written(self) -> None:
        """The liaison has written its stop marker: the watchdog must not write another."""
        self._tell(MARKER_WRITTEN)

    def _tell(self, notice: bytes) -> None:
        try:  # noqa: SIM105 - free when nothing is raised, unlike suppress()
            os.write(self._notices, notice)
        except OSError:
            pass  # full (it has notices to read) or gone (it died: nothing to tell)


# -- the watchdog process ----------------------------------------------------------------


def _watch(liaison: int, seconds: float, marker: bytes) -> None:
    """Wait for notices on stdin; kill ``liaison`` if it lives ``seconds`` after the first."""
    notices = bytearray()
    deadline: float | None = None
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if (left is not None and left <= 0) or not select.select([0], [], [], left)[0]:
            break
        data = os.read(0, 65536)
        if not data or os.getppid() != liaison:
            return  # it has exited
        notices += data
        del notices[:-_NOTICES_KEPT]
        if deadline is None:
            deadline = time.monotonic() + seconds
    if os.getppid() != liaison:  # reparented: it has exited (so its pid may be reused)
        return
    os.kill(liaison, signal.SIGKILL)
    notices += _read_until_eof(_LAST_WORDS_SECONDS)  # nothing it wrote follows the marker
    if MARKER_WRITTEN not in notices:
        _write(1, marker, _LAST_WORDS_SECONDS)
    where = notices.replace(MARKER_WRITTEN, b"").replace(_STOP_BEGUN, b"").decode(errors="replace")
    sys.stderr.write(
        f"liaison: a command kept the interpreter (the GIL) for {seconds:g} s after the stop "
        "began: killed the liaison (SIGKILL). Where its main thread was then:\n" + where
    )


def _read_until_eof(seconds: float) -> bytes:
    data = b""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0 and select.select([0], [], [], left)[0]:
        chunk = os.read(0, 65536)
        if not chunk:
            break
        data += chunk
    return data


def _write(fd: int, data: bytes, seconds: float) -> None:
    """Write ``data``; give up after ``seconds`` or on a closed pipe."""

    def give_up(signum: int, frame: object) -> None:
        raise TimeoutError

    signal.signal(signal.SIGALRM, give_up)  # this process has one thread: alarms work
    signal.setitimer(signal.ITIMER_REAL, seconds)
    view = memoryview(data)
    try:
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:  # the stdio transport made the pipe non-blocking
                select.select([], [fd], [])
    except (OSError, TimeoutError):
        pass  # the reader has gone, or does not read
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3].encode())
