"""No user code runs before the start marker: in-process, with the real Executor."""

from __future__ import annotations

import itertools
import threading

import orjson

from liaison.core import Companion, parse_message
from liaison.server.execution import Executor


class RecordingSink:
    """A connection that keeps what it is sent."""

    immediate_pushes = False
    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.id = next(self._ids)
        self.replies: list[bytes | bytearray] = []
        self.replied = threading.Event()

    def hold_arriving(self) -> int:
        return 0  # no transport counts its messages' bytes here

    def send(self, data: bytes | bytearray, held: int = 0) -> None:
        self.replies.append(data)
        self.replied.set()

    def push(self, data: bytes | bytearray) -> None:
        self.replies.append(data)

    def push_unsolicited(self, data: bytes | bytearray) -> None:
        self.replies.append(data)

    def set_immediate_pushes(self, immediate: bool) -> None:
        self.immediate_pushes = immediate


def request(command: str, *args: object, **options: object) -> object:
    message = {"command": {"command": command, "args": list(args)}, "id": "x", **options}
    return parse_message(orjson.dumps(message).decode())


def test_a_concurrent_command_waits_until_the_executor_serves() -> None:
    companion = Companion()
    executor = Executor(companion)
    serving_seen: list[bool] = []
    companion.namespace["probe"] = lambda: serving_seen.append(executor.serving) or True
    concurrent_sink, ordered_sink = RecordingSink(), RecordingSink()
    executor.submit(request("run", "probe", concurrent=True), concurrent_sink)  # type: ignore[arg-type]
    # An ordered command that stops the executor once the concurrent one has replied.
    companion.namespace["stop_after"] = lambda: (concurrent_sink.replied.wait(10), executor.stop())
    executor.submit(request("run", "stop_after"), ordered_sink)  # type: ignore[arg-type]
    executor.run_forever()  # the runtime calls this right after writing the start marker
    assert serving_seen == [True]
    assert orjson.loads(concurrent_sink.replies[0])["response"] is True
