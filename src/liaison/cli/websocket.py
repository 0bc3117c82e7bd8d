"""The command line: ``python -m liaison.websocket HOST:PORT [options]``.

It parses arguments into :class:`Settings` and :class:`WebSocketSettings`, sets up
logging on stderr, and hands over to the runtime (runtime.py), which serves until
stopped.
"""

from __future__ import annotations

import logging
import os
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..server.output import StandardOutput
from ..server.runtime import Runtime
from ..server.settings import Settings
from ..server.transports.websocket.handshake import RedactingFormatter, is_loopback_host
from ..server.transports.websocket.settings import WebSocketSettings
from .options import (
    COMMON_DEFAULTS,
    UsageError,
    add_common_options,
    check_gui_and_host,
    collect_from_now_on,
)

if TYPE_CHECKING:
    import argparse

    from ..server.transports.contract import Transport, TransportFactory, TransportHandlers

__all__ = [
    "OPTION_DEFAULTS",
    "build_parser",
    "main",
    "parse_address",
    "parse_args",
    "settings_from_args",
    "transport_factory",
]


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` to (host, port); raises UsageError."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"invalid address {address!r}: expected HOST:PORT, port 0-65535")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise UsageError(f"invalid address {address!r}: write IPv6 hosts as [::1]:PORT")
    return host, int(port_text)


# The options' defaults, for the parser and for parse_args's shortcut alike.
OPTION_DEFAULTS: dict[str, Any] = {
    **COMMON_DEFAULTS,
    "token": None,
    "allow_origin": [],
    "max_connections": None,
    "handshake_timeout": 10.0,
}


def parse_args(argv: Sequence[str]) -> Any:
    """The command line as an ``argparse.Namespace`` (or one alike)."""
    if len(argv) == 1 and not argv[0].startswith("-"):
        # The address alone, as launchers start a liaison: importing argparse (with
        # gettext) and building the parser would cost ~5 ms of start-up.
        return types.SimpleNamespace(address=argv[0], **OPTION_DEFAULTS)
    return build_parser().parse_args(argv)


def build_parser() -> argparse.ArgumentParser:
    import argparse  # here, not at the top: see parse_args

    # The console script (pyproject's liaison-websocket) is the same command: its help and
    # usage errors name what the user typed.
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    parser = argparse.ArgumentParser(
        prog=script if script == "liaison-websocket" else "python -m liaison.websocket",
        description="Serve a liaison: run JSON commands from WebSocket clients in Python. "
        "Prints LIAISON:CONNECTED@HOST:PORT on stdout once listening.",
    )
    parser.add_argument("address", help="HOST:PORT to listen on; port 0 picks a free port")
    parser.add_argument("--version", action="version", version=f"liaison {__version__}")
    parser.add_argument(
        "--token",
        help="require clients to present this token (prefer the LIAISON_TOKEN environment "
        "variable: other users can read command lines)",
    )
    parser.add_argument(
        "--allow-origin", action="append", metavar="ORIGIN",
        help="also accept WebSocket connections from this exact origin: 'null' (sandboxed "
        "frames, local files in browsers) and 'file://' (Electron pages) are refused "
        "unless given; '*' accepts all",
    )  # fmt: skip
    parser.add_argument(
        "--max-connections", type=int, metavar="N",
        help="refuse (HTTP 503) connections beyond N open ones (default: no limit)",
    )  # fmt: skip
    parser.add_argument(
        "--handshake-timeout", type=float, metavar="SECONDS",
        help="drop connections that have not completed the WebSocket handshake in time "
        "(default: 10)",
    )  # fmt: skip
    add_common_options(
        parser,
        too_large="larger ones close with 1009",
        user_output="where what commands print goes once the start marker is out "
        "(default: stdout, as in liaison 1.0)",
    )
    parser.set_defaults(**OPTION_DEFAULTS)
    return parser


def settings_from_args(args: Any, environ: dict[str, str]) -> tuple[Settings, WebSocketSettings]:
    """The liaison's settings and its WebSocket settings; raises UsageError."""
    host, port = parse_address(args.address)
    token = args.token or environ.get("LIAISON_TOKEN") or None
    if args.handshake_timeout <= 0:
        raise UsageError(f"--handshake-timeout must be positive, got {args.handshake_timeout}")
    if args.max_connections is not None and args.max_connections < 1:
        raise UsageError(f"--max-connections must be at least 1, got {args.max_connections}")
    if token is None and not is_loopback_host(host):
        raise UsageError(
            f"refusing to listen on {host} without a token: anyone who can reach it could "
            "run any Python code. Set LIAISON_TOKEN (or --token), or listen on 127.0.0.1."
        )
    host_os = check_gui_and_host(args, environ)
    settings = Settings(
        allowed_modules=None if args.allow_module is None else frozenset(args.allow_module),
        max_message_size=args.max_message_size,
        watch_parent=args.watch_parent,
        user_output=args.user_output,
        gui=args.gui,
        host_os=host_os,
    )
    websocket_settings = WebSocketSettings(
        host=host,
        port=port,
        token=token,
        allowed_origins=frozenset(args.allow_origin),
        max_connections=args.max_connections,
        handshake_timeout=args.handshake_timeout,
    )
    return settings, websocket_settings


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m liaison.websocket``: returns the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings, websocket_settings = settings_from_args(args, dict(os.environ))
    except UsageError as error:
        print(f"liaison: error: {error}", file=sys.stderr)
        return 2
    # Processes that user code starts have no business with the token.
    os.environ.pop("LIAISON_TOKEN", None)
    handler = logging.StreamHandler(sys.stderr)
    # At debug level websockets logs request lines and headers: ?token=... and Bearer.
    handler.setFormatter(
        RedactingFormatter(
            "%(asctime)s liaison %(levelname)s %(name)s: %(message)s",
            secrets=() if websocket_settings.token is None else (websocket_settings.token,),
        )
    )
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])
    # From here on, stdout is for the start marker first (see output.py).
    runtime = Runtime(
        settings, transport_factory(websocket_settings), StandardOutput(settings.user_output)
    )
    return runtime.run(on_listening=collect_from_now_on)


def transport_factory(websocket_settings: WebSocketSettings) -> TransportFactory:
    """Builds the WebSocket transport serving ``websocket_settings`` (imported then: it
    needs the websockets extra)."""

    def build(settings: Settings, handlers: TransportHandlers) -> Transport:
        from ..core.lazy_import import imported_without

        with imported_without("importlib.metadata"):
            from ..server.transports.websocket.transport import WebSocketTransport

        return WebSocketTransport(settings, handlers, websocket_settings=websocket_settings)

    return build


if __name__ == "__main__":
    sys.exit(main())
