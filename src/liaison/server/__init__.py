"""One liaison process: the runtime, the I/O thread and its transports, the dispatcher,
the executor and the main thread's loop (with ``--gui``, a toolkit's)."""

__all__: list[str] = []
