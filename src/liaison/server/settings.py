"""The configuration every liaison has, whatever its transport, built once from the
command line and environment. A transport's own settings travel with it
(transports/websocket/settings.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .hostos import HostOS

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "Settings"]

DEFAULT_MAX_MESSAGE_SIZE = 64 * 2**20


# A NamedTuple rather than a frozen dataclass: building that class costs ~2.5 ms of
# start-up, this one ~0.3 ms.
class Settings(NamedTuple):
    """What a liaison lets clients import, how much it reads, and how it runs.

    - ``allowed_modules``: if set, the only modules (with submodules) clients may import.
    - ``max_message_size``: bytes; larger incoming messages are refused (WebSocket: the
      connection closes with 1009; stdio: an error reply).
    - ``max_pending``: unanswered messages per connection before it stops being read.
    - ``client_read_timeout``: seconds a client may read nothing while its outbox is
      full (server/transports/contract.py) before it is dropped (WebSocket: closed with
      1008; stdio: the liaison stops).
    - ``watch_parent``: stop when the process that started the liaison exits.
    - ``user_output``: where user code's output goes once the start marker is out,
      ``"stdout"`` (as in liaison 1.0) or ``"stderr"``.
    - ``gui``: the GUI toolkit whose event loop runs on the main thread between commands
      (``"tk"``, ``"qt"``, another registered name or ``"module:Class"``); None for none.
    - ``host_os``: how to wake the I/O thread, interrupt commands and watch the parent
      (hostos.py); None for this OS's way.
    """

    allowed_modules: frozenset[str] | None = None
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_pending: int = 4096
    client_read_timeout: float = 60.0
    watch_parent: bool = True
    user_output: str = "stdout"
    gui: str | None = None
    host_os: HostOS | None = None
