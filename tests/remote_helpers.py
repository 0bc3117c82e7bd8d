"""Functions the liaison under test imports (tests put this folder on its PYTHONPATH)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import liaison

# Set by `release` to end `announce_then_block`, so a test can hold the ordered queue
# without sleeping. The blocker clears it as it starts: release only once it has said so.
_release = threading.Event()


def release() -> bool:
    _release.set()
    return True


def report_progress(steps: int) -> str:
    for step in range(steps):
        liaison.progress({"step": step, "of": steps})
    return "done"


def count(n: int) -> Iterator[int]:
    yield from range(n)


async def async_count(n: int) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(0)
        yield i


async def async_add(a: float, b: float, delay: float = 0.0) -> float:
    await asyncio.sleep(delay)
    return a + b


def thread_name() -> str:
    return threading.current_thread().name


def now() -> float:
    return time.monotonic()


def echo(value: Any) -> Any:
    return value


class Pusher:
    """What 1.0 frontends do: keep the liaison and push alerts through it."""

    def __init__(self, liaison: Any) -> None:
        self.liaison = liaison

    def alert(self, text: str) -> str:
        self.liaison.send({"tag": "alert", "text": text})
        return text

    def tell_sender(self, text: str) -> str:
        self.liaison.send({"tag": "private", "text": text}, to="sender")
        return text


def stubborn_sleep(seconds: float, announce: str = "") -> str:
    """A command that swallows every interrupt, as badly written user code may; prints
    ``announce`` (a line on stdout) once it runs."""
    if announce:
        print(announce, flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with contextlib.suppress(BaseException):  # deliberately swallows the interrupt
            time.sleep(max(0.0, end - time.monotonic()))
    return "finished"


def shout(text: str) -> str:
    """Print ``text`` to stdout from Python (a line), then write it to fd 1 directly."""
    import os

    print(text)
    os.write(1, text.encode())
    return text


def printf(text: str) -> int:
    """Write ``text`` with the C library's printf, whose stdout buffer Python never flushes."""
    import ctypes

    return int(ctypes.CDLL(None).printf(b"%s", text.encode()))


def arrays(n: int) -> Iterator[Any]:
    """Yield numpy.arange(0), ..., numpy.arange(n - 1) as float64 arrays."""
    import numpy

    for i in range(n):
        yield numpy.arange(i, dtype=numpy.float64)


def array_progress(n: int) -> str:
    """Report numpy.arange(n) as progress."""
    import numpy

    liaison.progress({"values": numpy.arange(n)})
    return "done"


def kind_of(value: Any) -> dict[str, Any]:
    """What an argument arrived as: its type, and for arrays dtype, shape and writeability."""
    info: dict[str, Any] = {"type": type(value).__name__}
    if hasattr(value, "dtype"):
        info["dtype"] = str(value.dtype)
        info["shape"] = list(value.shape)
        info["writeable"] = bool(value.flags.writeable)
    return info


def announce_then_block(timeout: float = 30.0) -> bool:
    """Occupy the main thread until `release` is called (or the timeout passes); report
    progress once blocked, so a test knows when it may release."""
    _release.clear()
    liaison.progress("blocked")
    return _release.wait(timeout)


def announce_then_sleep(seconds: float) -> str:
    """Report progress, then sleep: a command a test can cancel once it surely runs."""
    liaison.progress("sleeping")
    time.sleep(seconds)
    return "slept"


_interrupts: list[str] = []


def swallow_interrupts(count: int, limit: float = 30.0) -> list[str]:
    """Ignore the first ``count`` interrupts (timeout, cancel), noting their kinds.

    Stands for code the liaison cannot stop (C code): only the client's own deadline
    ends the wait for its reply.
    """
    _interrupts.clear()
    deadline = time.monotonic() + limit
    while len(_interrupts) < count and time.monotonic() < deadline:
        try:
            time.sleep(max(0.0, deadline - time.monotonic()))
        except BaseException as interrupt:
            _interrupts.append(type(interrupt).__name__)
    return list(_interrupts)


def interrupts_swallowed() -> list[str]:
    return list(_interrupts)


def pairs_of(marker: str) -> int:
    """How many live lists are ``[marker, marker]``: are a command's arguments kept?"""
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is list and obj == [marker, marker])


def is_imported(module_name: str) -> bool:
    return module_name in sys.modules


def spin(seconds: float) -> int:
    """Busy Python code for ``seconds`` (an interrupt that waits for bytecode lands here)."""
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline:
        rounds += 1
    return rounds


def push_many(pusher: Pusher, count: int) -> int:
    """Push ``count`` alerts, "0" to str(count - 1), during one command."""
    for i in range(count):
        pusher.alert(str(i))
    return count


def announce_then_read(path: str) -> str:
    """Report progress, then return the first line written to the FIFO at ``path``: a
    command that runs until the test, another process, lets it end."""
    import os

    # Read-write: opens at once, and the test's writer finds a reader whatever the order.
    with open(os.open(path, os.O_RDWR)) as fifo:
        liaison.progress("reading")
        return fifo.readline().strip()


def print_at_exit(text: str) -> bool:
    """Print ``text`` at exit from an atexit handler, from Python and at C level (fd 1),
    as psychopy.logging flushes its buffered messages."""
    import atexit

    atexit.register(shout, text)
    return True


def hold_the_gil(announcement: str) -> int:
    """Print ``announcement``, then hold the GIL in C for hours: no thread of the liaison
    runs Python meanwhile (it cannot even send a progress message: hence the print)."""
    import signal

    # The interrupt a stop sends (SIGUSR1) could land between the print and sum() (the
    # print lets go of the GIL): blocked, it waits, as it would for any C call.
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    print(announcement, flush=True)
    return sum(range(10**14))


def terminate_a_forked_child() -> int | None:
    """Start a child with multiprocessing's fork, SIGTERM it once it runs (terminate()),
    and return its exit code."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    started = context.Event()
    child = context.Process(target=_set_then_sleep, args=(started,))
    child.start()
    started.wait(30)
    child.terminate()
    child.join(30)
    return child.exitcode


def _set_then_sleep(started: Any) -> None:
    started.set()
    time.sleep(60)
