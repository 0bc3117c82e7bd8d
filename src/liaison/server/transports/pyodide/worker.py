"""The glue between JavaScript (clients/js/src/pyodide/serve.ts) and :class:`PyodideHost`,
run inside Pyodide: JavaScript values in, JavaScript values out.

Text goes as a JS string; a binary frame's bytes as a Uint8Array the JavaScript side
transfers to the client's thread (no JSON detour). Imports ``pyodide`` only when called.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from .host import PyodideHost, SyncInterrupts

__all__ = ["start"]


def start(
    post_text: Callable[[str], None],
    post_binary: Callable[[Any], None],
    on_stop: Callable[[], None],
    interrupts: SyncInterrupts | None = None,
) -> Callable[[Any], None]:
    """Serve one client; return the function JavaScript calls with each of its messages
    (a string, or an ArrayBuffer for a binary frame).

    ``interrupts`` is the JS object over the shared interrupt buffer, if there is one;
    its SIGINT is then the host's (Pyodide raises SIGINT when the buffer is written).
    """
    from pyodide.ffi import to_js  # type: ignore[import-not-found]

    def deliver(data: bytes | bytearray) -> None:
        if type(data) is bytes:
            post_text(data.decode())
        else:
            post_binary(to_js(memoryview(data)))

    host = PyodideHost(deliver, interrupts=interrupts, on_stop=on_stop)
    if interrupts is not None:
        signal.signal(signal.SIGINT, host.on_interrupt)

    def receive(data: Any) -> None:
        host.receive(data if isinstance(data, str) else data.to_bytes())

    return receive
