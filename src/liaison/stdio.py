"""``python -m liaison.stdio``: a liaison speaking to its parent over stdin and stdout."""

from __future__ import annotations

__all__: list[str] = []  # an entry point only

if __name__ == "__main__":
    import gc
    import sys

    gc.disable()  # as in websocket.py: main() turns it back on once serving
    from .cli.stdio import main

    sys.exit(main())
