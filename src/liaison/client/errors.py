"""The errors the client raises, all under :class:`liaison.protocol.errors.LiaisonError`.

::

    LiaisonError
    └── ClientError
        ├── RemoteError            the liaison replied with an error
        │   ├── CallCancelled      ... of type CancelledError
        │   └── CallTimeout        ... of type TimeoutError, or no reply in time
        ├── ConnectFailed          the connection could not be opened (also a ConnectionError)
        ├── ConnectionLost         the connection closed; pending calls fail with it (idem)
        └── SpawnError             spawn() could not start a liaison
"""

from __future__ import annotations

from typing import Any

from ..protocol.errors import LiaisonError

__all__ = [
    "CallCancelled",
    "CallTimeout",
    "ClientError",
    "ConnectFailed",
    "ConnectionLost",
    "RemoteError",
    "SpawnError",
    "remote_error",
]


class ClientError(LiaisonError):
    """Base class of every error the client raises."""


class RemoteError(ClientError):
    """The liaison answered a call with an error reply.

    Attributes: ``type`` (``exception.type`` of the reply, e.g. ``"ZeroDivisionError"``),
    ``message`` (``exception.message``), ``traceback`` (the reply's ``error`` lines joined:
    the remote traceback as text) and ``reply`` (the whole reply; None when the client
    gave up waiting, see :class:`CallTimeout`).
    """

    def __init__(self, type: str, message: str, traceback: str = "", reply: Any = None) -> None:
        super().__init__(f"{type}: {message}" if message else type)
        self.type = type
        self.message = message
        self.traceback = traceback
        self.reply = reply


class CallCancelled(RemoteError):
    """The call was cancelled (a ``cancel`` command, or the liaison shutting down)."""


class CallTimeout(RemoteError):
    """The call ran past its timeout; ``type`` is ``"TimeoutError"``.

    Either the liaison replied TimeoutError (``reply`` is that reply), or no reply came
    within the timeout plus the client's ``reply_margin``: the client then sent ``cancel``
    for the call and stopped waiting (``reply`` is None).
    """


class ConnectFailed(ClientError, ConnectionError):
    """The connection could not be opened; ``status`` is the HTTP status if one was refused
    (401 no token, 403 wrong token or origin, 503 too many connections), else None."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionLost(ClientError, ConnectionError):
    """The connection is closed: raised by every call pending when it dropped, and by any
    call made afterwards."""


class SpawnError(ClientError):
    """:func:`~liaison.client.spawn` could not start a liaison; ``stderr`` holds the
    child's stderr and ``returncode`` its exit status (None if it was still running)."""

    def __init__(self, message: str, stderr: str = "", returncode: int | None = None) -> None:
        super().__init__(
            f"{message}\n--- stderr of the liaison ---\n{stderr}" if stderr else message
        )
        self.stderr = stderr
        self.returncode = returncode


def remote_error(reply: dict[str, Any]) -> RemoteError:
    """The exception for an error ``reply``, of the subclass its type calls for."""
    exception = reply.get("exception")
    if isinstance(exception, dict):
        type_, message = str(exception.get("type")), str(exception.get("message", ""))
    else:  # a liaison 1.0 reply has only the traceback lines
        type_, message = "Error", ""
    lines = reply.get("error")
    traceback = "".join(map(str, lines)) if isinstance(lines, list) else str(lines or "")
    if not message and traceback:
        message = traceback.rstrip().rpartition("\n")[2]
    cls = {"CancelledError": CallCancelled, "TimeoutError": CallTimeout}.get(type_, RemoteError)
    return cls(type_, message, traceback, reply)
