"""The liaison's layers in the test process.

``InProcessLiaison``: wired as the runtime wires them, with no transport: messages in,
replies out, by plain calls on this thread (ordered commands run here, as on the main
thread of a real liaison). ``InProcessServer``: the full stack, a real transport
included, for tests that need no process of their own."""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import orjson

from liaison.cli import stdio, websocket
from liaison.constants import START_MARKER
from liaison.core import Companion
from liaison.protocol.encoding import loads
from liaison.server.dispatch import Dispatcher
from liaison.server.execution import Executor
from liaison.server.handle import Liaison
from liaison.server.hostos import current_host
from liaison.server.io_thread import IOThread
from liaison.server.settings import Settings
from liaison.server.signals import ProcessSignals
from liaison.server.transports.contract import Transport, TransportFactory, TransportHandlers
from liaison.server.transports.websocket.settings import WebSocketSettings


class RecordingSink:
    """A connection that keeps what it is sent (a transports.contract.Sink)."""

    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.id = next(self._ids)
        self.immediate_pushes = False
        self.replies: list[bytes | bytearray] = []  # final replies, in order
        self.pushes: list[bytes | bytearray] = []  # everything else
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def hold_arriving(self) -> int:
        return 0  # no transport counts its messages' bytes here

    def send(self, data: bytes | bytearray, held: int = 0) -> None:
        with self._changed:
            self.replies.append(data)
            self._changed.notify_all()

    def push(self, data: bytes | bytearray) -> None:
        with self._lock:
            self.pushes.append(data)

    def push_unsolicited(self, data: bytes | bytearray) -> None:
        self.push(data)

    def set_immediate_pushes(self, immediate: bool) -> None:
        self.immediate_pushes = immediate

    def wait_for_replies(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The first ``count`` replies, decoded, once they are in (AssertionError if not)."""
        with self._changed:
            arrived = self._changed.wait_for(lambda: len(self.replies) >= count, timeout)
        assert arrived, f"{len(self.replies)} of {count} replies after {timeout} s"
        return [loads(reply) for reply in self.replies[:count]]  # as the liaison reads


def message(command: str, *args: Any, id: Any = None, **options: Any) -> str:
    """A message as a client sends it; ``kwargs=`` in ``options`` are the command's."""
    body = {"command": command, "args": list(args), "kwargs": options.pop("kwargs", {})}
    return orjson.dumps({"command": body, "id": id, **options}).decode()


class InProcessLiaison:
    """A Companion, an Executor and a Dispatcher, fed messages by plain calls.

    Each :meth:`exchange` makes a fresh executor (one cannot restart) over the same
    Companion, so the namespace persists across exchanges as across a connection's life.
    """

    def __init__(self, allowed_modules: Iterable[str] | None = None) -> None:
        self.companion = Companion(allowed_modules)
        self.stop_requests = 0
        self.broadcasts: list[bytes] = []
        self.companion.namespace["liaison"] = Liaison(
            "127.0.0.1:0", self.broadcasts.append, self._count_stop
        )

    def exchange(self, *messages: str | bytes, sink: RecordingSink | None = None) -> list[Any]:
        """Handle ``messages`` in order, run the ordered ones here, return every reply."""
        sink = sink or RecordingSink()
        executor = Executor(self.companion)
        dispatcher = Dispatcher(self.companion, executor, request_stop=self._count_stop)
        before = len(sink.replies)
        for data in messages:
            dispatcher.handle(data, sink)
        executor.stop_when_idle()
        executor.run_forever()
        return sink.wait_for_replies(before + len(messages))[before:]

    def ask(self, command: str, *args: Any, **options: Any) -> dict[str, Any]:
        """The reply to one command."""
        reply: dict[str, Any] = self.exchange(message(command, *args, **options))[0]
        return reply

    def call(self, command: str, *args: Any, **options: Any) -> Any:
        """The ``response`` of one command (AssertionError on an error reply)."""
        reply = self.ask(command, *args, **options)
        assert "response" in reply, reply
        return reply["response"]

    def _count_stop(self) -> None:
        self.stop_requests += 1


class InProcessServer:
    """A whole liaison in this process, wired as ``Runtime`` wires it: a real transport
    (WebSocket on loopback, or stdio over a pipe pair) on its own I/O thread, the real
    dispatcher and executor; no start marker, signals or stdout of its own.

    The executor's ordered loop must run on the main thread (a cancel or timeout
    interrupts it with a signal, whose Python handler runs there only). So a test that
    uses one runs on another
    thread (conftest's ``pytest_runtest_protocol``) while the main thread does the
    :attr:`main_thread_work`: :meth:`start` has it build a server and serve it until it
    stops, as a liaison process's main thread does.
    """

    main_thread_work: ClassVar[queue.Queue[Callable[[], None] | None]] = queue.Queue()

    @classmethod
    def start(
        cls, transport: str = "websocket", *options: str, environ: dict[str, str] | None = None
    ) -> InProcessServer:
        """A server with the settings the command line makes of ``options`` (and of
        ``environ``), built and served on the main thread; call from the test's thread."""
        assert threading.current_thread() is not threading.main_thread(), (
            "an in-process liaison needs the test on a thread of its own: use the liaison or "
            "client fixture, or mark the test in_process"
        )
        made: queue.Queue[InProcessServer | BaseException] = queue.Queue()

        def build_and_serve() -> None:
            try:
                server = cls(transport, *settings_from_options(transport, options, environ or {}))
            except BaseException as error:
                made.put(error)
                return
            made.put(server)
            server.serve()

        cls.main_thread_work.put(build_and_serve)
        server = made.get(timeout=30)
        if isinstance(server, BaseException):
            raise server
        return server

    def __init__(
        self, transport: str, settings: Settings, websocket_settings: WebSocketSettings | None
    ) -> None:
        """``websocket_settings``: for the WebSocket transport only."""
        self.settings = settings
        host_os = self.settings.host_os or current_host()
        self.companion = Companion(self.settings.allowed_modules)
        self.io = IOThread(self.settings, self._factory(transport, websocket_settings), host_os)
        self.signals = ProcessSignals(host_os)  # the interrupt signal only: no stop signals
        self.executor = Executor(
            self.companion,
            call_later=self.io.call_later,
            host=host_os,
            interrupt_main=self.signals.interrupt_main,
        )
        self.dispatcher = Dispatcher(self.companion, self.executor, request_stop=self.stop)
        self._closed = threading.Event()
        self.address = self.io.start(
            TransportHandlers(self.dispatcher.handle, self.dispatcher.on_close, self.stop)
        )
        self.companion.namespace["liaison"] = Liaison(self.address, self.io.broadcast, self.stop)
        self.host, _, port = self.address.rpartition(":")
        self.port = int(port) if port.isdigit() else 0
        if transport == "stdio":  # the start marker first, as ChannelOutput writes it
            os.write(self._output_w, f"{START_MARKER}@{self.address}\n".encode())
        self.io.transport.start_reading()  # as the runtime does once the marker is out

    @property
    def url(self) -> str:
        return f"ws://{self.address}"

    def _factory(
        self, transport: str, websocket_settings: WebSocketSettings | None
    ) -> TransportFactory:
        if transport == "websocket":
            assert websocket_settings is not None
            return websocket.transport_factory(websocket_settings)
        from liaison.server.transports.stdio.transport import StdioTransport

        # The liaison reads input_r and writes output_w; its peer has the other ends.
        self._input_r, self.input_w = os.pipe()
        self.output_r, self._output_w = os.pipe()

        def build(settings: Settings, handlers: TransportHandlers) -> Transport:
            return StdioTransport(
                settings, handlers, input_fd=self._input_r, output_fd=self._output_w
            )

        return build

    def stop(self) -> None:
        """What the liaison's stop does here: end the ordered loop (any thread)."""
        self.executor.stop()

    def serve(self) -> None:
        """Run ordered commands on this (main) thread until :meth:`stop`, then close
        every connection and the I/O thread (and the liaison's pipe ends)."""
        self.signals.handle_interrupts(self.executor.on_interrupt_signal)
        try:
            self.executor.run_forever()
        finally:
            self.signals.restore()
            self.io.shutdown()
            if hasattr(self, "_input_r"):
                os.close(self._input_r)
                os.close(self._output_w)
            self._closed.set()

    def close(self) -> None:
        """Stop, and wait until :meth:`serve` has closed everything (any thread)."""
        self.stop()
        assert self._closed.wait(30), "the in-process liaison did not close"


def settings_from_options(
    transport: str, options: Iterable[str], environ: dict[str, str]
) -> tuple[Settings, WebSocketSettings | None]:
    """The settings ``python -m liaison.TRANSPORT`` makes of ``options`` (on 127.0.0.1:0;
    no parent to watch here), and the WebSocket settings (None for stdio)."""
    if transport == "websocket":
        args = websocket.parse_args(["127.0.0.1:0", *options, "--no-watch-parent"])
        return websocket.settings_from_args(args, environ)
    args = stdio.build_parser().parse_args([*options, "--no-watch-parent"])
    return stdio.settings_from_args(args, environ), None
