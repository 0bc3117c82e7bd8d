"""Commands the memory cases run (bench/memory_cases.py puts this folder on the liaison's
PYTHONPATH)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import liaison


def stream(count: int, size: int) -> Iterator[str]:
    """``count`` partials of ``size`` characters (run with ``"stream": true``)."""
    item = "x" * size
    for _ in range(count):
        yield item


def push(handle: Any, count: int, size: int) -> int:
    """``count`` pushes (``liaison.send``) of ``size`` characters."""
    item = "x" * size
    for _ in range(count):
        handle.send(item, to="sender")
    return count


def progress(count: int, size: int) -> int:
    """``count`` progress messages of ``size`` characters."""
    item = "x" * size
    for _ in range(count):
        liaison.progress(item)
    return count
