"""Server CPU cost per message in instructions, counted by valgrind's callgrind.

Wall-clock and CPU-time figures on a shared 2-core VM move by 20-40% from run to run;
an instruction count moves by ~1%. A server runs under ``valgrind --tool=callgrind``;
after a warm-up, its counters are zeroed (``callgrind_control --zero``), ``count``
messages are sent (pipelined in batches, or one at a time), and its counters are dumped
(``callgrind_control --dump``) once the last reply is in, so

    instructions per message = instructions between the zero and the dump / count

Start-up and shutdown are outside the window. (Until 2026-12-04 this was the
difference of two whole runs, with 1,000 and 4,000 messages: how far the interpreter's
finalisation got before exit differed between runs by ~3M instructions, ~1-3k a
message, and the sequential row moved by ~10%.) The idle work in the window (the
parent watch, every 0.25 s) is ~0.1% of it. About 20 s per server and message kind;
Python runs ~50x slower under callgrind.

    python bench/instructions.py   # liaison and floor: ping (pipelined, sequential), no-op run
    python bench/instructions.py --kinds ping,ping-seq floor liaison:PYTHONPATH=/other/src

VARIANTs as in compare_sequential.py (``floor``, ``liaison``, ``liaison:NAME=VALUE,...``),
run in the order given: a build against another, back to back.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
from websockets.sync.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import Server, ServerSpec, floor_spec, liaison_spec

VALGRIND = shutil.which("valgrind")
CALLGRIND_CONTROL = shutil.which("callgrind_control")
PING = {"command": {"command": "ping"}}
RUN = {"command": {"command": "run", "args": ["builtins:abs", -1]}}
WARM_UP = 200
# kind: (message, batch size, messages counted)
KINDS: dict[str, tuple[dict[str, object], int, int]] = {
    "ping": (PING, 500, 3000),
    # one at a time: each message is a wake-up of the event loop of its own, as in the
    # sequential round trip, where no cost is shared between messages
    "ping-seq": (PING, 1, 1000),
    "run": (RUN, 500, 3000),
}
_SUMMARY = re.compile(rb"^summary: (\d+)", re.MULTILINE)


def under_callgrind(spec: ServerSpec, out_file: Path) -> ServerSpec:
    """``spec`` run by callgrind (one output file for all threads)."""
    return ServerSpec(
        spec.key,
        spec.title,
        VALGRIND or "valgrind",
        [
            "--tool=callgrind",
            f"--callgrind-out-file={out_file}",
            spec.python,
            *spec.module_args,
        ],
        spec.fixed_port,
        spec.env,
    )


def send(ws: ClientConnection, message: dict[str, object], count: int, batch_size: int) -> None:
    """``count`` messages in batches of ``batch_size``, each batch after the previous
    batch's replies (1: one at a time, as in the sequential round trip)."""
    sent = 0
    while sent < count:
        batch = min(batch_size, count - sent)
        for i in range(batch):
            ws.send(orjson.dumps({**message, "id": sent + i}).decode())
        for _ in range(batch):
            ws.recv(timeout=120)
        sent += batch


def callgrind_control(server: Server, *args: str) -> None:
    subprocess.run(
        [CALLGRIND_CONTROL or "callgrind_control", *args, str(server.pid)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def instructions_per_message(spec: ServerSpec, kind: str) -> float:
    message, batch_size, count = KINDS[kind]
    # One plain start first: a server whose bytecode caches are missing would compile
    # its modules under callgrind (outside the window, but slowly).
    with Server(spec):
        pass
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "callgrind.out"
        server = Server(under_callgrind(spec, out_file)).start(timeout=120)
        try:
            with connect(server.uri, compression=None, max_size=None, open_timeout=60) as ws:
                send(ws, message, WARM_UP, batch_size)
                callgrind_control(server, "--zero")
                send(ws, message, count, batch_size)
                callgrind_control(server, "--dump=counted")
        finally:
            server.stop(timeout=120)
        dump = out_file.with_name(out_file.name + ".1")  # the first dump: the window
        match = _SUMMARY.search(dump.read_bytes())
        if match is None:
            raise RuntimeError(f"no instruction summary in {dump}")
        return int(match.group(1)) / count


def variant_spec(variant: str) -> ServerSpec:
    """``floor``, ``liaison`` or ``liaison:NAME=VALUE,...`` (that server's environment)."""
    if variant == "floor":
        return floor_spec()
    _, _, assignments = variant.partition(":")
    spec = liaison_spec()
    spec.title = variant
    spec.env = dict(a.split("=", 1) for a in assignments.split(",") if a)
    return spec


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--kinds", default=",".join(KINDS), help="of " + ", ".join(KINDS))
    parser.add_argument("variants", nargs="*", default=["liaison", "floor"])
    options = parser.parse_args()
    if VALGRIND is None or CALLGRIND_CONTROL is None:
        print("valgrind (with callgrind_control) is not installed", file=sys.stderr)
        return 1
    for spec in map(variant_spec, options.variants):
        for kind in options.kinds.split(","):
            count = instructions_per_message(spec, kind)
            print(f"{spec.title:8} {kind:8} {count:10,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
