"""Profile the liaison server under a pipelined load with py-spy, and summarise the hot spots.

    pip install py-spy
    python bench/profile_server.py [--load ping|run] [--duration 15] [--output bench/PROFILE.md]

Starts ``python -m liaison.websocket 127.0.0.1:0``, keeps 20,000 messages in flight (the
pipelined test of bench/run.py) for ``--duration`` seconds while ``py-spy record`` samples
the server, then prints and writes a markdown summary: CPU share per thread, the top
functions by own time ("self") and by time spent in them and their callees ("total").
The raw collapsed stacks are kept next to the summary (``--raw``), and ``--svg FILE``
records a second run as a flame graph.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import BENCH, Server, liaison_spec

import client as C


def py_spy() -> str:
    here = Path(sys.executable).parent / "py-spy"
    found = str(here) if here.exists() else shutil.which("py-spy")
    if not found:
        sys.exit("py-spy is not installed: pip install py-spy")
    return found


def load(server: Server, kind: str, seconds: float) -> tuple[int, float]:
    cmd, args = C.PING if kind == "ping" else C.NOOP
    c = C.LeanClient(server, 60)
    sent = 0
    cpu0 = server.cpu_seconds()
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < seconds:
            C._pipelined(c, server, cmd, args, 20_000)
            sent += 20_000
    finally:
        c.close()
    return sent, (server.cpu_seconds() - cpu0) / max(sent, 1) * 1e6


def record(kind: str, seconds: float, fmt: str, out: Path) -> tuple[int, float]:
    with Server(liaison_spec()) as server:
        warm = C.LeanClient(server, 60)
        C._pipelined(warm, server, "ping", [], 2000)
        warm.close()
        spy = subprocess.Popen(
            [
                py_spy(),
                "record",
                "--pid",
                str(server.pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "250",
                "--threads",
                "--nonblocking",
                "--format",
                fmt,
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)
        sent, cpu_us = load(server, kind, seconds)
        _, err = spy.communicate(timeout=60)
        if spy.returncode != 0:
            sys.exit(f"py-spy failed: {err.decode(errors='replace')}")
    return sent, cpu_us


def where(frame: str, line: bool) -> str:
    # "function (path/to/file.py:123)" -> "function (file.py:123)" or "function (file.py)"
    name, _, loc = frame.partition(" (")
    if not loc:
        return name
    loc = os.path.basename(loc.rstrip(")"))
    return f"{name} ({loc if line else loc.rpartition(':')[0]})"


def summarise(raw: Path, top: int) -> tuple[list[str], int]:
    total = 0
    per_thread: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    own_line: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    for text in raw.read_text().splitlines():
        stack, _, count = text.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        thread, frames = frames[0], frames[1:]
        total += n
        per_thread[thread] += n
        if frames:
            own[where(frames[-1], False)] += n
            own_line[where(frames[-1], True)] += n
        for f in {where(f, False) for f in frames}:
            incl[f] += n
    if not total:
        return ["no samples"], 0

    def table(title: str, head: str, counter: collections.Counter[str]) -> list[str]:
        rows = [f"| `{f}` | {n / total:.1%} |" for f, n in counter.most_common(top)]
        return ["", title, "", f"| function | {head} |", "|---|---:|", *rows]

    out = ["| thread | share of samples |", "|---|---:|"]
    out += [f"| {t} | {n / total:.1%} |" for t, n in per_thread.most_common()]
    out += table(f"Top {top} functions by own time:", "self", own)
    out += table(f"Top {top} lines by own time:", "self", own_line)
    out += table(f"Top {top} functions by total time (own + callees):", "total", incl)
    return out, total


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--load", choices=["ping", "run", "both"], default="both")
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--output", default=str(BENCH / "PROFILE.md"))
    ap.add_argument("--raw", default=None, help="folder for the collapsed stacks (default: tmp)")
    ap.add_argument("--svg", default=None, help="also record a flame graph of the ping load")
    args = ap.parse_args()
    raw_dir = Path(args.raw) if args.raw else Path(os.environ.get("TMPDIR", "/tmp"))
    raw_dir.mkdir(parents=True, exist_ok=True)
    kinds = ["ping", "run"] if args.load == "both" else [args.load]
    commit = subprocess.run(
        ["git", "-C", str(BENCH.parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    lines = [
        "# liaison server profile",
        "",
        f"py-spy record (250 Hz, idle samples excluded) of "
        f"`python -m liaison.websocket` under pipelined load (20,000 messages in flight, "
        f"bench/profile_server.py); git {commit or '?'}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
    ]
    for kind in kinds:
        raw = raw_dir / f"liaison-profile-{kind}.txt"
        sent, cpu_us = record(kind, args.duration, "raw", raw)
        table, samples = summarise(raw, args.top)
        what = "`ping`" if kind == "ping" else "no-op `run builtins:abs -1`"
        lines += [
            f"## Load: {what}",
            "",
            f"{sent:,} messages in {args.duration:g} s, {cpu_us:.1f} µs server CPU per "
            f"message (while sampled), {samples:,} samples; raw stacks: {raw}",
            "",
        ]
        lines += [*table, ""]
    if args.svg:
        record("ping", args.duration, "flamegraph", Path(args.svg))
        lines += [f"Flame graph (ping load): {args.svg}", ""]
    text = "\n".join(lines)
    print(text)
    Path(args.output).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
