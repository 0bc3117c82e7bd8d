"""The two command lines (``python -m liaison.websocket`` and ``python -m liaison.stdio``)
and the options they share."""

__all__: list[str] = []
