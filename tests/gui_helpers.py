"""Commands for the GUI tests: run inside a liaison started with ``--gui``."""

from __future__ import annotations

import time
from typing import Any

_ticks: dict[str, int] = {}
_kept: list[Any] = []  # windows and timers, alive between commands


def ticks(name: str) -> int:
    return _ticks.get(name, 0)


def _counter(name: str) -> Any:
    _ticks[name] = 0

    def tick() -> None:
        _ticks[name] += 1

    return tick


def start_tk_ticker(interval_ms: int = 20) -> str:
    """Open a Tk window whose ``after`` timer counts ``ticks("tk")``."""
    import tkinter

    window = tkinter.Tk()
    label = tkinter.Label(window, text="0")
    label.pack()
    count = _counter("tk")

    def tick() -> None:
        # Rescheduled whatever happens: an interrupt (cancel, timeout) that lands in this
        # callback, run by a command pumping Tk, is printed by Tk and would end the ticker.
        try:
            count()
            label.configure(text=str(_ticks["tk"]))
        finally:
            window.after(interval_ms, tick)

    window.after(interval_ms, tick)
    _kept.append(window)
    return "started"


def start_qt_ticker(interval_ms: int = 20) -> str:
    """Open a Qt window whose ``QTimer`` counts ``ticks("qt")``."""
    from liaison.server.gui.qt import qt_modules

    core, widgets, _ = qt_modules()
    label = widgets.QLabel("0")
    label.show()
    timer = core.QTimer()
    timer.timeout.connect(_counter("qt"))
    timer.start(interval_ms)
    _kept.extend([label, timer])
    return "started"


def pump_tk(seconds: float) -> int:
    """A GUI command: keep the Tk windows serviced for ``seconds``; returns the ticks."""
    import tkinter

    root = tkinter.Tk()
    _kept.append(root)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        root.update()
        time.sleep(0.005)
    return ticks("tk")


def show_figure(backend: str) -> str:
    """Show a matplotlib figure with ``block=False``; its timer counts ``ticks("mpl")``
    and each of its draws ``ticks("draws")``."""
    import matplotlib

    matplotlib.use(backend)
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots()
    axes.plot([0, 1], [0, 1])
    timer = figure.canvas.new_timer(interval=20)
    timer.add_callback(_counter("mpl"))
    figure.canvas.mpl_connect("draw_event", lambda event: _count("draws"))
    plt.show(block=False)
    timer.start()
    _kept.extend([figure, timer])
    return matplotlib.get_backend()


def _count(name: str) -> None:
    _ticks[name] = _ticks.get(name, 0) + 1


def redraw_figure() -> int:
    """Ask for a redraw (done later, by the event loop); returns the draws so far."""
    figure = next(kept for kept in _kept if hasattr(kept, "canvas"))
    figure.axes[0].set_title(f"draw {ticks('draws')}")
    figure.canvas.draw_idle()
    return ticks("draws")
