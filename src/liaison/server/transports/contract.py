"""Everything a transport needs, in one module: what it is (``Transport``, built by a
``TransportFactory``), what it calls (``TransportHandlers``), what it hands the executor
(a ``Sink``), and the shared machinery it builds that sink from: ``LoopInbox`` (calls
from other threads onto its event loop) and ``QueuedConnection`` (the flow-control rule
and every ``ConnectionState`` move). A transport writes only how bytes leave, how
reading pauses and how a peer is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from ..settings import Settings

__all__ = [
    "CLOSED",
    "CLOSING",
    "HELD_PUSHES_MAX",
    "HELD_PUSHES_MAX_BYTES",
    "OPEN",
    "OUTBOX_HIGH_WATER_BYTES",
    "OUTBOX_LOW_WATER_BYTES",
    "QUEUED_REQUESTS_MAX_BYTES",
    "ConnectionState",
    "LoopInbox",
    "MessageHandler",
    "Outbox",
    "QueuedConnection",
    "Sink",
    "Transport",
    "TransportFactory",
    "TransportHandlers",
]

log = logging.getLogger("liaison.transport")


# -- the transport: what the I/O thread starts, and what the transport calls back -------

# Called on the I/O thread with each message received (str: text, bytes: binary) and the
# connection (a Sink) it came from.
MessageHandler = Callable[[Any, Any], None]


class TransportHandlers(NamedTuple):
    """What a transport calls, all on the I/O thread."""

    on_message: MessageHandler
    on_close: Callable[[Any], None]  # a connection closed, after its last message
    request_stop: Callable[[], None]  # the peer is gone for good (stdio's EOF)


class Transport(Protocol):
    """What the I/O thread needs of a transport; its methods run on the I/O thread unless
    they say otherwise."""

    async def start(self) -> str:
        """Start serving; return the address the start marker names (``HOST:PORT``).

        Raises OSError if it cannot, its ``strerror`` saying what failed (the runtime
        prints it and exits with status 1).
        """

    def start_reading(self) -> None:
        """The start marker is out: take messages from now on (any thread). A transport
        whose marker does not share its channel (WebSocket) takes them from ``start``."""

    def broadcast(self, data: bytes) -> None:
        """Push ``data`` to every client; callable from any thread."""

    async def close(self) -> None:
        """Stop serving and close every connection."""


TransportFactory = Callable[[Settings, TransportHandlers], Transport]


# -- the sink: a connection as the executor sees it ---------------------------------------


class Sink(Protocol):
    """Where a job's messages go: one client connection.

    ``data`` is JSON text as bytes, or a binary frame as a bytearray (protocol.frames.Frame).
    Every method may be called from any thread. On the I/O thread none blocks; on another
    thread, a message queued for a client whose outbox is full waits until it drains
    (QueuedConnection: the command producing it is held, not the I/O).
    """

    @property
    def id(self) -> int:
        """Tells this connection from every other one of the process (keys its jobs)."""

    immediate_pushes: bool  # see push_unsolicited

    def send(self, data: bytes | bytearray, held: int = 0) -> None:
        """Queue the final reply to one of the client's messages; ``held``: what
        :meth:`hold_arriving` returned for it (its bytes count until this reply)."""

    def hold_arriving(self) -> int:
        """Count the message being handled as held by a job until its reply, and return
        its size in bytes for :meth:`send` (0 outside the handling of a message, or if
        counted already). Called on the I/O thread, by the job's intake."""

    def push(self, data: bytes | bytearray) -> None:
        """Queue a message of a running command of this client (progress, partial)."""

    def push_unsolicited(self, data: bytes | bytearray) -> None:
        """Queue a message no command of this client asked for (``liaison.send``).

        Unless the client opted in to immediate pushes (:meth:`set_immediate_pushes`),
        it waits until none of the client's messages awaits its reply: liaison 1.0
        clients read ``evt.id`` of every message while a call is pending.
        """

    def set_immediate_pushes(self, immediate: bool) -> None:
        """Send unsolicited messages at once (True) or hold them as above (False)."""


# -- the inbox: how other threads reach the transport's event loop ------------------------


class LoopInbox:
    """Calls handed to the event loop from other threads, run in order, in batches.

    ``call_soon_threadsafe`` wakes the loop (a write to its self-pipe) for every call; the
    main thread produces replies in bursts, so one wake-up per batch saves a syscall and
    a loop iteration per reply. It counts the bytes of messages on their way (``nbytes``)
    and holds the threads that must wait for a connection's outbox to drain
    (:meth:`wait_for_room`).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._calls: collections.deque[tuple[Callable[[Any], None], Any]] = collections.deque()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self._wake_pending = False
        self.nbytes = 0  # of the calls not yet run; changed under the lock
        self.waiting = 0  # threads in wait_for_room; changed under the lock

    def put(self, function: Callable[[Any], None], argument: Any, nbytes: int = 0) -> None:
        with self._lock:
            self._calls.append((function, argument))
            self.nbytes += nbytes
            if self._wake_pending:
                return  # the pending _run_all will find this call
            self._wake_pending = True
        try:  # noqa: SIM105 - on every reply: free when nothing is raised, unlike suppress()
            self._loop.call_soon_threadsafe(self._run_all)
        except RuntimeError:
            pass  # the loop has closed: the liaison is exiting and no one is left to send to

    def _run_all(self) -> None:
        with self._lock:
            self._wake_pending = False
            # Calls put from here on count until the next _run_all, which they schedule.
            self.nbytes = 0
        calls = self._calls
        while calls:
            function, argument = calls.popleft()
            function(argument)
        if self.waiting:
            self.notify_room()

    def wait_for_room(self, must_wait: Callable[[], bool]) -> None:
        """Block this (non-I/O) thread while ``must_wait()``; woken by :meth:`notify_room`."""
        with self._lock:
            self.waiting += 1
            try:
                while must_wait():
                    # A timeout, so an exception raised into a worker thread to cancel its
                    # command (PyThreadState_SetAsyncExc) is seen within a second.
                    self._room.wait(WAIT_RECHECK_SECONDS)
            finally:
                self.waiting -= 1

    def notify_room(self) -> None:
        """Let the waiting threads check again (I/O thread)."""
        with self._lock:
            self._room.notify_all()


WAIT_RECHECK_SECONDS = 1.0


# -- the queued connection: the flow-control rule and the connection's states -------------

# Bytes of messages waiting to be sent to one client. At this mark reading that client
# pauses, and a command sending to it (progress, partial, push, a reply made on another
# thread) waits until the outbox is back under the low mark: memory stays bounded and
# nothing is dropped, however fast commands produce and however slowly the client reads.
OUTBOX_HIGH_WATER_BYTES = 16 * 2**20
OUTBOX_LOW_WATER_BYTES = OUTBOX_HIGH_WATER_BYTES // 2

# orjson's output keeps the whole buffer it was written in: 4 KiB for a 100-byte message,
# ~9x the size of larger ones (tracemalloc). A message queued behind this many bytes, that
# is for a client that lags, is copied to its own size (as is a held push), so the
# outbox's bound in bytes bounds its memory too; a message sent at once costs one
# comparison.
COMPACT_FROM_BYTES = 2**20

# Bytes of a client's messages read and queued for a command, not yet answered: at this
# mark reading that client pauses until replies come (one message past it is read).
QUEUED_REQUESTS_MAX_BYTES = 16 * 2**20

# Pushed messages held for a client until its pending replies are out (see
# QueuedConnection.push_unsolicited), in messages and bytes; past either, they are sent
# at once.
HELD_PUSHES_MAX = 1024
HELD_PUSHES_MAX_BYTES = OUTBOX_HIGH_WATER_BYTES

NOT_READING = "client does not read its messages"


class ConnectionState(enum.Enum):
    """A connection's lifecycle: OPEN -> CLOSING -> CLOSED, moved on the I/O thread only,
    and only by QueuedConnection (every move is one of its methods).

    To CLOSING when nothing more may be queued: the client left (``close_outbox``), or is
    dropped for not reading (``_check_stall``). To CLOSED once its writer has stopped
    (``writer_stopped``). Replies and pushes made after OPEN are dropped.
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
    """A connection as the executor sees it (a Sink), for any transport.

    Its methods may be called from any thread; they run on the I/O thread (at once
    there, else through the LoopInbox). It owns the flow-control rule:

    - Reading pauses (``_pause_reading``) while ``max_pending`` messages await their
      reply or their turn on the wire, ``QUEUED_REQUESTS_MAX_BYTES`` of requests await
      their command, or ``OUTBOX_HIGH_WATER_BYTES`` wait in the outbox; it resumes as
      they drain.
    - A thread other than the I/O thread that queues a message while the outbox (with
      what is on its way to it) holds ``OUTBOX_HIGH_WATER_BYTES`` waits until it is under
      ``OUTBOX_LOW_WATER_BYTES``: the command sending progress, partials or pushes is
      held, never the I/O thread.
    - A client that takes nothing from its outbox for ``read_timeout`` seconds while it
      holds ``OUTBOX_LOW_WATER_BYTES`` or more is dropped (``_drop``).

    It holds unsolicited pushes while a message awaits its reply. A transport writes
    ``_start_writing``, ``_pause_reading``, ``_resume_reading`` and ``_drop``, hands each
    message read to :meth:`take`, calls :meth:`_sent` for each message that left the
    outbox, and :meth:`close_outbox` and :meth:`writer_stopped` as the connection ends.
    """

    _ids = itertools.count(1)

    def __init__(self, inbox: LoopInbox, max_pending: int, read_timeout: float) -> None:
        self.id = next(self._ids)
        self._inbox = inbox
        self._loop_thread = threading.get_ident()
        self._state = OPEN
        self._outbox = Outbox()
        self._max_pending = max_pending
        self._read_timeout = read_timeout
        self._unanswered = 0
        # Bytes of the messages held by a job (queued, running or concurrent) until its
        # reply; each reply gives back exactly its own message's (hold_arriving, send):
        # paired by arrival order instead, a concurrent command's large message was given
        # back by a quick command's reply, and such messages grew memory without bound.
        self._queued_bytes = 0
        self._arriving = 0  # size of the message being handled, until a job holds it
        self._handling = False  # on_message runs: a reply made now is the message's own
        self._reading_paused = False
        self._written = 0  # messages that left the outbox: the client's progress
        self._stall_timer: asyncio.TimerHandle | None = None
        self._written_at_timer = 0
        self.immediate_pushes = False
        self._held = Outbox()  # unsolicited pushes waiting for the pending replies

    @property
    def state(self) -> ConnectionState:
        return self._state

    @property
    def closed(self) -> bool:
        """Nothing more is sent to this client."""
        return self._state is not OPEN

    def send(self, data: bytes | bytearray, held: int = 0) -> None:
        """Queue the final reply to a message this connection sent (any thread); ``held``:
        what :meth:`hold_arriving` returned for that message."""
        if held:
            # Given back before the reply is queued (the inbox runs calls in order), so
            # that the reply leaving for the wire can resume reading.
            if threading.get_ident() == self._loop_thread:
                self._queued_bytes -= held
            else:
                self._inbox.put(self._give_back, held)
        self._call(self._enqueue_reply, data)

    def hold_arriving(self) -> int:
        """See :meth:`Sink.hold_arriving` (I/O thread)."""
        size = self._arriving
        self._arriving = 0
        self._queued_bytes += size
        return size

    def _give_back(self, held: int) -> None:
        self._queued_bytes -= held

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

    # -- what a transport writes (I/O thread) --------------------------------------------

    def _start_writing(self) -> None:
        """Something was queued: send the outbox, unless a send is under way."""
        raise NotImplementedError

    def _pause_reading(self) -> None:
        raise NotImplementedError

    def _resume_reading(self) -> None:
        raise NotImplementedError

    def _drop(self, reason: str) -> None:
        """Drop the peer for not reading (its state is CLOSING already)."""
        raise NotImplementedError

    # -- what a transport calls (I/O thread) ---------------------------------------------

    def take(self, data: str | bytes, on_message: Callable[[str | bytes, Any], None]) -> None:
        """Hand one message read from the peer to ``on_message``."""
        self._unanswered += 1
        self._arriving = len(data)  # for a job to hold (hold_arriving)
        self._handling = True
        try:
            on_message(data, self)
        finally:
            self._handling = False
            self._arriving = 0

    def take_invalid(self, reply: bytes) -> None:
        """Answer a message read from the peer that could not be framed with ``reply``."""
        self._unanswered += 1
        self._handling = True
        try:
            self.send(reply)
        finally:
            self._handling = False

    def _sent(self, data: bytes | bytearray) -> None:
        """``data`` left the outbox for the wire."""
        outbox = self._outbox
        outbox.nbytes -= len(data)
        self._written += 1
        if self._reading_paused and not self._crowded():
            self._reading_paused = False
            self._resume_reading()
        if self._inbox.waiting and outbox.nbytes < OUTBOX_LOW_WATER_BYTES:
            self._inbox.notify_room()

    def _check_room(self) -> None:
        """Pause or resume reading as the rule says."""
        crowded = self._crowded()
        if crowded != self._reading_paused:
            self._reading_paused = crowded
            if crowded:
                self._pause_reading()
            else:
                self._resume_reading()

    def close_outbox(self) -> None:
        """The client left: queue nothing more, and end the writer after what is queued."""
        self._to_closing()
        self._outbox.append(None)
        self._start_writing()

    def writer_stopped(self) -> None:
        """Nothing more can be written: the writer ended or the output closed."""
        self._state = CLOSED
        self._stop_waiting()

    # -- the rule --------------------------------------------------------------------------

    def _crowded(self) -> bool:
        return (
            self._unanswered + len(self._outbox) >= self._max_pending
            or self._outbox.nbytes >= OUTBOX_HIGH_WATER_BYTES
            or self._queued_bytes >= QUEUED_REQUESTS_MAX_BYTES
        )

    def _call(self, method: Callable[[bytes | bytearray], None], data: bytes | bytearray) -> None:
        inbox = self._inbox
        queued = self._outbox.nbytes + inbox.nbytes
        if queued >= COMPACT_FROM_BYTES and type(data) is bytes:
            data = bytes(memoryview(data))  # it will wait: a copy of its own size
        if threading.get_ident() == self._loop_thread:
            method(data)
            return
        inbox.put(method, data, len(data))
        if queued + len(data) >= OUTBOX_HIGH_WATER_BYTES:
            inbox.wait_for_room(self._producer_must_wait)

    def _producer_must_wait(self) -> bool:
        return (
            self._state is OPEN
            and self._outbox.nbytes + self._inbox.nbytes >= OUTBOX_LOW_WATER_BYTES
        )

    def _enqueue(self, data: bytes | bytearray) -> None:
        """Queue ``data`` for the wire (I/O thread); dropped unless OPEN."""
        if self._state is not OPEN:
            return
        outbox = self._outbox
        outbox.append(data)
        outbox.nbytes += len(data)
        # From the low mark, where waiting producers resume: a producer may wait with
        # the outbox under the high mark (a write left it between its check and here).
        if outbox.nbytes >= OUTBOX_LOW_WATER_BYTES and self._stall_timer is None:
            self._watch_for_stall()
        self._start_writing()

    def _watch_for_stall(self) -> None:
        self._written_at_timer = self._written
        loop = asyncio.get_running_loop()
        self._stall_timer = loop.call_later(self._read_timeout, self._check_stall)

    def _check_stall(self) -> None:
        self._stall_timer = None
        if self._state is not OPEN or self._outbox.nbytes < OUTBOX_LOW_WATER_BYTES:
            return
        if self._written != self._written_at_timer:
            self._watch_for_stall()  # it reads, slowly: watch the next period
            return
        log.warning("%r has read nothing for %s s: disconnecting it", self, self._read_timeout)
        self._to_closing()
        self._drop(NOT_READING)

    def _to_closing(self) -> None:
        if self._state is OPEN:
            self._state = CLOSING
        self._stop_waiting()

    def _stop_waiting(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        if self._inbox.waiting:
            self._inbox.notify_room()  # a command waiting to send here: nothing will be

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
        held.append(bytes(memoryview(data)) if type(data) is bytes else data)  # it waits
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
