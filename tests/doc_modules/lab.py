"""The ``lab`` module the docs' examples call (``lab:calibrate``, ``lab:readings``, ...).

It stands for a frontend's own backend code; tests/test_docs_examples.py puts this folder
on the liaisons' PYTHONPATH so that the examples run as written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from liaison import progress

__all__ = ["Alerts", "calibrate", "readings", "status"]


def calibrate(fast: bool = False) -> str:
    """Reports progress twice, as protocol.md's "Progress" example shows."""
    for done in (1, 2):
        progress({"done": done, "of": 3})
    return "calibrated"


def readings(count: int) -> Iterator[float]:
    """``count`` readings, one at a time (protocol.md's "Streaming")."""
    yield from [0.12, 0.15, 0.11][:count]


def status() -> str:
    return "idle"


class Alerts:
    """Pushes alerts to every client through the liaison handle it is given (``"$liaison"``)."""

    def __init__(self, liaison: Any) -> None:
        self.liaison = liaison

    def alert(self, text: str) -> str:
        self.liaison.send({"tag": "alert", "message": text})
        return text
