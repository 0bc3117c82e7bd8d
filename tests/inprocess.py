"""The liaison's layers wired as the runtime wires them, with no transport: messages in,
replies out, by plain calls on this thread (ordered commands run here, as on the main
thread of a real liaison)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable
from typing import Any

import orjson

from liaison.core import Companion
from liaison.server.dispatch import Dispatcher
from liaison.server.execution import Executor
from liaison.server.handle import Liaison


class RecordingSink:
    """A connection that keeps what it is sent (an execution.Sink)."""

    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.id = next(self._ids)
        self.immediate_pushes = False
        self.replies: list[bytes | bytearray] = []  # final replies, in order
        self.pushes: list[bytes | bytearray] = []  # everything else
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def send(self, data: bytes | bytearray) -> None:
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
        return [orjson.loads(reply) for reply in self.replies[:count]]


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
