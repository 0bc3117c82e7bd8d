"""``python -m liaison.websocket HOST:PORT``: start a WebSocket liaison."""

from __future__ import annotations

if __name__ == "__main__":
    import sys

    from .cli import main

    sys.exit(main())
