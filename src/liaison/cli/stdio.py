"""The command line of ``python -m liaison.stdio [options]``.

Messages travel on stdin and stdout, one per line (docs/protocol.md, "The stdio
transport"). Stdout is the channel: the start marker is its first line, the stop marker
its last, and what user code prints goes to stderr, never to stdout.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..server.output import StandardOutput
from ..server.runtime import Runtime
from ..server.settings import Settings
from .options import (
    COMMON_DEFAULTS,
    UsageError,
    add_common_options,
    check_gui_and_host,
    collect_from_now_on,
)

if TYPE_CHECKING:
    from ..server.transports.contract import Transport, TransportFactory, TransportHandlers

__all__ = ["ADDRESS", "ChannelOutput", "build_parser", "main", "settings_from_args"]

ADDRESS = "stdio"  # what the markers name: LIAISON:CONNECTED@stdio
_MARKER_WRITE_SECONDS = 1.0


class ChannelOutput(StandardOutput):
    """Stdout as the message channel: user output always on stderr, each marker one line.

    The transport reads no message before the start marker is out (the runtime starts
    its reading then), so it is the first line; the runtime writes the stop marker once
    the transport has closed.
    """

    def __init__(self) -> None:
        super().__init__("stderr")

    def encode_marker(self, marker: str) -> bytes:
        return marker.encode() + b"\n"  # a line of the channel

    def write_marker(self, marker: str) -> None:
        with self._lock:
            if marker in self._written:
                return
            self._written.add(marker)
            _write_all(self.fd, self.encode_marker(marker), _MARKER_WRITE_SECONDS)


def _write_all(fd: int, data: bytes, seconds: float) -> None:
    """Write ``data`` to ``fd`` (non-blocking once the transport served it); give up after
    ``seconds`` without progress, or when the peer has gone."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            if not select.select([], [fd], [], seconds)[1]:
                return
        except OSError as error:
            if error.errno in (errno.EPIPE, errno.EBADF):
                return
            raise


def build_parser() -> Any:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m liaison.stdio",
        description="Serve a liaison to the process that started it: JSON commands on stdin, "
        "one per line; replies on stdout, after a first line LIAISON:CONNECTED@stdio. What "
        "commands print goes to stderr.",
    )
    parser.add_argument("--version", action="version", version=f"liaison {__version__}")
    add_common_options(
        parser,
        too_large="larger ones get an error reply",
        user_output="accepted for the options' sake: user output always goes to stderr "
        "here, since stdout carries the messages",
        user_outputs=("stderr",),
    )
    parser.set_defaults(**_OPTION_DEFAULTS)
    return parser


def settings_from_args(args: Any, environ: dict[str, str]) -> Settings:
    """The stdio liaison's settings; raises UsageError. User output is always stderr."""
    if args.user_output == "stdout":
        raise UsageError("--user-output stdout: over stdio, stdout carries the messages")
    host_os = check_gui_and_host(args, environ)
    return Settings(
        allowed_modules=None if args.allow_module is None else frozenset(args.allow_module),
        max_message_size=args.max_message_size,
        watch_parent=args.watch_parent,
        user_output="stderr",
        gui=args.gui,
        host_os=host_os,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m liaison.stdio``: returns the exit status."""
    arguments = sys.argv[1:] if argv is None else argv
    args: Any = build_parser().parse_args(arguments) if arguments else _defaults()
    try:
        settings = settings_from_args(args, dict(os.environ))
    except UsageError as error:
        print(f"liaison: error: {error}", file=sys.stderr)
        return 2
    os.environ.pop("LIAISON_TOKEN", None)  # no token here; none for user code either
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s liaison %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    output = ChannelOutput()  # from here on, fd 1 and sys.stdout are stderr
    runtime = Runtime(settings, _transport_factory(output), output=output)
    return runtime.run(on_listening=collect_from_now_on)


def _defaults() -> Any:
    """The options' defaults without argparse, which costs ~5 ms of start-up."""
    return _DEFAULTS


# Over stdio user output can only go to stderr.
_OPTION_DEFAULTS = {**COMMON_DEFAULTS, "user_output": "stderr"}
_DEFAULTS = types.SimpleNamespace(**_OPTION_DEFAULTS)


def _transport_factory(output: ChannelOutput) -> TransportFactory:
    def build(settings: Settings, handlers: TransportHandlers) -> Transport:
        from ..server.transports.stdio.transport import StdioTransport

        return StdioTransport(settings, handlers, output_fd=output.fd)

    return build


if __name__ == "__main__":
    sys.exit(main())
