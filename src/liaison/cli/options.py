"""What ``python -m liaison.websocket`` and ``python -m liaison.stdio`` share on their
command lines: the common options, their checks, and the end of start-up."""

from __future__ import annotations

import gc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..server.gui import GUI_LOOPS
from ..server.hostos import HostOS, current_host
from ..server.output import USER_OUTPUTS
from ..server.settings import DEFAULT_MAX_MESSAGE_SIZE

if TYPE_CHECKING:
    import argparse

__all__ = [
    "COMMON_DEFAULTS",
    "UsageError",
    "add_common_options",
    "byte_size",
    "check_gui_and_host",
    "collect_from_now_on",
]

# The common options' defaults, for the parsers and for their argparse-free shortcuts.
COMMON_DEFAULTS: dict[str, Any] = {
    "allow_module": None,
    "max_message_size": DEFAULT_MAX_MESSAGE_SIZE,
    "watch_parent": True,
    "user_output": "stdout",
    "gui": None,
    "log_level": "warning",
}


class UsageError(Exception):
    """A bad command line: reported on one stderr line, exit status 2."""


def byte_size(text: str) -> int:
    """``64MiB``, ``512k``, ``1000`` as a number of bytes; argparse's type for sizes."""
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    text = text.strip().lower().removesuffix("ib").removesuffix("b")
    factor = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        return int(float(number) * factor)
    except ValueError:
        import argparse  # only argparse calls this

        raise argparse.ArgumentTypeError(f"not a size in bytes: {text!r}") from None


def add_common_options(
    parser: argparse.ArgumentParser,
    *,
    too_large: str,
    user_output: str,
    user_outputs: tuple[str, ...] = USER_OUTPUTS,
) -> None:
    """Add the shared options; ``too_large`` says what happens to a message over
    ``--max-message-size``, ``user_output`` what ``--user-output`` does, ``user_outputs``
    the values it takes (``--help`` offers only these)."""
    parser.add_argument(
        "--allow-module", action="append", metavar="NAME",
        help="only let clients import this module and its submodules (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--max-message-size", type=byte_size, metavar="BYTES",
        help=f"largest incoming message, e.g. 64MiB (default); {too_large}",
    )  # fmt: skip
    parser.add_argument(
        "--no-watch-parent", dest="watch_parent", action="store_false",
        help="keep running when the process that started the liaison exits",
    )  # fmt: skip
    parser.add_argument("--user-output", choices=user_outputs, help=user_output)
    parser.add_argument(
        "--gui", metavar="TOOLKIT",
        help="run this GUI toolkit's event loop between commands, so their windows stay "
        "alive: tk, qt (PySide6, PyQt6 or PyQt5), or module:Class of a liaison.server.gui.GuiLoop",
    )  # fmt: skip
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error", "critical"],
        help="how much to log on stderr (default: warning)",
    )  # fmt: skip


def check_gui_and_host(args: Any, environ: Mapping[str, str]) -> HostOS:
    """Check ``--gui``; return this OS's mechanisms (``LIAISON_HOSTOS`` applied).

    Raises UsageError."""
    if args.gui is not None and args.gui not in GUI_LOOPS and ":" not in args.gui:
        raise UsageError(
            f"unknown --gui {args.gui!r}: expected {', '.join(sorted(GUI_LOOPS))} or module:Class"
        )
    try:
        return current_host(environ)
    except ValueError as error:
        raise UsageError(str(error)) from None


def collect_from_now_on() -> None:
    """Start-up is over: keep its objects out of every later collection (they live as
    long as the process) and turn the collector back on (see websocket.py)."""
    gc.freeze()
    gc.enable()
