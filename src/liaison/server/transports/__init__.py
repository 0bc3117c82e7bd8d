"""Transports move messages between clients and the dispatcher and enforce connection policy."""

__all__: list[str] = []
