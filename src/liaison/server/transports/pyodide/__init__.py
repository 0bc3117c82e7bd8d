"""The Pyodide host: the liaison inside a browser or Node, as WebAssembly, with no
process, thread or socket of its own (docs/design.md, "Where to add things";
docs/protocol.md, "The Pyodide transport").

:class:`PyodideHost` is plain Python (its tests run on CPython); ``worker.py`` is the
glue the JavaScript side (clients/js/src/pyodide/) calls inside Pyodide.
"""

from .host import PyodideHost, SyncInterrupts, Unsupported

__all__ = ["PyodideHost", "SyncInterrupts", "Unsupported"]
