"""The ordered jobs' queue (liaison.server.handoff), in-process: order, wake-ups, signals."""

from __future__ import annotations

import os
import queue
import signal
import threading
from typing import Any

import pytest

from liaison.server.handoff import HandoffQueue, new_ordered_queue

posix_only = pytest.mark.skipif(os.name != "posix", reason="HandoffQueue is POSIX only")


@posix_only
def test_items_come_out_in_order_and_get_nowait_says_empty() -> None:
    q: HandoffQueue[int] = HandoffQueue()
    assert q.empty()
    with pytest.raises(queue.Empty):
        q.get_nowait()
    for i in range(3):
        q.put(i)
    assert not q.empty()
    assert [q.get(), q.get_nowait(), q.get()] == [0, 1, 2]
    assert q.empty()


@posix_only
def test_a_blocked_getter_gets_every_item_of_every_putter_in_order() -> None:
    # Many hand-overs, with the getter often asleep: a missed wake-up hangs (timeout).
    q: HandoffQueue[tuple[int, int] | None] = HandoffQueue()
    putters, count = 4, 3000
    received: list[tuple[int, int]] = []

    def get_all() -> None:
        ends = 0
        while ends < putters:
            item = q.get()
            if item is None:
                ends += 1
            else:
                received.append(item)

    def put_all(putter: int) -> None:
        for i in range(count):
            q.put((putter, i))
        q.put(None)

    getter = threading.Thread(target=get_all)
    getter.start()
    threads = [threading.Thread(target=put_all, args=(p,)) for p in range(putters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    getter.join()
    assert len(received) == putters * count
    for putter in range(putters):
        assert [i for p, i in received if p == putter] == list(range(count))


@posix_only
def test_a_signal_handler_can_wake_or_interrupt_the_blocked_main_thread() -> None:
    # As a stop signal does: its handler puts the end mark while get() waits.
    q: HandoffQueue[str | None] = HandoffQueue()

    def put_end(signum: int, frame: Any) -> None:
        q.put(None)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, put_end)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        assert q.get() is None
        signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(KeyboardInterrupt):
            q.get()
        q.put("after")  # the interrupted get left the queue usable
        assert q.get() == "after"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_host_chooses_the_queue() -> None:
    assert type(new_ordered_queue("pipe")) is HandoffQueue
    assert type(new_ordered_queue("queue")) is queue.SimpleQueue
