"""The WebSocket transport: the server, its handshake policy and its settings."""

__all__: list[str] = []
