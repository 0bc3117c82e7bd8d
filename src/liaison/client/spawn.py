"""Start `python -m liaison.websocket` in another interpreter, for spawn() and spawn_async().

The child gets a fresh random token through the ``LIAISON_TOKEN`` environment variable
(never its command line, which other users can read). Two threads drain its stdout and
stderr, so a chatty child never blocks on a full pipe, and keep the text for errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence

from ..constants import START_MARKER
from .async_client import AsyncClient, Opening, connect_client
from .errors import SpawnError
from .sync_client import Client, open_client

__all__ = ["TRANSPORTS", "ChildLiaison", "spawn", "spawn_async", "start_child"]

TRANSPORTS = ("websocket", "stdio")

_STARTED = re.compile(re.escape(START_MARKER) + r"@(?P<host>\[[^\]]*\]|[^:]+):(?P<port>\d+)")
_STDERR_KEPT = 64 * 1024  # bytes of the child's stderr kept for error messages
_OUTPUT_KEPT = 64 * 1024  # bytes of what the child's commands printed, kept for .output
# A liaison bound to every interface is reached on loopback.
_CONNECT_HOST = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "[::]": "[::1]"}


class ChildLiaison:
    """A liaison process started by :func:`start_child`.

    ``process`` is its :class:`subprocess.Popen`; ``url`` and ``token`` reach it.
    """

    def __init__(
        self, process: subprocess.Popen[bytes], token: str, read_stdout: bool = True
    ) -> None:
        """``read_stdout``: False when stdout is the message channel (stdio)."""
        self.process = process
        self.token = token
        self.url = ""
        self._stdout = ""
        self._output = bytearray()
        self._stderr = bytearray()
        self._started = threading.Event()  # the marker arrived, or stdout ended
        self._readers = [
            threading.Thread(target=self._read_stderr, name="liaison-child-stderr", daemon=True),
        ]
        if read_stdout:
            self._readers.append(
                threading.Thread(target=self._read_stdout, name="liaison-child-stdout", daemon=True)
            )
        for reader in self._readers:
            reader.start()

    def __repr__(self) -> str:
        return f"<ChildLiaison pid={self.process.pid} {self.url or 'starting'}>"

    @property
    def stderr(self) -> str:
        """The child's stderr so far (its last 64 KiB)."""
        return self._stderr.decode(errors="replace")

    @property
    def output(self) -> str:
        """What the child's commands printed to stdout so far (its last 64 KiB; over
        stdio their output goes to stderr instead)."""
        return self._output.decode(errors="replace")

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        try:
            while chunk := os.read(self.process.stdout.fileno(), 65536):
                if self._started.is_set():
                    # What commands print follows the marker: keep the pipe drained so
                    # the child never blocks on it, and only the last of it.
                    self._output += chunk
                    del self._output[:-_OUTPUT_KEPT]
                    continue
                self._stdout += chunk.decode(errors="replace")
                found = _STARTED.search(self._stdout)
                if found:
                    self._output += self._stdout[found.end() :].encode()
                    self._started.set()
        except OSError:  # closed by stop() after the child outlived its grace
            pass
        finally:
            self._started.set()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        with contextlib.suppress(OSError):  # closed by stop(), as above
            while chunk := os.read(self.process.stderr.fileno(), 65536):
                self._stderr += chunk
                del self._stderr[:-_STDERR_KEPT]

    def wait_started(self, timeout: float) -> str:
        """Wait for the start marker; return the URL. Raises SpawnError (stopping the
        child) if it exits or the timeout passes first."""
        if not self._started.wait(timeout):
            self.stop(graceful=False)
            raise SpawnError(f"the liaison did not start within {timeout} s", self.stderr)
        found = _STARTED.search(self._stdout)
        if found is None:
            try:
                code = self.process.wait(5)
            except subprocess.TimeoutExpired:
                code = None
            self.stop(graceful=False)
            raise SpawnError(
                f"the liaison exited with status {code} before it started", self.stderr, code
            )
        host = _CONNECT_HOST.get(found["host"], found["host"])
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        self.url = f"ws://{host}:{found['port']}"
        return self.url

    def stop(self, graceful: bool = True, timeout: float = 10.0) -> int:
        """Wait for the child to exit and reap it; returns its exit status.

        ``graceful``: it was asked to shut down, so give it ``timeout`` seconds first;
        otherwise (or if it is still running then) send SIGTERM, and SIGKILL after 5 s.
        """
        process = self.process
        if not graceful and process.poll() is None:
            process.terminate()
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                code = process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
        deadline = time.monotonic() + 5
        for reader in self._readers:
            reader.join(max(0.0, deadline - time.monotonic()))
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):  # stdin: its last write may fail
                    stream.close()
        return code


def start_child(
    python: str,
    address: str,
    env: Mapping[str, str] | None,
    cwd: str | os.PathLike[str] | None,
    args: Sequence[str],
    transport: str = "websocket",
) -> ChildLiaison:
    """Start ``python -m liaison.websocket ADDRESS *args`` with a fresh token, or with
    ``transport="stdio"`` ``python -m liaison.stdio *args`` (no address, no token)."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport must be one of {TRANSPORTS}, got {transport!r}")
    stdio = transport == "stdio"
    if not stdio:  # without the websockets package, fail before a child starts
        from .websocket_channel import open_websocket  # noqa: F401
    token = "" if stdio else secrets.token_urlsafe(32)
    command = ["liaison.stdio"] if stdio else ["liaison.websocket", address]
    try:
        process = subprocess.Popen(
            [python, "-m", *command, *args],
            stdin=subprocess.PIPE if stdio else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {}), "LIAISON_TOKEN": token},
            cwd=cwd,
        )
    except OSError as error:
        raise SpawnError(f"cannot run {python!r}: {error}") from error
    return ChildLiaison(process, token, read_stdout=not stdio)


async def _connect_stdio(child: ChildLiaison, timeout: float) -> AsyncClient:
    """Read the stdio child's start marker and return a client on its pipes."""
    from .stdio_channel import ChannelClosed, StdioChannel

    process = child.process
    assert process.stdin is not None and process.stdout is not None
    try:
        channel = await StdioChannel.open(process.stdin, process.stdout, timeout)
    except asyncio.TimeoutError:
        raise SpawnError(f"the liaison did not start within {timeout} s", child.stderr) from None
    except ChannelClosed:
        code = await asyncio.to_thread(process.wait)
        raise SpawnError(
            f"the liaison exited with status {code} before it started", child.stderr, code
        ) from None
    child.url = "stdio"
    client = AsyncClient(channel, "stdio")
    # Like connect_client: this client routes pushes whenever they come.
    await client.call("configure", (), {"pushes": "immediate"})
    return client


async def _connect(child: ChildLiaison, transport: str, timeout: float) -> AsyncClient:
    if transport == "stdio":
        client = await _connect_stdio(child, timeout)
    else:
        url = await asyncio.to_thread(child.wait_started, timeout)
        client = await connect_client(url, child.token, timeout)
    client.child = child
    return client


def spawn(
    python: str = sys.executable,
    address: str = "127.0.0.1:0",
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    args: Sequence[str] = (),
    timeout: float = 20.0,
    gui: str | None = None,
    transport: str = "websocket",
) -> Client:
    """Start a liaison in another interpreter and return a :class:`Client` connected to it.

    Runs ``python -m liaison.websocket ADDRESS *args`` in ``cwd`` with ``os.environ``
    updated by ``env`` and a fresh ``LIAISON_TOKEN`` (``gui="tk"``, ``"qt"``... adds
    ``--gui GUI``: windows its commands open stay alive), waits up to ``timeout`` seconds for
    its start marker and connects with the token. Closing the client sends ``shutdown``
    and waits for the process (SIGTERM, then SIGKILL, if it lingers); ``client.process``
    is its :class:`subprocess.Popen`. Raises :class:`SpawnError` with the child's stderr
    if it cannot run, exits or stays silent.

    ``transport="stdio"`` runs ``python -m liaison.stdio *args`` instead and talks to it
    over its stdin and stdout (no port, no token; ``address`` is unused).
    """
    child = start_child(python, address, env, cwd, _with_gui(args, gui), transport)
    try:
        return open_client(_connect(child, transport, timeout))
    except BaseException:
        child.stop(graceful=False)
        raise


def spawn_async(
    python: str = sys.executable,
    address: str = "127.0.0.1:0",
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    args: Sequence[str] = (),
    timeout: float = 20.0,
    gui: str | None = None,
    transport: str = "websocket",
) -> Opening[AsyncClient]:
    """:func:`spawn` for asyncio code: await it, or use it in ``async with``."""

    async def opening() -> AsyncClient:
        child = await asyncio.to_thread(
            start_child, python, address, env, cwd, _with_gui(args, gui), transport
        )
        try:
            return await _connect(child, transport, timeout)
        except BaseException:
            await asyncio.to_thread(child.stop, False)
            raise

    return Opening(opening)


def _with_gui(args: Sequence[str], gui: str | None) -> list[str]:
    return [*args, "--gui", gui] if gui is not None else list(args)
