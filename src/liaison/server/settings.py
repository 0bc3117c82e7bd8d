"""All configuration of a liaison, built once from the command line and environment."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .hostos import HostOS

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "Settings"]

DEFAULT_MAX_MESSAGE_SIZE = 64 * 2**20


# A NamedTuple rather than a frozen dataclass: building that class costs ~2.5 ms of
# start-up, this one ~0.3 ms.
class Settings(NamedTuple):
    """How a liaison listens, whom it lets in and what it lets them import.

    - ``host``, ``port``: the address to bind exactly (an IPv6 host bracketed or not:
      ``[::1]``, as on the command line, or ``::1``); port 0 picks a free port.
    - ``token``: if set, clients must present it (``?token=`` or ``Authorization: Bearer``).
    - ``allowed_origins``: origins let in beside the defaults (no Origin, http(s) on a
      loopback host); ``"null"`` (sandboxed frames, local files in browsers) and
      ``"file://"`` (Electron pages) get in only when listed; ``"*"`` lets in every origin.
    - ``allowed_modules``: if set, the only modules (with submodules) clients may import.
    - ``max_message_size``: bytes; larger incoming messages close the connection (1009).
    - ``max_connections``: open connections at most; ``None`` for no limit.
    - ``max_pending``: unanswered messages per connection before it stops being read.
    - ``client_read_timeout``: seconds a client may read nothing while its outbox is
      full (server/transports/outbox.py) before it is dropped (WebSocket: closed with 1008).
    - ``handshake_timeout``: seconds a client has to complete the opening handshake.
    - ``watch_parent``: stop when the process that started the liaison exits.
    - ``user_output``: where user code's output goes once the start marker is out,
      ``"stdout"`` (as in liaison 1.0) or ``"stderr"``.
    - ``gui``: the GUI toolkit whose event loop runs on the main thread between commands
      (``"tk"``, ``"qt"``, another registered name or ``"module:Class"``); None for none.
    - ``host_os``: how to wake the I/O thread, interrupt commands and watch the parent
      (hostos.py); None for this OS's way.
    """

    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None
    allowed_origins: frozenset[str] = frozenset()
    allowed_modules: frozenset[str] | None = None
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    max_connections: int | None = None
    max_pending: int = 4096
    client_read_timeout: float = 60.0
    handshake_timeout: float = 10.0
    watch_parent: bool = True
    user_output: str = "stdout"
    gui: str | None = None
    host_os: HostOS | None = None

    def __repr__(self) -> str:  # keep the token out of logs and tracebacks
        token = None if self.token is None else "<hidden>"
        return (
            f"Settings(host={self.host!r}, port={self.port}, token={token}, "
            f"allowed_origins={sorted(self.allowed_origins)}, "
            f"allowed_modules={self.allowed_modules and sorted(self.allowed_modules)}, "
            f"max_message_size={self.max_message_size}, "
            f"max_connections={self.max_connections})"
        )
