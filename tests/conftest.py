"""Shared fixtures: liaisons in this process (``liaison``, ``client``) or real
`python -m liaison.websocket` / `python -m liaison.stdio` processes (``fresh_liaison``,
``spawn_liaison``, ``StdioClient``; for signals, markers, exit codes, parent death), and
raw clients."""

from __future__ import annotations

import contextlib
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from websockets.sync.client import ClientConnection, connect

from inprocess import InProcessServer

TESTS = os.path.dirname(os.path.abspath(__file__))  # so the liaison can import remote_helpers
START = "LIAISON:CONNECTED@"
STOP = "LIAISON:DISCONNECTED@"


def kill_and_reap(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` if it still runs, and wait for it (no zombie left)."""
    if process.poll() is None:
        process.kill()
        process.wait()


@dataclass
class LiaisonProcess:
    """A liaison started by a test; stop it with :meth:`stop` (SIGTERM by PID)."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    stdout: bytes  # everything read from stdout so far
    stderr: bytearray = field(default_factory=bytearray)  # filled by a thread: never blocks

    def __post_init__(self) -> None:
        self._stderr_reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_reader.start()

    def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        while chunk := self.process.stderr.read1(65536):
            self.stderr += chunk

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def read_stdout(self, timeout: float = 10.0, until: bytes | None = None) -> bytes:
        """Read stdout until it holds ``until``, EOF (the process exits) or the timeout."""
        assert self.process.stdout is not None
        if self.process.stdout.closed:
            return self.stdout
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if until is not None and until in self.stdout:
                break
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self.stdout += chunk
        return self.stdout

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
            self.read_stdout(timeout=2.0)  # the stop marker, up to EOF
            return code
        finally:
            self.kill()

    def kill(self) -> None:
        kill_and_reap(self.process)
        self._stderr_reader.join(5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def stderr_text(self) -> str:
        """Stderr so far; all of it once the process has exited."""
        if self.process.poll() is not None:
            self._stderr_reader.join(5)
        return self.stderr.decode(errors="replace")


def spawn_liaison(
    *args: str,
    address: str = "127.0.0.1:0",
    env: dict[str, str] | None = None,
    timeout: float = 20.0,
    launch: Sequence[str] = ("-m", "liaison.websocket"),
    **popen: Any,
) -> LiaisonProcess:
    """Start `python -m liaison.websocket ADDRESS *args` (``launch``: what follows
    `python`) and wait for its start marker."""
    process = subprocess.Popen(
        [sys.executable, *launch, address, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": TESTS, **(env or {})},
        **popen,
    )
    started = LiaisonProcess(process, "", 0, b"")
    # The marker comes in one write; a launcher compares the whole chunk, and so do we.
    started.read_stdout(timeout, until=START.encode())
    if START.encode() not in started.stdout:
        started.kill()
        raise RuntimeError(
            f"liaison did not start: stdout={started.stdout!r}; stderr={started.stderr_text()!r}"
        )
    marker = started.stdout.decode()
    assert marker.startswith(START), f"stdout has more than the marker: {marker!r}"
    host, _, port = marker[len(START) :].rpartition(":")
    started.host, started.port = host.strip("[]"), int(port)
    return started


@pytest.fixture
def liaison() -> Iterator[InProcessServer]:
    """A WebSocket liaison in this process (inprocess.InProcessServer): the test's body
    runs on another thread, its ordered commands on the main one (pytest_runtest_protocol)."""
    server = InProcessServer.start("websocket")
    yield server
    server.close()


IN_PROCESS_FIXTURES = {"liaison", "client"}


def uses_in_process_liaison(item: pytest.Item) -> bool:
    """A fixture that starts one, or the in_process mark (for getfixturevalue)."""
    fixtures = set(getattr(item, "fixturenames", ()))
    return bool(IN_PROCESS_FIXTURES & fixtures) or item.get_closest_marker("in_process") is not None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # pytest-timeout's SIGALRM cannot be cancelled from the test's thread (below).
    for item in items:
        if uses_in_process_liaison(item):
            item.add_marker(pytest.mark.timeout(method="thread"))
    # Tests that take seconds first, so that none of them starts last and ends the run
    # alone while the other workers (pytest-xdist) idle: a worker hands its queued tests
    # to an idle one only between two tests. A stable sort: every worker computes the
    # same order, as xdist requires, and the other tests keep theirs.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """A test with an in-process liaison runs (fixtures, body, teardown) on a thread of
    its own, while the main thread runs the liaison's ordered commands, as a liaison
    process's main thread does (InProcessServer.serve)."""
    if not uses_in_process_liaison(item):
        return None
    from _pytest.runner import runtestprotocol

    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)

    def run() -> None:
        try:
            runtestprotocol(item, nextitem=nextitem, log=True)
        finally:
            InProcessServer.main_thread_work.put(None)

    thread = threading.Thread(target=run, name="test", daemon=True)
    thread.start()
    while (work := InProcessServer.main_thread_work.get()) is not None:
        work()
    thread.join()
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


@pytest.fixture
def fresh_liaison() -> Iterator[LiaisonProcess]:
    """A liaison for one test (for tests that stop it or change its state)."""
    process = spawn_liaison()
    yield process
    process.stop()


class RawClient:
    """A plain WebSocket client speaking the wire protocol, for wire-level tests."""

    def __init__(self, url: str, **options: Any) -> None:
        # __enter__: websockets 17 wants the context-manager form; older ones return self.
        self.ws: ClientConnection = connect(url, max_size=None, **options).__enter__()
        self._count = 0
        # Messages received while waiting for another one's reply, for receive() to return.
        self.backlog: list[Any] = []

    def send(self, message: Any) -> None:
        if not isinstance(message, (str, bytes)):
            message = orjson.dumps(message).decode()
        self.send_raw(message)

    def send_raw(self, data: str | bytes) -> None:
        """Send one message as is: str as text, bytes as a binary frame."""
        self.ws.send(data)

    def recv(self, timeout: float = 10.0) -> str | bytes:
        """The next message as received: str (text) or bytes (binary frame)."""
        return self.ws.recv(timeout)

    def receive(self, timeout: float = 10.0) -> Any:
        if self.backlog:
            return self.backlog.pop(0)
        return orjson.loads(self.recv(timeout))

    def command(self, name: str, *args: Any, **fields: Any) -> dict[str, Any]:
        """A message for command ``name`` with a fresh id; extra fields go top-level."""
        self._count += 1
        kwargs = fields.pop("kwargs", {})
        return {"command": {"command": name, "args": list(args), "kwargs": kwargs},
                "id": fields.pop("id", f"m{self._count}"), **fields}  # fmt: skip

    def ask(self, message: Any, timeout: float = 10.0) -> dict[str, Any]:
        """Send ``message`` and return its final reply.

        Other messages that arrive first are kept for receive(). A message that is not a
        dict with an id (bad input) gets the next message received.
        """
        self.send(message)
        wanted = message.get("id") if isinstance(message, dict) else None
        if wanted is None:
            reply: dict[str, Any] = self.receive(timeout)
            return reply
        stash = []
        while True:
            reply = orjson.loads(self.recv(timeout))
            if reply.get("id") == wanted and reply.get("tag") in ("response", "error"):
                self.backlog.extend(stash)
                return reply
            stash.append(reply)

    def call(self, name: str, *args: Any, **fields: Any) -> Any:
        """Send a command and return its ``response``; fail the test on an error reply."""
        reply = self.ask(self.command(name, *args, **fields))
        assert reply.get("tag") == "response", reply
        return reply["response"]

    def close(self) -> None:
        self.ws.close()


class StdioClient(RawClient):
    """A RawClient speaking to its own `python -m liaison.stdio` child over its pipes."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "liaison.stdio", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": TESTS, **(env or {})},
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._attach(self.process.stdin, self.process.stdout, self.process.stderr)

    def _attach(self, stdin: Any, stdout: Any, stderr: Any = None) -> None:
        """Speak over the ``stdin`` and ``stdout`` pipes (file objects); read the start marker."""
        self.stdin, self.stdout = stdin, stdout
        self.lines: queue.Queue[str | bytes | None] = queue.Queue()  # None: EOF
        self.stderr = bytearray()
        self._stderr_grew = threading.Condition()
        self._count = 0
        self.backlog = []
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True)]
        if stderr is not None:
            self._readers.append(threading.Thread(target=self._read_stderr, daemon=True))
        for reader in self._readers:
            reader.start()
        first = self.lines.get(timeout=20)
        if first != START + "stdio":
            self.kill()
            raise RuntimeError(f"no start marker but {first!r}; stderr={self.stderr!r}")

    def _read_stdout(self) -> None:
        from liaison.protocol.lines import LineDecoder

        decoder = LineDecoder(2**31)
        while chunk := self.stdout.read1(2**20):
            for message in decoder.feed(chunk):
                assert not isinstance(message, Exception), message
                self.lines.put(message)
        self.lines.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        while chunk := self.process.stderr.read1(65536):
            with self._stderr_grew:
                self.stderr += chunk
                self._stderr_grew.notify_all()

    def wait_for_stderr(self, text: bytes, timeout: float = 10.0) -> None:
        """Wait until stderr holds ``text`` (a log line: start with --log-level info)."""
        with self._stderr_grew:
            found = self._stderr_grew.wait_for(lambda: text in self.stderr, timeout)
        assert found, f"{text!r} not on stderr within {timeout} s: {bytes(self.stderr)!r}"

    def send_raw(self, data: str | bytes) -> None:
        from liaison.protocol.lines import binary_header, encode_text

        if isinstance(data, str):
            self.stdin.write(encode_text(data.encode()))
        else:
            self.stdin.write(binary_header(len(data)) + data + b"\n")
        self.stdin.flush()

    def recv(self, timeout: float = 10.0) -> str | bytes:
        try:
            message = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no message within {timeout} s") from None
        if message is None:
            self.lines.put(None)
            raise EOFError("the liaison closed its stdout")
        return message

    def close(self, timeout: float = 10.0) -> int:
        """Close stdin, which stops the liaison; returns its exit status."""
        assert self.process.stdin is not None
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            return self.process.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        kill_and_reap(self.process)
        for reader in self._readers:
            reader.join(5)


class InProcessStdioClient(StdioClient):
    """A StdioClient speaking to an in-process stdio liaison over its pipe pair."""

    def __init__(self, server: InProcessServer) -> None:
        self.process = None  # type: ignore[assignment]
        stdin = open(server.input_w, "wb")  # noqa: SIM115 - closed by close()
        self._attach(stdin, open(server.output_r, "rb"))  # noqa: SIM115 - and by kill()

    def close(self, timeout: float = 10.0) -> None:  # type: ignore[override]
        """Close stdin, which stops the liaison (its stdin's EOF)."""
        with contextlib.suppress(OSError):
            self.stdin.close()

    def kill(self) -> None:
        self.close()
        self.stdout.close()


@pytest.fixture(params=["websocket", "stdio"])
def client(request: pytest.FixtureRequest) -> Iterator[RawClient]:
    """A raw client over each transport, to a liaison in this process (a stdio liaison
    has one peer: a liaison of its own)."""
    raw: RawClient
    if request.param == "websocket":
        raw = RawClient(request.getfixturevalue("liaison").url)
    else:
        server = InProcessServer.start("stdio")
        request.addfinalizer(server.close)
        raw = InProcessStdioClient(server)
        request.addfinalizer(raw.kill)
    yield raw
    raw.close()


def stdout_when_the_launcher_dies(env: dict[str, str] | None = None) -> tuple[bytes, float]:
    """Start a liaison through a launcher that hands it our pipe as stdout, kill the
    launcher once the start marker is out, and read stdout to EOF (the liaison exited).

    Returns stdout and the seconds from the launcher's death to that EOF."""
    launcher = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys; subprocess.Popen([sys.executable, '-m', 'liaison.websocket',"
         " '127.0.0.1:0']).wait()"],
        stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": TESTS, **(env or {})},
    )  # fmt: skip
    assert launcher.stdout is not None
    stdout = b""
    try:
        while START.encode() not in stdout:
            chunk = os.read(launcher.stdout.fileno(), 4096)
            assert chunk, "the liaison exited before starting"
            stdout += chunk
        launcher.kill()
        launcher.wait()
        died = time.monotonic()
        while chunk := os.read(launcher.stdout.fileno(), 4096):
            stdout += chunk
        return stdout, time.monotonic() - died
    finally:
        launcher.stdout.close()


def require_tool(available: bool, env_var: str, reason: str) -> None:
    """Skip when a tool is missing, unless ``env_var`` is set (CI): then fail."""
    if available:
        return
    if os.environ.get(env_var):
        pytest.fail(f"{reason} ({env_var} is set, so this may not skip)")
    pytest.skip(reason)


def descendants(pid: int) -> list[int]:
    """The PIDs of ``pid``'s child processes, theirs, and so on (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except OSError:  # gone meanwhile
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def load_script(name: str) -> Any:
    """A module of scripts/ (not a package), imported from its file."""
    import importlib.util

    path = os.path.join(os.path.dirname(TESTS), "scripts", name)
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


__all__: Sequence[str] = [
    "InProcessServer", "InProcessStdioClient", "LiaisonProcess", "RawClient", "StdioClient",
    "descendants", "free_port", "load_script", "require_tool", "spawn_liaison",
    "stdout_when_the_launcher_dies",
]  # fmt: skip
