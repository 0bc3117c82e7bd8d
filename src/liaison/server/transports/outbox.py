"""What every transport's connection shares: its lifecycle, its outbox, and the rule for
messages it queues from any thread (replies, pushes, held unsolicited pushes)."""

from __future__ import annotations

import collections
import enum
import itertools
import logging
import threading
from collections.abc import Callable

from .inbox import LoopInbox

__all__ = [
    "CLOSED",
    "CLOSING",
    "HELD_PUSHES_MAX",
    "HELD_PUSHES_MAX_BYTES",
    "OPEN",
    "OUTBOX_HIGH_WATER_BYTES",
    "ConnectionState",
    "Outbox",
    "QueuedConnection",
]

log = logging.getLogger("liaison.transport")

# Reading a client pauses while this many bytes of messages wait to be sent to it, so a
# client that pipelines requests with large replies and never reads holds bounded memory.
OUTBOX_HIGH_WATER_BYTES = 16 * 2**20

# Pushed messages held for a client until its pending replies are out (see
# QueuedConnection.push_unsolicited), in messages and bytes; past either, they are sent
# at once.
HELD_PUSHES_MAX = 1024
HELD_PUSHES_MAX_BYTES = OUTBOX_HIGH_WATER_BYTES


class ConnectionState(enum.Enum):
    """A connection's lifecycle: OPEN -> CLOSING -> CLOSED, moved on the I/O thread only.

    To CLOSING when nothing more may be queued: the client left, or is dropped for not
    reading. To CLOSED once its writer has stopped. Replies and pushes made after OPEN
    are dropped. Each transport says when it moves (websocket_server.py, stdio.py).
    """

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


OPEN, CLOSING, CLOSED = ConnectionState.OPEN, ConnectionState.CLOSING, ConnectionState.CLOSED


class Outbox(collections.deque[bytes | bytearray | None]):
    """Messages waiting for the wire, oldest first, and ``nbytes``, their total size.

    ``None`` is an end mark where a transport uses one: its writer stops there. Filled
    and drained on the I/O thread (other threads reach it through the LoopInbox). A deque
    subclass (append and popleft stay C calls): every reply passes through one.
    """

    __slots__ = ("nbytes",)

    def __init__(self) -> None:
        super().__init__()
        self.nbytes = 0


class QueuedConnection:
    """A connection as the executor sees it (an execution.Sink), for any transport.

    Its methods may be called from any thread; they run ``_enqueue`` on the I/O thread
    (at once there, else through the LoopInbox), which a transport implements. It counts
    the client's messages awaiting their reply (``_unanswered``; the transport adds one
    per message read) and holds unsolicited pushes while any does.
    """

    _ids = itertools.count(1)

    def __init__(self, inbox: LoopInbox) -> None:
        self.id = next(self._ids)
        self._inbox = inbox
        self._loop_thread = threading.get_ident()
        self._state = OPEN
        self._outbox = Outbox()
        self._unanswered = 0
        self.immediate_pushes = False
        self._held = Outbox()  # unsolicited pushes waiting for the pending replies

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def closed(self) -> bool:
        """Nothing more is sent to this client."""
        return self._state is not OPEN

    def send(self, data: bytes | bytearray) -> None:
        """Queue the final reply to a message this connection sent (any thread)."""
        self._call(self._enqueue_reply, data)

    def push(self, data: bytes | bytearray) -> None:
        """Queue a message of a running command: progress, partial (any thread)."""
        self._call(self._enqueue, data)

    def push_unsolicited(self, data: bytes | bytearray) -> None:
        """Queue a message no command asked for (``liaison.send``; any thread).

        Held while any of the client's messages awaits its reply, and sent after that
        reply, in order, unless the client opted in to immediate pushes; past
        ``HELD_PUSHES_MAX`` messages or ``HELD_PUSHES_MAX_BYTES`` they are sent at once
        rather than lost.
        """
        self._call(self._enqueue_or_hold, data)

    def set_immediate_pushes(self, immediate: bool) -> None:
        """Opt in (True) or out of receiving unsolicited pushes at once (loop thread)."""
        self.immediate_pushes = immediate
        if immediate:
            self._release_held()

    def _call(self, method: Callable[[bytes | bytearray], None], data: bytes | bytearray) -> None:
        if threading.get_ident() == self._loop_thread:
            method(data)
        else:
            self._inbox.put(method, data)

    def _enqueue(self, data: bytes | bytearray) -> None:
        """Queue ``data`` for the wire (I/O thread); dropped unless OPEN."""
        raise NotImplementedError

    def _enqueue_reply(self, data: bytes | bytearray) -> None:
        self._unanswered -= 1
        self._enqueue(data)
        if self._held and not self._unanswered:
            self._release_held()

    def _enqueue_or_hold(self, data: bytes | bytearray) -> None:
        if self.immediate_pushes or not (self._unanswered or self._held):
            self._enqueue(data)
            return
        # A liaison 1.0 client reads evt.id of every message while a call is pending:
        # a push then would throw in it. It gets the push after its pending replies.
        held = self._held
        held.append(data)
        held.nbytes += len(data)
        if len(held) > HELD_PUSHES_MAX or held.nbytes > HELD_PUSHES_MAX_BYTES:
            log.warning("%r: too many pushed messages held for a pending reply: sending them"
                        " now", self)  # fmt: skip
            self._release_held()

    def _release_held(self) -> None:
        held = self._held
        while held:
            data = held.popleft()
            assert data is not None  # held pushes have no end mark
            self._enqueue(data)
        held.nbytes = 0
