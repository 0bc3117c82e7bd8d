"""How much a transport asks for in one read of its socket or pipe: shared by every transport."""

from __future__ import annotations

import asyncio

__all__ = ["READ_SIZE", "limit_read_size"]

# asyncio's selector transports read into a new bytes object of `max_size` (256 KiB)
# each time. That is over glibc's mmap threshold (128 KiB), so every read costs an
# mmap, an mremap (to the bytes' real size) and a munmap; in a process with several
# threads that was a third of a sequential ping's server CPU (bench/README.md, "Reads").
# Below the threshold, reads come from the heap. A burst of ~1,000 small messages
# still arrives in one read.
READ_SIZE = 64 * 1024


def limit_read_size(transport: asyncio.BaseTransport) -> None:
    """Make ``transport`` read at most :data:`READ_SIZE` bytes at a time.

    Acts on asyncio's selector transports (sockets and pipes on Linux and macOS), which
    read ``transport.max_size`` bytes at a time; others (Windows' proactor reads into
    a buffer made once) are left as they are.
    """
    if isinstance(getattr(transport, "max_size", None), int):
        transport.max_size = READ_SIZE  # type: ignore[attr-defined]
