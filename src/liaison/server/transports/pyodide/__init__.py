"""The Pyodide host: the liaison inside a browser or Node, as WebAssembly, with no
process, thread or socket of its own (docs/design.md, "The Pyodide host").

:class:`PyodideHost` is plain Python (its tests run on CPython); ``worker.py`` is the
glue the JavaScript side (clients/js/src/pyodide/) calls inside Pyodide.
"""

from .host import PyodideHost, SyncInterrupts, Unsupported

__all__ = ["PyodideHost", "SyncInterrupts", "Unsupported"]
