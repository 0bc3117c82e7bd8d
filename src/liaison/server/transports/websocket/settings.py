"""What only a WebSocket liaison is configured with: where it listens and whom it lets
in. Given to the WebSocket transport's factory beside the settings every liaison has
(server/settings.py)."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["WebSocketSettings"]


# A NamedTuple, as server/settings.py's Settings: cheaper to build than a dataclass.
class WebSocketSettings(NamedTuple):
    """How a WebSocket liaison listens and whom it lets in.

    - ``host``, ``port``: the address to bind exactly (an IPv6 host bracketed or not:
      ``[::1]``, as on the command line, or ``::1``); port 0 picks a free port.
    - ``token``: if set, clients must present it (``?token=`` or ``Authorization: Bearer``).
    - ``allowed_origins``: origins let in beside the defaults (no Origin, http(s) on a
      loopback host); ``"null"`` (sandboxed frames, local files in browsers) and
      ``"file://"`` (Electron pages) get in only when listed; ``"*"`` lets in every origin.
    - ``max_connections``: open connections at most; ``None`` for no limit.
    - ``handshake_timeout``: seconds a client has to complete the opening handshake.
    """

    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None
    allowed_origins: frozenset[str] = frozenset()
    max_connections: int | None = None
    handshake_timeout: float = 10.0

    def __repr__(self) -> str:  # keep the token out of logs and tracebacks
        token = None if self.token is None else "<hidden>"
        return (
            f"WebSocketSettings(host={self.host!r}, port={self.port}, token={token}, "
            f"allowed_origins={sorted(self.allowed_origins)}, "
            f"max_connections={self.max_connections}, "
            f"handshake_timeout={self.handshake_timeout})"
        )
