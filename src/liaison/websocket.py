"""``python -m liaison.websocket HOST:PORT``: start a WebSocket liaison."""

from __future__ import annotations

__all__: list[str] = []  # an entry point only

if __name__ == "__main__":
    import gc
    import sys

    # Nearly all that start-up creates (modules, functions, classes) lives as long as
    # the process: collecting while importing only costs time. main() lets the
    # collector run again once listening, with those objects frozen out of its reach.
    gc.disable()
    from .cli.websocket import main

    sys.exit(main())
