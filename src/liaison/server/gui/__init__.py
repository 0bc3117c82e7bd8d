"""GUI event loops that run on the main thread and pull the liaison's ordered commands.

With ``--gui NAME`` the main thread runs a toolkit's event loop instead of blocking on
the job queue, so windows that commands open keep repainting and their timers keep
firing between commands (as Jupyter's ``%gui``). Commands still run there, one at a
time and in order: each runs inside one callback of the loop.

Adding a toolkit (wx, pyglet, Cocoa...) is one small subclass of :class:`GuiLoop`,
registered under its name with :func:`register`; see tk.py and qt.py.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable

__all__ = ["GUI_LOOPS", "GuiLoop", "create_gui_loop", "register"]


class GuiLoop(ABC):
    """One toolkit's event loop on the main thread.

    The executor calls :meth:`run` once, on the main thread. Between :meth:`wake` and
    the loop's next idle moment, the loop calls ``pull()`` on the main thread; ``pull``
    runs at most one queued command and calls :meth:`wake` again if more are queued.
    :meth:`run` returns soon after :meth:`quit`. ``wake`` and ``quit`` may be called
    from any thread, before or during ``run``, and never block.

    ``fd_readers``: the OS lets the loop watch a socket (False on Windows, where a
    loop polls instead; tests choose it through ``LIAISON_HOSTOS=wakeup=recv``).
    """

    def __init__(self, fd_readers: bool = True) -> None:
        self.fd_readers = fd_readers

    def prepare(self) -> None:  # noqa: B027 - a toolkit may need nothing here
        """Start the toolkit on the main thread, before the liaison says it is listening;
        raises (e.g. RuntimeError) if it cannot, such as with no display."""

    @abstractmethod
    def run(self, pull: Callable[[], None]) -> None:
        """Run the event loop until :meth:`quit`, calling ``pull`` after each wake.

        May raise what ``pull`` or a signal handler raised (the executor handles it);
        must not leave the toolkit unusable for the next call of ``run``."""

    @abstractmethod
    def wake(self) -> None:
        """Have the loop call ``pull`` soon (any thread, never blocks)."""

    @abstractmethod
    def quit(self) -> None:
        """Have :meth:`run` return soon (any thread, never blocks)."""


# name -> "module:class", imported only when chosen (a toolkit costs start-up time).
GUI_LOOPS: dict[str, str] = {
    "tk": "liaison.server.gui.tk:TkLoop",
    "qt": "liaison.server.gui.qt:QtLoop",
}


def register(name: str, target: str) -> None:
    """Make ``--gui NAME`` use the :class:`GuiLoop` subclass at ``"module:class"``."""
    GUI_LOOPS[name] = target


def create_gui_loop(name: str, fd_readers: bool = True) -> GuiLoop:
    """A new loop of the toolkit registered as ``name``, or of the GuiLoop subclass
    ``"module:Class"``; raises ValueError for an unknown name, ImportError if the
    toolkit is not installed."""
    target = GUI_LOOPS.get(name, name)
    module_name, _, class_name = target.partition(":")
    if not class_name:
        raise ValueError(f"unknown GUI toolkit {name!r}; known: {', '.join(sorted(GUI_LOOPS))}")
    loop_class = getattr(importlib.import_module(module_name), class_name)
    loop: GuiLoop = loop_class(fd_readers)
    return loop
