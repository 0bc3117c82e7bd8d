"""The floor: the least a JSON-over-WebSocket command server can do.

A bare ``websockets`` asyncio server that parses each JSON message and answers
``{"response": ..., "tag": "response", "evt": message, "id": id}``, with no validation,
no queue and no threads except for ``time:sleep``. It is what the benchmark compares
liaison against: liaison cannot be much cheaper than this, so its cost is reported as a
ratio to it.

    python bench/floor_server.py 127.0.0.1:0

prints ``LIAISON:CONNECTED@127.0.0.1:PORT`` (no newline) on stdout once it listens, and
``LIAISON:DISCONNECTED@...`` when stopped by SIGINT/SIGTERM.

Commands (``command.command``):

- ``ping`` -> ``"pong"``;
- ``run`` ``"module:attr", *args`` -> ``attr(*args, **kwargs)``, the same message the
  benchmark sends to liaison. ``time:sleep`` runs in a worker thread (so a ping from a
  second connection is answered while it sleeps); everything else runs inline. A numpy
  array result is sent as ``array.tolist()``, or, with ``"binary": true`` on the message,
  as one binary frame in the layout of docs/protocol.md;
- ``echo`` ``value`` -> ``value``; ``sleep`` ``seconds`` -> ``null`` (in a thread);
  ``arange`` ``n`` -> ``numpy.arange(n).tolist()`` (short names for the same things).

``"echo": false`` on a message drops ``command.args``/``command.kwargs`` from ``evt``.
"""

from __future__ import annotations

import asyncio
import importlib
import signal
import struct
import sys
import time
import traceback

import websockets
from websockets.asyncio.server import serve

try:
    import orjson

    def dumps(obj: object) -> bytes:
        return orjson.dumps(obj)

    loads = orjson.loads
    JSON_LIB = "orjson"
except ImportError:  # pragma: no cover - the venv has orjson
    import json

    def dumps(obj: object) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    loads = json.loads
    JSON_LIB = "json"

_resolved: dict[str, object] = {}


def resolve(target: str) -> object:
    fcn = _resolved.get(target)
    if fcn is None:
        modname, _, attrs = target.partition(":")
        fcn = importlib.import_module(modname)
        for attr in attrs.split(".") if attrs else ():
            fcn = getattr(fcn, attr)
        _resolved[target] = fcn
    return fcn


def binary_frame(reply: dict, array) -> bytes:
    """One binary frame: uint32 LE header length, JSON header, 8-aligned buffer."""
    import numpy

    data = memoryview(numpy.ascontiguousarray(array)).cast("B")
    reply["response"] = {"$buffer": 0, "dtype": str(array.dtype), "shape": list(array.shape)}
    offset = 0
    while True:
        reply["buffers"] = [[offset, data.nbytes]]
        header = dumps(reply)
        needed = (4 + len(header) + 7) // 8 * 8
        if needed == offset:
            break
        offset = needed
    frame = bytearray(offset + data.nbytes)
    frame[0:4] = struct.pack("<I", len(header))
    frame[4 : 4 + len(header)] = header
    frame[offset:] = data
    return bytes(frame)


async def handle(ws) -> None:
    async for raw in ws:
        msg = None
        try:
            msg = loads(raw)
            cmd = msg["command"]
            name = cmd["command"]
            args = cmd.get("args", [])
            kwargs = cmd.get("kwargs", {})
            if name == "ping":
                result = "pong"
            elif name == "run":
                fcn = resolve(args[0])
                if fcn is time.sleep:
                    result = await asyncio.to_thread(fcn, *args[1:], **kwargs)
                else:
                    result = fcn(*args[1:], **kwargs)
            elif name == "echo":
                result = args[0]
            elif name == "sleep":
                result = await asyncio.to_thread(time.sleep, *args)
            elif name == "arange":
                import numpy  # imported on first use: start-up stays lean

                result = numpy.arange(*args, **kwargs)
            else:
                raise ValueError(f"unknown command {name!r}")
            evt = msg
            if msg.get("echo") is False:
                evt = dict(msg, command={"command": name})
            reply = {"response": result, "tag": "response", "evt": evt, "id": msg.get("id")}
            numpy = sys.modules.get("numpy")
            if numpy is not None and isinstance(result, numpy.ndarray):
                if msg.get("binary"):
                    await ws.send(binary_frame(reply, result))
                    continue
                reply["response"] = result.tolist()
            await ws.send(dumps(reply), text=True)
        except websockets.ConnectionClosed:
            return
        except Exception as err:
            reply = {
                "error": traceback.format_exception(err),
                "tag": "error",
                "evt": msg,
                "id": msg.get("id") if isinstance(msg, dict) else None,
                "exception": {"type": type(err).__name__, "message": str(err)},
            }
            await ws.send(dumps(reply), text=True)


async def main(address: str) -> None:
    host, _, port = address.rpartition(":")
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(
            sig, lambda: stop.done() or stop.set_result(None)
        )
    async with serve(
        handle, host, int(port), compression=None, max_size=None, ping_interval=None
    ) as server:
        real_port = server.sockets[0].getsockname()[1]
        sys.stdout.write(f"LIAISON:CONNECTED@{host}:{real_port}")
        sys.stdout.flush()
        await stop
    sys.stdout.write(f"LIAISON:DISCONNECTED@{host}:{real_port}")
    sys.stdout.flush()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: floor_server.py HOST:PORT\n")
        sys.exit(2)
    asyncio.run(main(sys.argv[1]))
