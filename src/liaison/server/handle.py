"""The handle user code gets to the running liaison: ``liaison`` in the Companion's namespace.

Not a server: the runtime builds it once the transport serves (runtime.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..protocol.encoding import dumps
from .jobs import current_job, progress

__all__ = ["Liaison"]


class Liaison:
    """Lets commands push messages to clients and report progress.

    Frontends written for liaison 1.0 pass it to their objects (``liaison="$liaison"``)
    and call ``send`` to push alerts.
    """

    def __init__(
        self, address: str, broadcast: Callable[[bytes], None], stop: Callable[[], None]
    ) -> None:
        """``address`` is what the start marker names (``HOST:PORT`` for WebSocket)."""
        self.address = address
        host, _, port = address.rpartition(":")
        # As liaison 1.0's server had them; the port is 0 for a transport without one.
        self.host = host or address
        self.port = int(port) if port.isdigit() else 0
        self._broadcast = broadcast
        self._stop = stop

    def __repr__(self) -> str:
        return f"<Liaison {self.address}>"

    def send(self, message: Any, to: str | None = None) -> None:
        """Push ``message`` (JSON-encoded unless a str) to every client.

        ``to="sender"`` sends it only to the client whose command is running (raises
        LookupError outside a command). A client with a command awaiting its reply gets
        the message after that reply, unless it opted in to immediate pushes
        (docs/protocol.md, "Pushed messages").
        """
        data = message.encode() if isinstance(message, str) else dumps(message)
        if to is None:
            self._broadcast(data)
        elif to == "sender":
            job = current_job.get()
            if job is None:
                raise LookupError("send(to='sender') called outside a command")
            job.sink.push_unsolicited(data)
        else:
            raise ValueError(f"to must be None or 'sender', got {to!r}")

    def progress(self, data: Any) -> bool:
        """Send ``data`` as progress of the running command to its client."""
        return progress(data)

    def stop(self) -> None:
        """Stop the liaison gracefully once the running command returns."""
        self._stop()
