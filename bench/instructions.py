"""Server CPU cost per message in instructions, counted by valgrind's callgrind.

Wall-clock and CPU-time figures on a shared 2-core VM move by 20-40% from run to run;
an instruction count moves by under ~10% (only how many messages the event loop takes
per wake-up still depends on timing). A server runs under ``valgrind --tool=callgrind``,
once with ``small`` and once with ``large`` messages (pipelined, or one at a time);
start-up and shutdown cost the same in both runs, so

    instructions per message = (total(large) - total(small)) / (large - small)

About a minute per server and message kind; Python runs ~50x slower under callgrind.

    python bench/instructions.py   # liaison and floor: ping (pipelined, sequential), no-op run
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

import orjson
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import Server, ServerSpec, floor_spec, liaison_spec

VALGRIND = shutil.which("valgrind")
PING = {"command": {"command": "ping"}}
RUN = {"command": {"command": "run", "args": ["builtins:abs", -1]}}
# kind: (message, batch size, small and large message counts)
KINDS: dict[str, tuple[dict[str, object], int, int, int]] = {
    "ping": (PING, 500, 1000, 4000),
    # one at a time: each message is a wake-up of the event loop of its own, as in the
    # sequential round trip, where no cost is shared between messages
    "ping-seq": (PING, 1, 300, 1300),
    "run": (RUN, 500, 1000, 4000),
}
_TOTAL = re.compile(rb"^(?:summary|totals): (\d+)", re.MULTILINE)


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


def total_instructions(
    spec: ServerSpec, message: dict[str, object], count: int, batch_size: int = 500
) -> int:
    """Instructions a server under callgrind executes from start to exit, ``count``
    ``message``s in between, sent in batches of ``batch_size`` (1: one at a time, each
    sent after the previous reply, as in the sequential round trip)."""
    with tempfile.TemporaryDirectory() as tmp:
        out_file = Path(tmp) / "callgrind.out"
        server = Server(under_callgrind(spec, out_file)).start(timeout=120)
        try:
            with connect(server.uri, compression=None, max_size=None, open_timeout=60) as ws:
                sent = 0
                while sent < count:
                    batch = min(batch_size, count - sent)
                    for i in range(batch):
                        ws.send(orjson.dumps({**message, "id": sent + i}).decode())
                    for _ in range(batch):
                        ws.recv(timeout=120)
                    sent += batch
        finally:
            server.stop(timeout=120)
        match = _TOTAL.search(out_file.read_bytes())
        if match is None:
            raise RuntimeError(f"no instruction total in {out_file}")
        return int(match.group(1))


def instructions_per_message(spec: ServerSpec, kind: str) -> float:
    message, batch_size, small, large = KINDS[kind]
    # One plain start first: a server whose bytecode caches are missing would compile
    # its modules in the first counted run only (an extra ~100k per message seen).
    with Server(spec):
        pass
    totals = [total_instructions(spec, message, n, batch_size) for n in (large, small)]
    return (totals[0] - totals[1]) / (large - small)


def main() -> int:
    if VALGRIND is None:
        print("valgrind is not installed", file=sys.stderr)
        return 1
    for spec in (liaison_spec(), floor_spec()):
        for kind in KINDS:
            print(f"{spec.title:8} {kind:5} {instructions_per_message(spec, kind):10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
