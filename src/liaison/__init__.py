"""Liaison: drive a Python backend from a frontend by sending JSON commands.

``liaison.progress(data)`` reports progress of the running command to its client.
"""

from __future__ import annotations

from typing import Any

__version__ = "2.0.0.dev0"
__all__ = ["Companion", "__version__", "progress"]


def __getattr__(name: str) -> Any:
    # Imported lazily: `python -m liaison.constants` and start-up stay light.
    if name == "progress":
        from .server.jobs import progress

        return progress
    if name == "Companion":
        from .core import Companion

        return Companion
    raise AttributeError(f"module 'liaison' has no attribute {name!r}")
