"""The process's standard output: the start marker, then user code's output, then the stop marker.

Launchers compare the first stdout chunk with the start marker, so nothing may reach fd 1
before it. Until the marker is out, fd 1 and ``sys.stdout`` point at stderr, and the
liaison writes through a private duplicate of the real stdout. Once the marker is out,
user code's output (``print`` and C-level writes to fd 1 alike) goes to stdout again, as
in liaison 1.0, unless ``user_output`` is ``"stderr"`` (the stdio transport needs that:
its stdout carries messages). At the stop, user output is flushed, then dropped (it
keeps going to stderr where it went there), so the stop marker is the last thing on
stdout and nothing user code writes later (finalizers, threads) lands on stderr instead:
launchers show stderr as errors.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import TextIO

__all__ = ["USER_OUTPUTS", "StandardOutput"]

# Where user code's output goes once the start marker is out.
USER_OUTPUTS = ("stdout", "stderr")


class StandardOutput:
    """Owns fd 1 for the liaison's lifetime; construct it before anything is printed.

    ``fd`` is the private duplicate of the real stdout: markers (and messages, for the
    stdio transport) are written there, never through ``sys.stdout``.
    """

    def __init__(self, user_output: str = "stdout") -> None:
        if user_output not in USER_OUTPUTS:
            raise ValueError(f"user_output must be one of {USER_OUTPUTS}, got {user_output!r}")
        self.user_output = user_output
        self._lock = threading.Lock()
        self._written: set[str] = set()
        self._user_stdout: TextIO | None = sys.stdout
        if sys.stdout is not None:
            sys.stdout.flush()
        self.fd = os.dup(1)
        self._divert_user_output()

    def encode_marker(self, marker: str) -> bytes:
        """The bytes ``marker`` is written as."""
        return marker.encode()

    def write_marker(self, marker: str) -> None:
        """Write ``marker`` to the real stdout, at most once per marker."""
        with self._lock:
            if marker in self._written:
                return
            self._written.add(marker)
            os.write(self.fd, self.encode_marker(marker))

    def started(self, marker: str) -> None:
        """Write the start marker; from now on user output goes where ``user_output`` says."""
        self.write_marker(marker)
        if self.user_output == "stdout":
            os.dup2(self.fd, 1)
            if self._user_stdout is not None:
                # Line by line, as a terminal would show it: launchers show it as a log.
                reconfigure = getattr(self._user_stdout, "reconfigure", None)
                if reconfigure is not None:
                    reconfigure(line_buffering=True)
                sys.stdout = self._user_stdout

    def stopped(self, marker: str, flush: bool = True) -> None:
        """Flush what user code printed (unless ``flush`` is false), drop later output
        (stderr keeps what goes there), write ``marker``."""
        with self._lock:
            if marker in self._written:
                return
        if flush:
            _flush_user_output()
        if self.user_output == "stdout":
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)  # sys.stdout, print and C-level writes alike: nowhere
            os.close(devnull)
        else:
            self._divert_user_output()
        self.write_marker(marker)

    def _divert_user_output(self) -> None:
        os.dup2(2, 1)  # C-level writes by user code land on stderr, too
        sys.stdout = sys.stderr


def _flush_user_output() -> None:
    """Flush Python's and the C library's stdout buffers (printf from extension code)."""
    for stream in (sys.stdout, sys.__stdout__):
        # Closed or broken by user code: there is nothing left to keep.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()  # type: ignore[union-attr]
    if os.name == "posix":
        import ctypes  # imported at the stop only: start-up stays short

        with contextlib.suppress(OSError, AttributeError):  # a libc without fflush
            ctypes.CDLL(None).fflush(None)
