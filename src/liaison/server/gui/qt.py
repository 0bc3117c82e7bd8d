"""``--gui qt``: the Qt event loop on the main thread, through PySide6, PyQt6 or PyQt5."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

from . import GuiLoop

__all__ = ["QtLoop", "qt_modules"]

log = logging.getLogger("liaison.gui")

# The bindings tried in order, by their QT_API names (matplotlib's and qtpy's spelling).
BINDINGS = {"pyside6": "PySide6", "pyqt6": "PyQt6", "pyqt5": "PyQt5"}
# How often Python code runs while Qt idles, in ms: Python signal handlers (SIGTERM's
# stop) run only then, and Qt's own loop never runs them.
SIGNAL_PUMP_MS = 100


def qt_modules(environ: dict[str, str] | None = None) -> tuple[ModuleType, ModuleType, Any]:
    """``(QtCore, QtWidgets, Signal)`` of the binding already imported, else the one
    ``QT_API`` names, else the first installed of PySide6, PyQt6, PyQt5."""
    environ = dict(os.environ) if environ is None else environ
    loaded = [package for package in BINDINGS.values() if package in sys.modules]
    wanted = BINDINGS.get(environ.get("QT_API", "").lower())
    candidates = loaded or ([wanted] if wanted else list(BINDINGS.values()))
    for package in candidates:
        try:
            core = importlib.import_module(f"{package}.QtCore")
            widgets = importlib.import_module(f"{package}.QtWidgets")
        except ImportError:
            continue
        return core, widgets, getattr(core, "Signal", None) or core.pyqtSignal
    raise ImportError(f"--gui qt needs one of {', '.join(BINDINGS.values())} installed")


class QtLoop(GuiLoop):
    """Runs ``QApplication.exec()``; :meth:`wake` emits a signal of an object living in
    the main thread, which Qt queues across threads."""

    def __init__(self, fd_readers: bool = True) -> None:
        super().__init__(fd_readers)  # Qt's queued signals need no fd on any OS
        self._quitting = threading.Event()
        self._waker: Any = None
        self._app: Any = None
        self._error: BaseException | None = None  # raised in a callback, for run()

    def prepare(self) -> None:
        core, widgets, signal_type = qt_modules()
        app = widgets.QApplication.instance()
        if app is None:
            if not _has_display():
                raise RuntimeError("cannot start Qt: no display (DISPLAY is not set)")
            app = widgets.QApplication([sys.argv[0]])
        app.setQuitOnLastWindowClosed(False)  # closing a command's window ends nothing
        self._app = app
        _keep_slot_errors_from_aborting()

        class Waker(core.QObject):  # type: ignore[misc,name-defined]
            woken = signal_type()

        self._core = core
        self._waker_class = Waker

    def run(self, pull: Callable[[], None]) -> None:
        if self._app is None:
            self.prepare()
        core, app = self._core, self._app

        def on_wake() -> None:
            # Qt must never see an exception: PyQt aborts on one, PySide prints it.
            try:
                if self._quitting.is_set():
                    app.quit()
                else:
                    pull()
            except BaseException as error:  # Stopping from a signal handler, mostly
                self._error = error
                app.quit()

        waker = self._waker_class()
        waker.woken.connect(on_wake, core.Qt.ConnectionType.QueuedConnection)
        pump = core.QTimer()
        pump.timeout.connect(lambda: None)
        pump.start(SIGNAL_PUMP_MS)
        self._waker = waker
        core.QTimer.singleShot(0, on_wake)  # commands queued before the loop started
        try:
            # exec() also returns when a command calls quit(): carry on.
            while not self._quitting.is_set():
                app.exec()
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
        finally:
            pump.stop()
            self._waker = None

    def wake(self) -> None:
        waker = self._waker
        if waker is not None:
            waker.woken.emit()

    def quit(self) -> None:
        self._quitting.set()
        self.wake()


def _has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) or (
        os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal"))
    )


def _keep_slot_errors_from_aborting() -> None:
    """PyQt >= 5.5 aborts the process on an exception in a slot when ``sys.excepthook``
    is Python's default; a command's window must not take the liaison down with it."""
    if sys.excepthook is sys.__excepthook__:

        def print_slot_error(kind: Any, value: Any, traceback: Any) -> None:
            log.error("an exception in a Qt callback", exc_info=(kind, value, traceback))

        sys.excepthook = print_slot_error
