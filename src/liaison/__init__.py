"""Liaison: drive a Python backend from a frontend by sending JSON commands."""

__version__ = "2.0.0.dev0"
