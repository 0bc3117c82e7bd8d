"""The executor, in-process: order, job states, cancel, timeout, stop, streams, coroutines.

Ordered commands run on this (the main) thread, as in a real liaison.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
import pytest

from inprocess import RecordingSink, message
from liaison.core import Companion, parse_message
from liaison.server.execution import Executor
from liaison.server.hostos import current_host
from liaison.server.jobs import DONE, QUEUED, RUNNING, Job, JobState
from liaison.server.signals import ProcessSignals


def call_later(seconds: float, callback: Callable[[], None]) -> Callable[[], None]:
    timer = threading.Timer(seconds, callback)
    timer.daemon = True
    timer.start()
    return timer.cancel


@pytest.fixture
def companion() -> Companion:
    return Companion()


@pytest.fixture
def signals() -> Iterable[ProcessSignals]:
    """The interrupt signal's handler, as a liaison installs it; put back afterwards."""
    signals = ProcessSignals(current_host())
    yield signals
    signals.restore()


def interruptible(companion: Companion, signals: ProcessSignals, **options: Any) -> Executor:
    """An executor whose ordered commands (on this, the main, thread) can be interrupted."""
    executor = Executor(companion, interrupt_main=signals.interrupt_main, **options)
    signals.handle_interrupts(executor.on_interrupt_signal)
    return executor


def request(command: str, *args: Any, id: Any = None, **options: Any) -> Any:
    return parse_message(message(command, *args, id=id, **options))


def test_ordered_commands_run_in_arrival_order_on_the_main_thread(companion: Companion) -> None:
    ran: list[tuple[int, int]] = []
    companion.namespace["note"] = lambda n: ran.append((n, threading.get_ident())) or n
    executor, sink = Executor(companion), RecordingSink()
    for n in range(5):
        executor.submit(request("run", "note", n, id=n), sink)
    executor.stop_when_idle()
    executor.run_forever()
    assert [reply["response"] for reply in sink.wait_for_replies(5)] == [0, 1, 2, 3, 4]
    assert ran == [(n, threading.get_ident()) for n in range(5)]


def test_a_job_moves_queued_running_done_and_replies_once(companion: Companion) -> None:
    sink = RecordingSink()
    job = Job(request("names", id="j"), sink)
    assert job.state is QUEUED and isinstance(job.state, JobState)
    assert job.start() and job.state is RUNNING
    assert not job.start(), "a job starts once"
    assert job.finish(b'{"first": 1}') and job.state is DONE
    assert not job.finish(b'{"second": 2}')
    assert sink.replies == [b'{"first": 1}']
    assert job.request.args == [] and job.request.message == {"id": "j"}, "released"


def test_cancelling_a_queued_job_replies_cancelled_and_it_never_runs(
    companion: Companion,
) -> None:
    ran: list[str] = []
    companion.namespace["note"] = ran.append
    executor, sink = Executor(companion), RecordingSink()
    job = executor.submit(request("run", "note", "x", id="q"), sink)
    assert executor.cancel(sink, "q") is True
    assert job.state is DONE and not job.start()
    assert executor.cancel(sink, "q") is False, "forgotten once done"
    executor.stop_when_idle()
    executor.run_forever()
    (reply,) = sink.wait_for_replies(1)
    assert reply["exception"] == {"type": "CancelledError", "message": "the command was cancelled"}
    assert ran == []


def test_jobs_are_keyed_by_the_sink_id(companion: Companion) -> None:
    executor, owner, other = Executor(companion), RecordingSink(), RecordingSink()
    executor.submit(request("names", id="same"), owner)
    assert executor.cancel(other, "same") is False, "another connection's id is not ours"
    same_connection = RecordingSink()
    same_connection.id = owner.id  # e.g. a wrapper around the same connection
    assert executor.cancel(same_connection, "same") is True
    assert orjson.loads(owner.replies[0])["exception"]["type"] == "CancelledError"


def test_a_running_command_past_its_timeout_is_interrupted(
    companion: Companion, signals: ProcessSignals
) -> None:
    executor = interruptible(companion, signals, call_later=call_later)
    sink = RecordingSink()
    executor.submit(request("run", "time:sleep", 30, id="slow", timeout=0.2), sink)
    executor.submit(request("run", "builtins:abs", -1, id="next"), sink)
    executor.stop_when_idle()
    executor.run_forever()
    slow, after = sink.wait_for_replies(2)
    assert slow["exception"] == {
        "type": "TimeoutError",
        "message": "the command ran past its timeout of 0.2 s",
    }
    assert after["response"] == 1, "the queue goes on"


def test_stop_interrupts_the_running_command_and_fails_the_queued_ones(
    companion: Companion, signals: ProcessSignals
) -> None:
    executor, sink = interruptible(companion, signals), RecordingSink()
    started = threading.Event()

    def block() -> None:
        started.set()
        threading.Event().wait(30)

    companion.namespace["block"] = block
    executor.submit(request("run", "block", id="running"), sink)
    executor.submit(request("names", id="queued"), sink)
    threading.Thread(target=lambda: started.wait(10) and executor.stop(), daemon=True).start()
    executor.run_forever()
    queued, running = sorted(sink.wait_for_replies(2), key=lambda reply: reply["id"])
    shutting_down = {"type": "CancelledError", "message": "the liaison is shutting down"}
    assert running["id"] == "running" and running["exception"] == shutting_down
    assert queued["id"] == "queued" and queued["exception"] == shutting_down


@pytest.mark.parametrize("concurrent", [False, True])
def test_a_command_submitted_after_the_stop_is_answered_shutting_down(
    companion: Companion, concurrent: bool
) -> None:
    """The transport reads on until it closes, after run_forever has drained its queue."""
    ran: list[str] = []
    companion.namespace["note"] = lambda: ran.append("ran")
    executor, sink = Executor(companion), RecordingSink()
    executor.stop()
    executor.run_forever()
    executor.submit(request("run", "note", id="late", concurrent=concurrent), sink)
    (late,) = sink.wait_for_replies(1, timeout=1)
    shutting_down = {"type": "CancelledError", "message": "the liaison is shutting down"}
    assert late["exception"] == shutting_down
    assert ran == []


def test_a_stream_pushes_partials_then_replies_their_count(companion: Companion) -> None:
    def count_to(n: int) -> Iterator[int]:
        yield from range(1, n + 1)

    companion.namespace["count_to"] = count_to
    executor, sink = Executor(companion), RecordingSink()
    executor.submit(request("run", "count_to", 3, id="s", stream=True), sink)
    executor.submit(request("run", "count_to", 2, id="l"), sink)
    executor.stop_when_idle()
    executor.run_forever()
    streamed, listed = sink.wait_for_replies(2)
    assert [orjson.loads(p)["partial"] for p in sink.pushes] == [1, 2, 3]
    assert streamed["response"] == 3 and listed["response"] == [1, 2]


def test_coroutines_and_concurrent_commands_run_off_the_main_thread(
    companion: Companion,
) -> None:
    main = threading.get_ident()

    async def where() -> bool:
        return threading.get_ident() != main

    companion.namespace["where"] = where
    companion.namespace["thread"] = lambda: threading.get_ident() != main
    executor, sink = Executor(companion), RecordingSink()
    executor.submit(request("run", "where", id="coroutine"), sink)
    executor.submit(request("run", "thread", id="concurrent", concurrent=True), sink)
    executor.stop_when_idle()
    executor.run_forever()
    replies = {reply["id"]: reply["response"] for reply in sink.wait_for_replies(2)}
    assert replies == {"coroutine": True, "concurrent": True}


def test_progress_reaches_the_client_of_the_running_command(companion: Companion) -> None:
    from liaison import progress

    companion.namespace["work"] = lambda: [progress(n) for n in (0.5, 1.0)]
    executor, sink = Executor(companion), RecordingSink()
    executor.submit(request("run", "work", id="p"), sink)
    executor.stop_when_idle()
    executor.run_forever()
    assert sink.wait_for_replies(1)[0]["response"] == [True, True]
    assert [orjson.loads(p) for p in sink.pushes] == [
        {"tag": "progress", "id": "p", "progress": 0.5},
        {"tag": "progress", "id": "p", "progress": 1.0},
    ]
    assert progress("outside") is False


def test_a_host_without_threads_runs_ordered_jobs_inline_and_coroutines_on_its_loop(
    companion: Companion,
) -> None:
    """The Pyodide host's seams: serve_inline, run_queued, run_ordered, async_loop."""
    import asyncio

    main, ran = threading.get_ident(), []

    async def later() -> bool:
        return threading.get_ident() == main

    companion.namespace["later"] = later
    companion.namespace["note"] = lambda n: ran.append(n) or threading.get_ident() == main
    loop = asyncio.new_event_loop()
    try:

        class InlineExecutor(Executor):
            def run_ordered(self, job: Job) -> None:
                ran.append(f"before {job.request.id}")  # a host's own step around each job
                super().run_ordered(job)

        executor, sink = InlineExecutor(companion, async_loop=loop), RecordingSink()
        executor.serve_inline()
        executor.submit(request("run", "later", id="coroutine"), sink)
        executor.submit(request("run", "note", 1, id="first"), sink)
        executor.submit(request("run", "note", 2, id="second"), sink)
        assert sink.replies == [], "nothing runs until the host says so"
        executor.run_queued()
        assert [reply["id"] for reply in sink.wait_for_replies(2)] == ["first", "second"]
        assert ran == ["before coroutine", "before first", 1, "before second", 2]
        assert len(sink.replies) == 2, "the coroutine waits for its loop"
        loop.run_until_complete(asyncio.sleep(0))  # the task started at once: one turn ends it
        coroutine = sink.wait_for_replies(3)[2]
        assert coroutine["id"] == "coroutine" and coroutine["response"] is True, "on this thread"
        executor.stop()
        executor.submit(request("run", "note", 3, id="late"), sink)
        executor.run_queued()
        assert sink.wait_for_replies(4)[3]["exception"]["message"] == "the liaison is shutting down"
    finally:
        loop.close()
