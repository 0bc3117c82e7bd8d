"""The stdio rows: `python -m liaison.stdio` over a pipe pair, measured in the same run as
the WebSocket rows (sequential ping, pipelined ping, the 2 MB payload), so the two
transports of one liaison stand side by side.

The client is asyncio's subprocess streams, as the WebSocket sequential and payload rows
use an asyncio client; the pipelined stdio ping writes all its messages in one write and
reads the replies line by line, as the WebSocket one sends pre-framed messages from a
thread while the caller reads.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from time import perf_counter as perf
from typing import Any

import orjson
from servers import Server, clean_env

import client as C

ROWS = ["stdio_seq_ping_median_us", "stdio_pipe_ping_rate", "stdio_payload_ms"]
START_LINE = b"LIAISON:CONNECTED@stdio\n"


class StdioPeer:
    """A `python -m liaison.stdio` child and its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.next_id = 0

    @classmethod
    async def start(cls, python: str) -> StdioPeer:
        proc = await asyncio.create_subprocess_exec(
            python, "-m", "liaison.stdio",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, env=clean_env(), limit=2**26,
        )  # fmt: skip
        assert proc.stdout is not None
        first = await proc.stdout.readline()
        if first != START_LINE:
            raise C.CommandError(f"no start marker but {first[:200]!r}")
        return cls(proc)

    def line(self, command: str, args: list[Any] | None = None) -> bytes:
        self.next_id += 1
        message = {"command": {"command": command, "args": args or []}, "id": self.next_id}
        return orjson.dumps(message) + b"\n"

    async def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def reply(self) -> Any:
        assert self.proc.stdout is not None
        return C.result_of(orjson.loads(await self.proc.stdout.readline()))

    async def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # EOF stops it
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def m_stdio(server: Server, p: C.Params) -> dict[str, Any]:
    """The stdio rows, for the liaison only (the floor and 1.0 have no stdio mode)."""
    if server.spec.key != "liaison":
        raise C.NotSupported("not measured: only this liaison has a stdio transport")
    peer = await StdioPeer.start(server.spec.python or sys.executable)
    try:
        ping = peer.line("ping")
        for _ in range(100):  # warm-up
            await peer.write(ping)
            await peer.reply()
        times = []
        for _ in range(p.seq_n):
            t0 = perf()
            await peer.write(ping)
            await peer.reply()
            times.append(perf() - t0)
        walls = []
        for _ in range(p.pipe_reps):
            burst = ping * p.pipe_n
            t0 = perf()
            await peer.write(burst)
            for _ in range(p.pipe_n):
                await peer.reply()
            walls.append(perf() - t0)
        payload = C.payload_string(p)
        trips = []
        for _ in range(p.payload_reps):
            raw = peer.line("run", ["copy:copy", payload])
            t0 = perf()
            await peer.write(raw)
            result = await peer.reply()
            trips.append(perf() - t0)
            if result != payload:
                raise C.CommandError("payload came back changed")
        return {
            "stdio_seq_ping_median_us": statistics.median(times) * 1e6,
            "stdio_pipe_ping_rate": p.pipe_n / statistics.median(walls),
            "stdio_payload_ms": statistics.median(trips) * 1e3,
        }
    finally:
        await peer.close()
