"""The WebSocket transport: the server, its handshake policy and its settings."""
