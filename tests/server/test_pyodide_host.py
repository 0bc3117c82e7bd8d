"""The Pyodide host's logic, in-process on CPython: the same code Pyodide runs, with an
asyncio loop standing for Pyodide's WebLoop and a real SIGINT standing for its
interrupt buffer (which runs the same handler). Its run inside Pyodide, in Node and
Chromium, is tested by clients/js/test/pyodide.test.mjs and tests/browser/."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from liaison.protocol.frames import decode_frame
from liaison.server.transports.pyodide import PyodideHost


class Client:
    """The JavaScript side, as the host sees it: it sends messages and records what comes."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interrupts: Any = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.frames: list[bytearray] = []
        self.stopped = False
        self._changed = asyncio.Event()
        self.host = PyodideHost(
            self._deliver, loop=loop, interrupts=interrupts, on_stop=self._on_stop
        )

    def _deliver(self, data: bytes | bytearray) -> None:
        if type(data) is bytes:
            self.received.append(orjson.loads(data))
        else:
            self.frames.append(data)
            self.received.append(decode_frame(bytes(data)))
        self._changed.set()

    def _on_stop(self) -> None:
        self.stopped = True
        self._changed.set()

    def send(self, command: str, *args: Any, id: Any = None, **options: Any) -> Any:
        kwargs = options.pop("kwargs", {})
        message = {"command": {"command": command, "args": list(args), "kwargs": kwargs}}
        message["id"] = id if id is not None else f"m{len(self.received)}-{command}"
        message.update(options)
        self.host.receive(json.dumps(message))
        return message["id"]

    def reply(self, id: Any) -> dict[str, Any] | None:
        for message in self.received:
            if message.get("id") == id and message.get("tag") in ("response", "error"):
                return message
        return None

    async def wait_reply(self, id: Any) -> dict[str, Any]:
        while (found := self.reply(id)) is None:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), 10)
        return found

    def tagged(self, tag: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("tag") == tag]


def run(coroutine_function: Any) -> Any:
    return asyncio.run(coroutine_function())


def test_a_run_replies_as_over_websocket() -> None:
    async def main() -> None:
        client = Client(asyncio.get_running_loop())
        id = client.send("run", "operator:add", 2, 3)
        # A synchronous command has replied before receive returns.
        reply = client.reply(id)
        assert reply is not None and reply["response"] == 5 and reply["tag"] == "response"
        assert reply["evt"]["id"] == id  # liaison 1.0 clients read evt.id
        bad = client.send("run", "builtins:divmod", 1, 0)
        error = client.reply(bad)
        assert error is not None and "response" not in error
        assert error["exception"]["type"] == "ZeroDivisionError"
        client.host.receive("{not json")
        assert client.received[-1]["tag"] == "error"
        assert client.received[-1]["exception"]["type"] == "JSONDecodeError"
        assert client.reply(client.send("ping")) is not None
        assert client.reply(client.send("get", "liaison.address"))["response"] == "pyodide"  # type: ignore[index]

    run(main)


def test_ordered_commands_run_in_arrival_order_and_report_progress() -> None:
    async def main() -> None:
        client = Client(asyncio.get_running_loop())
        first = client.send("run", "remote_helpers:report_progress", 2)
        second = client.send("run", "remote_helpers:now")
        third = client.send("run", "remote_helpers:now")
        assert [m["id"] for m in client.received if m.get("tag") == "response"] == [
            first,
            second,
            third,
        ]
        assert client.reply(second)["response"] <= client.reply(third)["response"]  # type: ignore[index]
        assert [p["progress"]["step"] for p in client.tagged("progress")] == [0, 1]
        assert {p["id"] for p in client.tagged("progress")} == {first}

    run(main)


def test_pushes_wait_for_the_pending_reply_unless_configured_immediate() -> None:
    async def main() -> None:
        client = Client(asyncio.get_running_loop())
        client.send("init", "pusher", "remote_helpers:Pusher", "$liaison")
        held = client.send("run", "pusher.alert", "held")
        tags = [m.get("tag") for m in client.received[-2:]]
        assert tags == ["response", "alert"]  # after the reply, as for a 1.0 client
        assert client.reply(held)["response"] == "held"  # type: ignore[index]
        configured = client.send("configure", kwargs={"pushes": "immediate"})
        assert client.reply(configured)["response"] == {"pushes": "immediate"}  # type: ignore[index]
        client.send("run", "pusher.alert", "now")
        assert [m.get("tag") for m in client.received[-2:]] == ["alert", "response"]

    run(main)


def test_async_commands_await_on_the_loop_while_control_commands_answer() -> None:
    async def main() -> None:
        client = Client(asyncio.get_running_loop())
        slow = client.send("run", "remote_helpers:async_add", 1, 2, 30)
        assert client.reply(slow) is None
        ping = client.send("ping")
        assert client.reply(ping)["response"] == "pong"  # type: ignore[index]
        names = client.send("names")
        assert client.reply(names) is not None
        # An ordered synchronous command is not held behind the coroutine.
        quick = client.send("run", "operator:mul", 3, 4)
        assert client.reply(quick)["response"] == 12  # type: ignore[index]
        cancel = client.send("cancel", slow)
        assert client.reply(cancel)["response"] is True
        cancelled = await client.wait_reply(slow)
        assert cancelled["exception"]["type"] == "CancelledError"
        done = client.send("run", "remote_helpers:async_add", 1, 2)
        assert (await client.wait_reply(done))["response"] == 3
        timed = client.send("run", "remote_helpers:async_add", 1, 2, 30, timeout=0.05)
        assert (await client.wait_reply(timed))["exception"]["type"] == "TimeoutError"

    run(main)


def test_generators_stream_and_async_generators_collect() -> None:
    async def main() -> None:
        client = Client(asyncio.get_running_loop())
        streamed = client.send("run", "remote_helpers:count", 3, stream=True)
        assert client.reply(streamed)["response"] == 3  # type: ignore[index]
        assert [m["partial"] for m in client.tagged("partial")] == [0, 1, 2]
        collected = client.send("run", "remote_helpers:async_count", 3)
        assert (await client.wait_reply(collected))["response"] == [0, 1, 2]

    run(main)


def test_references_describe_and_the_command_table() -> None:
    async def main() -> None:
        client = Client(asyncio.get_running_loop())
        made = client.reply(client.send("run", "collections:Counter", "abca", ref=True))
        assert made is not None
        ref = made["response"]["$ref"]
        counted = client.reply(client.send("run", f"{ref}.most_common", 1))
        assert counted["response"] == [["a", 2]]  # type: ignore[index]
        assert client.reply(client.send("release", ref))["response"] == [ref]  # type: ignore[index]
        gone = client.reply(client.send("run", f"{ref}.most_common", 1))
        assert gone is not None and "response" not in gone
        described = client.reply(client.send("describe", "operator:add"))
        assert described is not None and "response" in described
        table = client.reply(client.send("commands"))
        assert "run" in table["response"]  # type: ignore[index]

    run(main)


def test_concurrent_is_refused_with_a_clear_error() -> None:
    async def main() -> None:
        client = Client(asyncio.get_running_loop())
        refused = client.reply(client.send("run", "operator:add", 1, 2, concurrent=True))
        assert refused is not None and "response" not in refused
        assert refused["exception"]["type"] == "Unsupported"
        assert "threads" in "".join(refused["error"])

    run(main)


def test_binary_replies_leave_as_frames() -> None:
    async def main() -> None:
        client = Client(asyncio.get_running_loop())
        id = client.send("run", "builtins:bytes", [1, 2, 3], binary=True)
        assert len(client.frames) == 1 and isinstance(client.frames[0], bytearray)
        assert client.reply(id)["response"] == b"\x01\x02\x03"  # type: ignore[index]

    run(main)


def test_shutdown_replies_fails_what_waits_and_stops() -> None:
    async def main() -> None:
        client = Client(asyncio.get_running_loop())
        slow = client.send("run", "remote_helpers:async_add", 1, 2, 30)
        shutdown = client.send("shutdown")
        assert client.reply(shutdown)["response"] is True  # type: ignore[index]
        stopped = await client.wait_reply(slow)
        assert "shutting down" in "".join(stopped["error"])
        while not client.stopped:
            client._changed.clear()
            await asyncio.wait_for(client._changed.wait(), 10)
        count = len(client.received)
        client.send("ping")
        assert len(client.received) == count  # nothing more is sent

    run(main)


class SignalInterrupts:
    """The client's side of the interrupt buffer on CPython: a request, then SIGINT to
    this (main) thread, whose handler is the host's, as Pyodide's buffer runs it."""

    def __init__(self) -> None:
        self.pending: str | None = None
        self.running_seq = 0
        self._timers: list[threading.Timer] = []
        self._main = threading.get_ident()

    def running(self, seq: int, timeout: float | None) -> None:
        self.running_seq = seq
        if seq and timeout is not None:
            timer = threading.Timer(timeout, self._time_out, (seq,))
            timer.start()
            self._timers.append(timer)

    def take(self) -> str | None:
        pending, self.pending = self.pending, None
        return pending

    def interrupt(self, request: str) -> None:
        self.pending = request
        signal.pthread_kill(self._main, signal.SIGINT)

    def _time_out(self, seq: int) -> None:
        if self.running_seq == seq:
            self.interrupt(f"timeout:{seq}")

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()


@pytest.fixture
def interrupts() -> Iterator[SignalInterrupts]:
    chosen = SignalInterrupts()
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield chosen
    finally:
        chosen.close()
        signal.signal(signal.SIGINT, previous)


def test_the_interrupt_buffer_cancels_and_times_out_a_busy_command(
    interrupts: SignalInterrupts,
) -> None:
    async def main() -> None:
        client = Client(asyncio.get_running_loop(), interrupts)
        signal.signal(signal.SIGINT, client.host.on_interrupt)
        # A timeout: the client's side interrupts the running busy loop.
        timed = client.send("run", "remote_helpers:spin", 30, timeout=0.2)
        assert client.reply(timed)["exception"]["type"] == "TimeoutError"  # type: ignore[index]
        assert interrupts.running_seq == 0

        # A cancel: written while the command runs (from its own progress, the moment it
        # surely runs), then the cancel message, which finds it cancelled.
        def cancel_on_progress(data: bytes | bytearray) -> None:
            message = orjson.loads(data)
            if message.get("tag") == "progress":
                threading.Thread(target=interrupts.interrupt, args=('cancel:"busy"',)).start()
            original(data)

        original = client.host.connection._deliver
        client.host.connection._deliver = cancel_on_progress  # type: ignore[method-assign]
        client.send("run", "remote_helpers:announce_then_sleep", 30, id="busy")
        client.host.connection._deliver = original  # type: ignore[method-assign]
        assert client.reply("busy")["exception"]["type"] == "CancelledError"  # type: ignore[index]
        assert client.reply(client.send("cancel", "busy"))["response"] is True  # type: ignore[index]
        # A cancel that came before its command ran cancels it when its turn comes.
        interrupts.pending = 'cancel:"later"'
        client.host.on_interrupt()
        client.send("run", "operator:add", 1, 2, id="later")
        assert client.reply("later")["exception"]["type"] == "CancelledError"  # type: ignore[index]
        # An interrupt meant for no running command changes nothing.
        interrupts.pending = "timeout:999"
        client.host.on_interrupt()
        assert client.reply(client.send("run", "operator:add", 1, 2))["response"] == 3  # type: ignore[index]

    run(main)
