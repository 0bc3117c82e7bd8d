"""Sequential round trips: the floor (websockets), a picows server and liaison, side by side.

    python bench/picows_compare.py PICOWS_PYTHON [--blocks 20] [--command '{"command": "ping"}']

PICOWS_PYTHON is an interpreter with picows and orjson installed (picows is not a
dependency of liaison). Each server gets the same asyncio websockets client; they take
turns every 250 round trips (the first block is a warm-up). The picows server always
answers a ping as the floor does (parse, reply with the message as ``evt``): it measures
the transport, not liaison's commands. bench/README.md has the figures and the decision.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson
from websockets.asyncio.client import connect

BENCH = Path(__file__).resolve().parent

PICOWS_SERVER = """
import asyncio, sys
import orjson
from picows import WSListener, WSMsgType, ws_create_server

class Listener(WSListener):
    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.TEXT:
            msg = orjson.loads(frame.get_payload_as_bytes())
            reply = {"response": "pong", "tag": "response", "evt": msg, "id": msg.get("id")}
            transport.send(WSMsgType.TEXT, orjson.dumps(reply))
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()

async def main():
    server = await ws_create_server(lambda request: Listener(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"LIAISON:CONNECTED@127.0.0.1:{port}")
    sys.stdout.flush()
    await server.serve_forever()

asyncio.run(main())
"""


def start(argv: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    seen = b""
    while not (b"@" in seen and seen.rsplit(b":", 1)[-1].isdigit()):
        chunk = os.read(proc.stdout.fileno(), 100)
        if not chunk:
            raise RuntimeError(f"{argv} exited before its start marker")
        seen += chunk
    return proc, "ws://" + seen.decode().split("@", 1)[1] + "/"


async def measure(picows_python: str, blocks: int, command: dict[str, object]) -> None:
    servers = {
        "floor (websockets)": [sys.executable, str(BENCH / "floor_server.py"), "127.0.0.1:0"],
        "picows": [picows_python, "-c", PICOWS_SERVER],
        "liaison": [sys.executable, "-m", "liaison.websocket", "127.0.0.1:0"],
    }
    procs, clients, times = {}, {}, {key: [] for key in servers}
    try:
        for key, argv in servers.items():
            procs[key], url = start(argv)
            clients[key] = await connect(
                url, compression=None, max_size=None, ping_interval=None, proxy=None
            )
        for block in range(blocks):
            for key in list(servers) if block % 2 == 0 else list(servers)[::-1]:
                body = {"command": "ping"} if key == "picows" else command
                for i in range(250):
                    raw = orjson.dumps({"command": body, "id": i})
                    t0 = time.perf_counter()
                    await clients[key].send(raw, text=True)
                    await clients[key].recv(decode=False)
                    if block:
                        times[key].append(time.perf_counter() - t0)
    finally:
        for key, proc in procs.items():
            if key in clients:
                await clients[key].close()
            proc.send_signal(signal.SIGTERM)
            proc.wait()
    floor = statistics.median(times["floor (websockets)"])
    for key, values in times.items():
        median = statistics.median(values)
        print(f"{key:20s} median {median * 1e6:6.1f} µs  ({median / floor:.2f}x the floor)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("picows_python")
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--command", default='{"command": "ping"}')
    args = parser.parse_args()
    asyncio.run(measure(args.picows_python, args.blocks, orjson.loads(args.command)))


if __name__ == "__main__":
    main()
