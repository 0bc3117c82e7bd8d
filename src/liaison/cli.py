"""The command line: ``python -m liaison.websocket HOST:PORT [options]``.

The main thread runs commands (see execution.py); a second thread runs the asyncio
loop that serves the WebSocket. Stdout carries the start and stop markers only.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import os
import signal
import socket
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from . import __version__
from .constants import START_MARKER, STOP_MARKER
from .core import Companion
from .dispatch import Dispatcher
from .execution import Executor, Stopping
from .security import RedactingFormatter, is_loopback_host
from .server import Liaison
from .settings import DEFAULT_MAX_MESSAGE_SIZE, Settings

if TYPE_CHECKING:
    import argparse

__all__ = ["main", "parse_address", "serve"]

log = logging.getLogger("liaison")

# How long a stop may wait for a running command before the process exits regardless.
STOP_GRACE_SECONDS = 3.0
PARENT_POLL_SECONDS = 0.25


class UsageError(Exception):
    """A bad command line: reported on one stderr line, exit status 2."""


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` to (host, port); raises UsageError."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"invalid address {address!r}: expected HOST:PORT, port 0-65535")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise UsageError(f"invalid address {address!r}: write IPv6 hosts as [::1]:PORT")
    return host, int(port_text)


def _byte_size(text: str) -> int:
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    text = text.strip().lower().removesuffix("ib").removesuffix("b")
    factor = units.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in units else text
    try:
        return int(float(number) * factor)
    except ValueError:
        import argparse  # only argparse calls this

        raise argparse.ArgumentTypeError(f"not a size in bytes: {text!r}") from None


# The options' defaults, for the parser and for parse_args's shortcut alike.
OPTION_DEFAULTS: dict[str, Any] = {
    "token": None,
    "allow_origin": [],
    "allow_module": None,
    "max_message_size": DEFAULT_MAX_MESSAGE_SIZE,
    "max_connections": None,
    "handshake_timeout": 10.0,
    "watch_parent": True,
    "log_level": "warning",
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

    parser = argparse.ArgumentParser(
        prog="python -m liaison.websocket",
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
        help="also accept WebSocket connections from this exact origin; '*' accepts all",
    )  # fmt: skip
    parser.add_argument(
        "--allow-module", action="append", metavar="NAME",
        help="only let clients import this module and its submodules (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--max-message-size", type=_byte_size, metavar="BYTES",
        help="largest incoming message, e.g. 64MiB (default); larger ones close with 1009",
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
    parser.add_argument(
        "--no-watch-parent", dest="watch_parent", action="store_false",
        help="keep running when the process that started the liaison exits",
    )  # fmt: skip
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error", "critical"],
        help="how much to log on stderr (default: warning)",
    )  # fmt: skip
    parser.set_defaults(**OPTION_DEFAULTS)
    return parser


def settings_from_args(args: Any, environ: dict[str, str]) -> Settings:
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
    return Settings(
        host=host,
        port=port,
        token=token,
        allowed_origins=frozenset(args.allow_origin),
        allowed_modules=None if args.allow_module is None else frozenset(args.allow_module),
        max_message_size=args.max_message_size,
        max_connections=args.max_connections,
        handshake_timeout=args.handshake_timeout,
        watch_parent=args.watch_parent,
    )


class MarkerWriter:
    """Writes the start and stop markers, each at most once, straight to a file descriptor."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()
        self._written: set[str] = set()

    def write(self, marker: str) -> None:
        with self._lock:
            if marker in self._written:
                return
            self._written.add(marker)
            os.write(self._fd, marker.encode())


def _claim_stdout() -> MarkerWriter:
    """Keep the real stdout for markers; send everything else printed to stderr."""
    sys.stdout.flush()
    marker_fd = os.dup(1)
    os.dup2(2, 1)  # C-level writes by user code land on stderr, too
    sys.stdout = sys.stderr
    return MarkerWriter(marker_fd)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = settings_from_args(args, dict(os.environ))
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
            secrets=() if settings.token is None else (settings.token,),
        )
    )
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])
    return serve(settings, markers=_claim_stdout(), on_listening=_collect_from_now_on)


def _collect_from_now_on() -> None:
    """Start-up is over: keep its objects out of every later collection (they live as
    long as the process) and turn the collector back on (see websocket.py)."""
    gc.freeze()
    gc.enable()


def serve(
    settings: Settings,
    companion: Companion | None = None,
    markers: MarkerWriter | None = None,
    on_listening: Callable[[], None] | None = None,
) -> int:
    """Serve until stopped; must run on the main thread. Returns the exit status.
    ``on_listening`` is called once the start marker is written."""
    markers = markers or MarkerWriter(sys.stdout.fileno())
    companion = companion or Companion(settings.allowed_modules)
    io = IOThread(settings)
    executor = Executor(companion, call_later=io.call_later)
    done = threading.Event()
    host_text = settings.host

    def stop() -> None:
        executor.stop()
        _start_watchdog(done, lambda: markers.write(f"{STOP_MARKER}@{host_text}:{io.port}"))

    dispatcher = Dispatcher(companion, executor, request_stop=stop)
    executor.install_signal_handlers()
    io.on_signal = lambda signum: _start_watchdog(
        done, lambda: markers.write(f"{STOP_MARKER}@{host_text}:{io.port}")
    )
    try:
        port = io.start(dispatcher.handle, stop, dispatcher.on_close)
    except OSError as error:
        print(f"liaison: error: cannot listen on {settings.host}:{settings.port}: "
              f"{error.strerror or error}", file=sys.stderr)  # fmt: skip
        return 1
    except Stopping:
        io.shutdown()
        return 0
    companion.namespace["liaison"] = Liaison(host_text, port, io.broadcast, stop)
    markers.write(f"{START_MARKER}@{host_text}:{port}")
    if on_listening is not None:
        on_listening()
    log.info("listening on ws://%s:%d", settings.host, port)
    try:
        executor.run_forever()
    finally:
        io.shutdown()
        markers.write(f"{STOP_MARKER}@{host_text}:{port}")
        done.set()
    return 0


def _start_watchdog(done: threading.Event, write_stop_marker: Callable[[], None]) -> None:
    """Exit the process if the main thread is still stuck in a command after the grace time."""

    def watch() -> None:
        if not done.wait(STOP_GRACE_SECONDS):
            log.warning("a command ignored the stop for %.0f s: exiting", STOP_GRACE_SECONDS)
            write_stop_marker()
            os._exit(0)

    threading.Thread(target=watch, name="liaison-watchdog", daemon=True).start()


class _StandIn(types.ModuleType):
    """Takes a module's place in ``sys.modules``; the first attribute asked of it
    imports the real module, which takes its place, and answers from it."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


@contextlib.contextmanager
def _imported_without(module_name: str) -> Iterator[None]:
    """Within the block, ``import module_name`` (not yet imported) gives a stand-in that
    imports the real module only if used; after the block, imports are as usual."""
    if module_name in sys.modules:
        yield
        return
    stand_in = _StandIn(module_name)
    sys.modules[module_name] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(module_name) is stand_in:
            del sys.modules[module_name]
        parent_name, _, child = module_name.rpartition(".")
        parent = sys.modules.get(parent_name)
        if getattr(parent, child, None) is stand_in:
            delattr(parent, child)


class IOThread:
    """The asyncio loop serving the transport, on a thread of its own."""

    def __init__(self, settings: Settings) -> None:
        # websockets imports importlib.metadata (with email, zipfile, csv...: ~10% of
        # start-up) for a code path only its unreleased builds run.
        with _imported_without("importlib.metadata"):
            from .transports.websocket import WebSocketTransport  # the websockets extra

        self.settings = settings
        self.transport_class = WebSocketTransport
        self.loop = asyncio.new_event_loop()
        self.port = settings.port
        self.on_signal: Callable[[int], None] = lambda signum: None
        self._thread = threading.Thread(target=self._run, name="liaison-io", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Event | None = None
        self._wakeup_r, self._wakeup_w = socket.socketpair()

    def start(
        self,
        on_message: Callable[[Any, Any], None],
        request_stop: Callable[[], None],
        on_close: Callable[[Any], None] | None = None,
    ) -> int:
        self.transport = self.transport_class(self.settings, on_message, on_close)
        self._request_stop = request_stop
        self._wakeup_w.setblocking(False)
        # Signals are handled on the main thread, which may be stuck in C code; the
        # wakeup fd tells this thread too, so the watchdog can still enforce the stop.
        signal.set_wakeup_fd(self._wakeup_w.fileno(), warn_on_full_buffer=False)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error
        return self.port

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Callable[[], None]:
        handle = self.loop.call_later(seconds, callback)

        def cancel() -> None:
            self.loop.call_soon_threadsafe(handle.cancel)

        return cancel

    def broadcast(self, data: bytes) -> None:
        self.transport.broadcast(data)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        try:
            self.port = await self.transport.start()
        except BaseException as error:
            self._error = error
            self._started.set()
            return
        self._started.set()
        self.loop.add_reader(self._wakeup_r.fileno(), self._read_wakeup)
        watcher = (
            asyncio.create_task(self._watch_parent(os.getppid()))
            if self.settings.watch_parent
            else None
        )
        await self._stopped.wait()
        if watcher is not None:
            watcher.cancel()
        await self.transport.close()

    def _read_wakeup(self) -> None:
        try:
            data = self._wakeup_r.recv(64)
        except BlockingIOError:
            return
        for signum in data:
            if signum in (signal.SIGINT, signal.SIGTERM):
                self.on_signal(signum)

    async def _watch_parent(self, parent: int) -> None:
        if parent <= 1:
            return  # started by init: there is no parent to outlive
        while os.getppid() == parent:
            await asyncio.sleep(PARENT_POLL_SECONDS)
        log.warning("the process that started the liaison exited: stopping")
        self._request_stop()

    def shutdown(self) -> None:
        """Close every connection and end the loop (waits up to 2 s)."""
        if self._thread.is_alive() and self._stopped is not None:
            self.loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(2.0)
        signal.set_wakeup_fd(-1)


if __name__ == "__main__":
    sys.exit(main())
