"""A job's state machine, by plain calls: every move is a Job method under its lock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import orjson

from inprocess import RecordingSink, message
from liaison.core import parse_message
from liaison.server.jobs import (
    DONE,
    QUEUED,
    RUNNING,
    Cancelled,
    Interruption,
    Job,
    Stopping,
    TimedOut,
)


def new_job(*args: Any, id: Any = "j", **options: Any) -> tuple[Job, RecordingSink]:
    sink = RecordingSink()
    return Job(parse_message(message("run", *args, id=id, **options)), sink), sink


def test_interrupting_a_queued_job_replies_its_error_and_it_never_starts() -> None:
    job, sink = new_job("builtins:abs", -1, timeout=0.5)
    assert job.interrupt(TimedOut, main_thread=None) is Interruption.REPLIED
    assert job.state is DONE and not job.start()
    (reply,) = sink.wait_for_replies(1)
    assert reply["exception"] == {
        "type": "TimeoutError",
        "message": "the command ran past its timeout of 0.5 s",
    }
    assert job.interrupt(Cancelled, main_thread=None) is Interruption.NONE, "it replied once"
    assert len(sink.replies) == 1


def test_a_job_on_the_main_thread_leaves_the_raise_to_the_caller() -> None:
    job, sink = new_job("builtins:abs", -1)
    assert job.start() and job.state is RUNNING
    main = threading.get_ident()
    assert job.interrupt(Stopping, main_thread=main) is Interruption.ON_MAIN_THREAD
    assert job.state is RUNNING and job.interrupted_by is Stopping, "it runs until raised"
    assert sink.replies == []
    assert job.finish(b"{}") and job.interrupt(Cancelled, main) is Interruption.NONE


def test_a_job_on_a_worker_thread_gets_the_interrupt_raised_there() -> None:
    job, sink = new_job("builtins:abs", -1)
    running, caught = threading.Event(), []

    def worker() -> None:
        assert job.start()
        running.set()
        try:
            while True:  # Python bytecode: the asynchronous exception lands here
                pass
        except Cancelled as interrupted:
            caught.append(interrupted)
            job.fail(interrupted.reply_error(job))

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    assert running.wait(10)
    assert job.interrupt(Cancelled, main_thread=threading.get_ident()) is Interruption.RAISED
    thread.join(10)
    assert len(caught) == 1 and job.state is DONE
    assert sink.wait_for_replies(1)[0]["exception"]["message"] == "the command was cancelled"


def test_an_interrupt_cancels_the_task_attached_before_or_after_it() -> None:
    loop, main = asyncio.new_event_loop(), threading.get_ident()  # the job runs here
    try:
        for interrupt_first in (False, True):
            job, _ = new_job("builtins:abs", -1)
            assert job.start()
            task = loop.create_task(asyncio.sleep(30))
            if interrupt_first:  # an interrupt while the task was being made
                assert job.interrupt(Cancelled, main) is Interruption.ON_MAIN_THREAD
                job.attach_task(loop, task)
            else:
                job.attach_task(loop, task)
                assert job.interrupt(Cancelled, main) is Interruption.RAISED
            loop.run_until_complete(asyncio.wait([task], timeout=10))
            assert task.cancelled(), f"interrupt first: {interrupt_first}"
    finally:
        loop.close()


def test_a_generator_drains_into_a_list_or_streams_partials_and_counts() -> None:
    def count_to(n: int) -> Iterator[int]:
        yield from range(1, n + 1)

    listed, sink = new_job("count_to", 3)
    assert listed.drain(count_to(3)) == [1, 2, 3] and sink.pushes == []
    streamed, sink = new_job("count_to", 3, id="s", stream=True)
    assert streamed.drain(count_to(3)) == 3
    assert [orjson.loads(push) for push in sink.pushes] == [
        {"tag": "partial", "id": "s", "partial": n} for n in (1, 2, 3)
    ]
    assert streamed.state is QUEUED, "draining moves no state"
