"""Transports move messages between clients and the dispatcher and enforce connection policy."""
