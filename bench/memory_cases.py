"""Peak memory of a liaison under the flow-control cases of issue 20 (items 5-6).

Each case starts a fresh `python -m liaison.websocket 127.0.0.1:0`, reads its resident
memory once it has answered a ping (idle), runs the case, and reports the peak
(`VmHWM`, /proc) above idle, in MB (10^6 bytes). The bound to compare with is 300 MB.

    python bench/memory_cases.py [--cases queued,replies,...] [--pythonpath DIR]
                                 [--baseline DIR] [--write bench/RESULTS.md]

`--pythonpath DIR` runs another build, `--baseline DIR` one more beside it in the same
run (for example `git archive <commit> src | tar -x -C /tmp/base`, then `--baseline
/tmp/base/src`). A case whose liaison grows past `--ceiling` MB (default 1,500) above
idle is stopped there and reported as "> ceiling". `--write` puts the table in its own
section at the end of the file (bench/run.py keeps that section when it rewrites
RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

BENCH = Path(__file__).resolve().parent
MARKER = re.compile(rb"LIAISON:CONNECTED@127\.0\.0\.1:(\d+)")
MB = 10**6


def status(pid: int, field: str) -> int:
    """A /proc/PID/status field in bytes (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as file:
        for line in file:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


class RawClient:
    """A WebSocket client on a plain socket (websockets' sans-I/O protocol) that reads
    only when asked to: a client that never reads is one that is never asked."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        self.protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/"), max_size=None)
        self.protocol.send_request(self.protocol.connect())
        self.sock.sendall(b"".join(self.protocol.data_to_send()))
        while not any(isinstance(event, Response) for event in self._receive()):
            pass

    def _receive(self) -> list[object]:
        data = self.sock.recv(2**20)
        if not data:
            raise EOFError("the liaison closed the connection")
        self.protocol.receive_data(data)
        events = self.protocol.events_received()
        self.sock.sendall(b"".join(self.protocol.data_to_send()))  # pongs, close
        return events

    def send(self, message: dict[str, object]) -> None:
        frame = Frame(Opcode.TEXT, orjson.dumps(message))
        self.sock.sendall(frame.serialize(mask=True))

    def messages(self) -> Iterator[dict[str, object]]:
        while True:
            for event in self._receive():
                if isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                    yield orjson.loads(event.data)

    def replies(self, count: int) -> None:
        """Read until ``count`` final replies have come."""
        for message in self.messages():
            if message.get("tag") in ("response", "error"):
                assert message.get("tag") == "response", message
                count -= 1
                if not count:
                    return

    def close(self) -> None:
        self.sock.close()


def command(name: str, *args: object, **fields: object) -> dict[str, object]:
    return {"command": {"command": name, "args": list(args)}, "echo": False, **fields}


class Liaison:
    def __init__(self, pythonpath: str | None) -> None:
        paths = [str(BENCH)] + ([pythonpath] if pythonpath else [])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "liaison.websocket", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        assert self.process.stdout is not None
        seen = b""
        while not (match := MARKER.search(seen)):
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"the liaison did not start: {seen!r}")
            seen += chunk
        self.port = int(match.group(1))
        self.pid = self.process.pid
        self.ping()
        self.idle = status(self.pid, "VmRSS")

    def ping(self) -> None:
        client = RawClient(self.port)
        client.send(command("ping", id="ping"))
        client.replies(1)
        client.close()

    def above_idle(self, field: str = "VmRSS") -> int:
        return status(self.pid, field) - self.idle

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def settle(liaison: Liaison, ceiling: int, longest: float = 30.0) -> bool:
    """Wait until resident memory has not grown for 3 s (False: it passed ``ceiling``)."""
    started = last_growth = time.monotonic()
    high = liaison.above_idle()
    while time.monotonic() - last_growth < 3 and time.monotonic() - started < longest:
        time.sleep(0.2)
        now = liaison.above_idle()
        if now > ceiling:
            return False
        if now > high + MB:
            high, last_growth = now, time.monotonic()
    return True


def send_all(client: RawClient, messages: list[dict[str, object]]) -> threading.Thread:
    """Send from a thread: the liaison may stop reading (that is the point)."""

    def run() -> None:
        try:
            for message in messages:
                client.send(message)
        except OSError:
            pass  # the liaison closed the connection

    sender = threading.Thread(target=run, daemon=True)
    sender.start()
    return sender


def queued(echo: bool) -> Callable[[Liaison, int], bool]:
    def case(liaison: Liaison, ceiling: int) -> bool:
        """20 requests of 50 MB queued behind a 10 s command (time enough to send them
        all, unless the liaison stops reading); the client reads every reply (with
        ``echo``, each reply holds its 50 MB request again, in ``evt``)."""
        client = RawClient(liaison.port)
        big = "x" * (50 * MB)
        messages = [command("run", "time:sleep", 10, id="sleep")]
        messages += [{**command("run", "builtins:len", big, id=i), "echo": echo} for i in range(20)]
        sender = send_all(client, messages)
        client.replies(21)
        sender.join()
        client.close()
        return True

    return case


def never_reads(*messages: dict[str, object]) -> Callable[[Liaison, int], bool]:
    def case(liaison: Liaison, ceiling: int) -> bool:
        client = RawClient(liaison.port)
        send_all(client, list(messages))
        within = settle(liaison, ceiling)
        liaison.ping()  # another client is still answered
        client.close()
        return within

    return case


def pings(liaison: Liaison, ceiling: int) -> bool:
    """2,000,000 PING frames from a client that never reads (a PONG answers each)."""
    client = RawClient(liaison.port)
    chunk = Frame(Opcode.PING, b"").serialize(mask=True) * 10_000
    client.sock.settimeout(5)

    def run() -> None:
        try:
            for _ in range(200):
                client.sock.sendall(chunk)
        except OSError:
            pass  # the liaison stopped reading (timeout) or closed

    sender = threading.Thread(target=run, daemon=True)
    sender.start()
    within = settle(liaison, ceiling)
    liaison.ping()
    client.close()
    return within


CASES: dict[str, tuple[str, Callable[[Liaison, int], bool]]] = {
    "queued": ("20 queued 50 MB requests, `echo: false` (client reads)", queued(echo=False)),
    "queued-echo": ("the same, each reply echoing its request (`evt`)", queued(echo=True)),
    "replies": (
        "2,000 unread 1 MB replies",
        never_reads(*[command("run", "operator:mul", "x", MB, id=i) for i in range(2000)]),
    ),
    "stream": (
        "a stream of 200,000 x 1 kB partials, never read",
        never_reads(command("run", "memory_helpers:stream", 200_000, 1000, stream=True, id=1)),
    ),
    "progress": (
        "200,000 x 1 kB progress messages, never read",
        never_reads(command("run", "memory_helpers:progress", 200_000, 1000, id=1)),
    ),
    "pushes": (
        "200,000 x 1 kB pushes (pushes=immediate), never read",
        never_reads(
            {"command": {"command": "configure", "kwargs": {"pushes": "immediate"}}, "id": 0},
            command("run", "memory_helpers:push", "$liaison", 200_000, 1000, id=1),
        ),
    ),
    "pings": ("2,000,000 PING frames, never read", pings),
}


SECTION = "## Memory bounds (bench/memory_cases.py)"


def measure(name: str, pythonpath: str | None, ceiling: int) -> str:
    """One case on a fresh liaison: its peak above idle, in MB, as a table cell."""
    _, case = CASES[name]
    liaison = Liaison(pythonpath)
    try:
        within = case(liaison, ceiling * MB)
        peak = liaison.above_idle("VmHWM") / MB
        return f"{peak:,.0f}" if within else f"> {ceiling:,} (stopped)"
    finally:
        liaison.stop()


def write_section(path: Path, lines: list[str]) -> None:
    """Replace (or add) this script's section at the end of ``path``."""
    text = path.read_text() if path.exists() else ""
    text = text.split("\n" + SECTION)[0].rstrip("\n")
    path.write_text(text + "\n\n" + "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="of: " + ", ".join(CASES))
    parser.add_argument("--pythonpath", help="run the liaison from this source folder")
    parser.add_argument("--baseline", help="also run this source folder, in the same run")
    parser.add_argument("--ceiling", type=int, default=1500, help="MB above idle")
    parser.add_argument("--write", type=Path, help="put the table in this file's section")
    options = parser.parse_args()
    baseline = options.baseline is not None
    header = "| case | peak above idle (MB) |" + (" before (MB) |" if baseline else "")
    lines = [header + " bound (MB) |", "|---|---:|" + ("---:|" if baseline else "") + "---:|"]
    print("\n".join(lines), flush=True)
    idle = Liaison(options.pythonpath)
    idle_mb = idle.idle / MB
    idle.stop()
    for name in options.cases.split(","):
        cells = [CASES[name][0], measure(name, options.pythonpath, options.ceiling)]
        if baseline:
            cells.append(measure(name, options.baseline, options.ceiling))
        lines.append("| " + " | ".join([*cells, "300"]) + " |")
        print(lines[-1], flush=True)
    if options.write:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        intro = [
            SECTION, "",
            f"{when}; `python bench/memory_cases.py"
            + (" --baseline DIR" if baseline else "")
            + f" --write FILE`. Peak resident memory (`VmHWM`) above idle ({idle_mb:,.0f} MB"
            " once it has answered a ping), each case on a fresh `python -m"
            " liaison.websocket`; MB are 10^6 bytes. The bound is 300 MB above idle"
            " (issue 20)."
            + (f" \"before\": the build in `{options.baseline}`, same run." if baseline else ""),
            "",
        ]  # fmt: skip
        write_section(options.write, intro + lines)


if __name__ == "__main__":
    main()
