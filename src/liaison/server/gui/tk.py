"""``--gui tk``: the Tk event loop (tkinter) on the main thread."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import GuiLoop

if TYPE_CHECKING:
    import tkinter

__all__ = ["TkLoop"]

# Where Tk cannot watch a socket (Windows), how often it looks for work, in ms.
POLL_MS = 10


class TkLoop(GuiLoop):
    """Runs ``mainloop`` of a hidden ``tkinter.Tk`` root; windows that commands create
    (their own ``Tk()`` roots or ``Toplevel``s) are served by the same Tcl notifier.

    Other threads must not call into Tk (with a threaded Tcl they would block until the
    main thread is free), so :meth:`wake` writes a byte to a socket that Tk watches
    (``createfilehandler``) or, without fd readers, that a timer polls.
    """

    def __init__(self, fd_readers: bool = True) -> None:
        super().__init__(fd_readers)
        self._woken, self._waker = socket.socketpair()
        self._woken.setblocking(False)
        self._waker.setblocking(False)
        self._quitting = threading.Event()
        self._root: tkinter.Tk | None = None

    def prepare(self) -> None:
        import tkinter

        try:
            self._root = tkinter.Tk()
        except tkinter.TclError as error:  # no display, most often
            raise RuntimeError(f"cannot start Tk: {error}") from None
        self._root.withdraw()

    def run(self, pull: Callable[[], None]) -> None:
        if self._root is None:
            self.prepare()
        root = self._root
        assert root is not None

        def on_wake(*_: Any) -> None:
            with contextlib.suppress(BlockingIOError):
                self._woken.recv(4096)
            if self._quitting.is_set():
                root.quit()
            else:
                pull()

        def poll() -> None:
            root.after(POLL_MS, poll)
            on_wake()

        if self.fd_readers and hasattr(root.tk, "createfilehandler"):
            import tkinter

            root.tk.createfilehandler(self._woken.fileno(), tkinter.READABLE, on_wake)
            root.after(0, on_wake)  # commands queued before the loop started
        else:
            root.after(0, poll)
        # mainloop also returns when user code calls quit() on any Tk: carry on.
        while not self._quitting.is_set():
            root.mainloop()

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # full: it is awake already
            self._waker.send(b"\0")

    def quit(self) -> None:
        self._quitting.set()
        self.wake()
