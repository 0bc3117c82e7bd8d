"""Benchmark liaison against a bare-websockets floor and liaison-py 1.0.1.

    python bench/run.py [--quick] [--skip-baseline] [--record | --output FILE] [--json FILE]

See bench/README.md for what is measured and how to read the table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import inspect
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import instructions
import stdio_rows
from servers import (
    BENCH,
    Server,
    ServerError,
    ServerSpec,
    ensure_baseline,
    floor_spec,
    liaison_spec,
)

import client as C

# --- the table's rows --------------------------------------------------------------------


@dataclass
class Metric:
    key: str
    label: str
    unit: str
    better: str  # "lower" or "higher" (or "" for informational rows)
    target: str = ""
    check: Callable[[float, float], bool] | None = None  # (ours, floor) -> met?
    digits: int = 0
    ratio: bool = True  # False: a liaison/floor ratio means nothing for this row


def ratio_at_most(limit: float) -> Callable[[float, float], bool]:
    return lambda ours, floor: ours <= limit * floor


def ratio_at_least(limit: float) -> Callable[[float, float], bool]:
    return lambda ours, floor: ours >= limit * floor


# --- the JavaScript client (bench/js_client.mjs) -----------------------------------------

JS_CLIENT = BENCH / "js_client.mjs"
JS_DIST = BENCH.parent / "clients" / "js" / "dist" / "node.js"
JS_NA = "needs node and npm run build in clients/js"
# js_client.mjs output key -> row key (the table shows the median)
JS_ROWS = {
    "result_binary": "js_f64_bin_mbs",
    "result_json": "js_f64_json_mbs",
    "args_binary": "js_args_bin_mbs",
    "args_plain": "js_args_plain_mbs",
    "args_json": "js_args_json_mbs",
    "args_json_encode": "js_args_json_encode_mbs",
}


def js_reps(p: C.Params) -> tuple[int, int]:
    """Repetitions of the binary and of the (10x slower) JSON calls."""
    return (3, 2) if p in (C.QUICK, C.BASELINE_QUICK) else (20, 5)


def js_metrics(p: C.Params) -> list[Metric]:
    reps, json_reps = js_reps(p)
    return [
        Metric(
            "js_f64_bin_mbs",
            f"8 MB float64 array to JS client, binary frame → Float64Array (median of {reps})",
            "MB/s",
            "higher",
            ">= 200 MB/s",
            lambda ours, floor: ours >= 200,
        ),
        Metric(
            "js_f64_json_mbs",
            f"8 MB float64 array to JS client, JSON → Array (median of {json_reps})",
            "MB/s",
            "higher",
        ),
        Metric(
            "js_args_bin_mbs",
            f"8 MB Float64Array argument from JS client, binary frame (median of {reps})",
            "MB/s",
            "higher",
        ),
        Metric(
            "js_args_plain_mbs",
            f"8 MB float64 argument from JS client, plain Array (default: raw), echo off "
            f"(median of {reps})",
            "MB/s",
            "higher",
            ">= 60 MB/s",
            lambda ours, floor: ours >= 60,
        ),
        Metric(
            "js_args_json_mbs",
            f"8 MB float64 argument from JS client, plain Array as JSON text "
            f"(binaryNumberArrays: false), echo off (median of {json_reps})",
            "MB/s",
            "higher",
            digits=1,
        ),
        Metric(
            "js_args_json_encode_mbs",
            f"of which the JS client's JSON encoding of that message (median of {json_reps})",
            "MB/s",
            "higher",
            digits=1,
        ),
    ]


async def m_js_client(server: Server, p: C.Params) -> dict[str, Any]:
    """Runs bench/js_client.mjs against the server; the medians of its measurements."""
    node = shutil.which("node")
    if node is None or not JS_DIST.exists():
        raise C.NotSupported(JS_NA)
    if server.spec.key == "baseline":
        raise C.NotSupported("not measured: the JS client speaks this liaison's protocol")
    reps, json_reps = js_reps(p)
    argv = [node, str(JS_CLIENT), server.uri, "--reps", str(reps), "--json-reps", str(json_reps)]
    if server.spec.key == "floor":
        # the floor neither decodes binary frames from clients nor encodes numpy:sum's
        # numpy.float64 (orjson), so it gets the result rows only
        argv += ["--only", "results"]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        stdout, stderr = await proc.communicate()
    finally:
        if proc.returncode is None:  # cancelled by run_group's timeout
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(
            f"js_client.mjs exited with {proc.returncode}: {stderr.decode(errors='replace')}"
        )
    out = json.loads(stdout)
    # the medians go in the table; the best runs only to the log
    done = [f"{k} {out[k]['median_mbs']:.0f}/{out[k]['best_mbs']:.0f}" for k in JS_ROWS if k in out]
    print(f"    JS client MB/s, median/best: {', '.join(done)}", file=sys.stderr)
    return {
        row: out[k]["median_mbs"]
        if k in out
        else C.NotSupported(
            "not measured: the floor decodes no binary frames from clients, and its orjson "
            "cannot encode numpy:sum's numpy.float64"
        )
        for k, row in JS_ROWS.items()
    }


def js_client_header() -> str:
    node = shutil.which("node")
    if node is None or not JS_DIST.exists():
        return f"- JS client rows: n/a ({JS_NA})"
    version = sh([node, "--version"])
    major = int(version.lstrip("v").split(".")[0]) if version.startswith("v") else 0
    try:
        ws = json.loads((BENCH.parent / "clients/js/node_modules/ws/package.json").read_text())
        ws_version = f"ws {ws['version']}"
    except (OSError, ValueError, KeyError):
        ws_version = "ws (not installed)"
    # the client prefers globalThis.WebSocket, which Node has from 22 on
    websocket = "Node's own WebSocket" if major >= 22 else ws_version
    return (
        f"- JS client rows: bench/js_client.mjs, Node {version}, clients/js/dist, {websocket}; "
        "1,048,576 float64 (numpy:ones back, numpy:sum of sin values out)"
    )


# --- the liaison in Pyodide (bench/pyodide_worker.mjs) ------------------------------------

PYODIDE_BENCH = BENCH / "pyodide_worker.mjs"
PYODIDE_DIST = BENCH.parent / "clients" / "js" / "dist" / "pyodide.js"
PYODIDE_NA = "needs node, and npm ci and npm run build in clients/js"
# pyodide_worker.mjs output key -> row key
PYODIDE_ROWS = {
    "start_ms": "pyodide_start_ms",
    "seq_ping_us": "pyodide_seq_ping_us",
    "f64_round_trip_ms": "pyodide_f64_ms",
}
# One run of the script measures both columns (the Pyodide worker and its floor, a bare
# worker echoing postMessage, taking turns); the second server's call takes its half.
_pyodide_halves: dict[str, dict[str, float]] = {}


def pyodide_metrics(p: C.Params) -> list[Metric]:
    return [
        Metric(
            "pyodide_start_ms",
            "Pyodide worker: start to ready (floor: a bare worker's start)",
            "ms",
            "lower",
        ),
        Metric(
            "pyodide_seq_ping_us",
            "Pyodide worker: sequential ping round trip, median (floor: postMessage echo)",
            "µs",
            "lower",
            digits=1,
        ),
        Metric(
            "pyodide_f64_ms",
            "Pyodide worker: 8 MB Float64Array argument and result, median "
            "(floor: the buffer echoed, transferred)",
            "ms",
            "lower",
            digits=1,
        ),
    ]


async def m_pyodide(server: Server, p: C.Params) -> dict[str, Any]:
    """The liaison column: the liaison in Pyodide in a Node worker (no server involved);
    the floor column: a bare echoing worker, from the same run of the script."""
    node = shutil.which("node")
    if node is None or not PYODIDE_DIST.exists():
        raise C.NotSupported(PYODIDE_NA)
    if server.spec.key not in ("liaison", "floor"):
        raise C.NotSupported("not measured: the Pyodide host is this liaison's")
    side = "liaison" if server.spec.key == "liaison" else "floor"
    if side not in _pyodide_halves:
        argv = [node, str(PYODIDE_BENCH)]
        if p in (C.QUICK, C.BASELINE_QUICK):
            argv.append("--quick")
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            stdout, stderr = await proc.communicate()
        finally:
            if proc.returncode is None:  # cancelled by run_group's timeout
                proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(
                f"pyodide_worker.mjs exited with {proc.returncode}: "
                f"{stderr.decode(errors='replace')}"
            )
        out = json.loads(stdout)
        for half in ("liaison", "floor"):
            _pyodide_halves[half] = {row: out[k][half] for k, row in PYODIDE_ROWS.items()}
    return dict(_pyodide_halves.pop(side))


def stdio_metrics(p: C.Params) -> list[Metric]:
    """The stdio transport's rows (bench/stdio_rows.py), beside the WebSocket ones above."""
    return [
        Metric(
            "stdio_seq_ping_median_us",
            "stdio: sequential ping round trip, median (WebSocket: the first row)",
            "µs",
            "lower",
            ratio=False,
        ),
        Metric(
            "stdio_pipe_ping_rate",
            f"stdio: pipelined ping throughput ({p.pipe_n:,} in flight)",
            "msg/s",
            "higher",
            ratio=False,
        ),
        Metric(
            "stdio_payload_ms",
            f"stdio: {p.payload_bytes / 1e6:g} MB string round trip (`run copy:copy`)",
            "ms",
            "lower",
            digits=1,
            ratio=False,
        ),
    ]


def metrics(p: C.Params, rounds: int = 1) -> list[Metric]:
    """The table's rows; ``rounds``: of the start-up measurement."""
    mb = p.payload_bytes / 1e6
    n = p.arange_n
    f64 = n * 8 / 1e6
    large_mb = C.large_json_mb(p.large_n)
    return [
        Metric(
            "seq_ping_median_us",
            "sequential ping round trip, median",
            "µs",
            "lower",
            "<= 1.0x floor",
            ratio_at_most(1.0),
        ),
        Metric("seq_ping_p99_us", "sequential ping round trip, p99", "µs", "lower"),
        Metric("seq_run_median_us", "sequential no-op `run` round trip, median", "µs", "lower"),
        Metric("seq_run_p99_us", "sequential no-op `run` round trip, p99", "µs", "lower"),
        Metric("seq_ping_cpu_us", "server CPU per sequential ping", "µs", "lower", digits=1),
        Metric("seq_run_cpu_us", "server CPU per sequential no-op `run`", "µs", "lower", digits=1),
        Metric(
            "pipe_ping_rate",
            f"pipelined ping throughput ({p.pipe_n:,} in flight)",
            "msg/s",
            "higher",
            ">= 0.8x floor",
            ratio_at_least(0.8),
        ),
        Metric(
            "cpu_per_ping_us",
            "server CPU per pipelined ping",
            "µs",
            "lower",
            "<= 1.5x floor",
            ratio_at_most(1.5),
            1,
        ),
        Metric("cpu_busy_ping_pct", "server CPU busy during pipelined pings", "%", "", ratio=False),
        Metric(
            "instr_per_ping",
            "server instructions per pipelined ping (callgrind)",
            "k",
            "lower",
            "<= 1.5x floor",
            ratio_at_most(1.5),
            1,
        ),
        Metric(
            "instr_per_seq_ping",
            "server instructions per sequential ping (callgrind)",
            "k",
            "lower",
            digits=1,
        ),
        Metric(
            "instr_per_run",
            "server instructions per pipelined no-op `run` (callgrind)",
            "k",
            "lower",
            digits=1,
        ),
        Metric(
            "pipe_run_rate",
            f"pipelined no-op `run` throughput ({p.pipe_n:,} in flight)",
            "msg/s",
            "higher",
        ),
        Metric("cpu_per_run_us", "server CPU per pipelined no-op `run`", "µs", "lower", digits=1),
        Metric("cpu_busy_run_pct", "server CPU busy during pipelined `run`s", "%", "", ratio=False),
        Metric(
            "conc_rate",
            f"{p.conc_clients} concurrent clients x {p.conc_n:,} sequential pings, aggregate",
            "msg/s",
            "higher",
        ),
        Metric(
            "payload_ms",
            f"{mb:g} MB string argument + result round trip",
            "ms",
            "lower",
            "<= 1.0x floor (speed >= floor)",
            ratio_at_most(1.0),
            1,
        ),
        Metric(
            "large_store_ms",
            f"{p.large_n:,}-float argument ({large_mb:.1f} MB of JSON), `store`, echo off",
            "ms",
            "lower",
            digits=1,
        ),
        Metric(
            "large_run_ms",
            f"{p.large_n:,}-float argument ({large_mb:.1f} MB of JSON), `run builtins:len`, "
            "echo off",
            "ms",
            "lower",
            digits=1,
        ),
        Metric(
            "large_run_per_store",
            f"the {p.large_n:,}-float argument's `run` over its `store` (same server, same run)",
            "x",
            "lower",
            "<= 1.3x `store`",
            lambda ours, floor: ours <= 1.3,
            2,
            ratio=False,
        ),
        Metric(
            "arange_json_ms", f"numpy.arange({n:,}) int64 to client, JSON", "ms", "lower", digits=1
        ),
        Metric(
            "arange_bin_ms",
            f"numpy.arange({n:,}) int64 to client, binary frame",
            "ms",
            "lower",
            digits=1,
        ),
        Metric("f64_json_mbs", f"{f64:g} MB float64 array to client, JSON", "MB/s", "higher"),
        Metric(
            "f64_bin_mbs", f"{f64:g} MB float64 array to client, binary frame", "MB/s", "higher"
        ),
        *js_metrics(p),
        *stdio_metrics(p),
        *pyodide_metrics(p),
        Metric(
            "sleep_ping_max_ms",
            f"ping during a {p.sleep_s:g} s command, max",
            "ms",
            "lower",
            "< 5 ms",
            lambda ours, floor: ours < 5,
            2,
        ),
        Metric(
            "sleep_ping_median_ms",
            f"ping during a {p.sleep_s:g} s command, median",
            "ms",
            "lower",
            digits=2,
        ),
        Metric("sleep_command_ms", f"the {p.sleep_s:g} s command's own round trip", "ms", ""),
        Metric(
            "startup_ms",
            f"start-up, spawn to marker (median of {p.startup_reps * rounds})",
            "ms",
            "lower",
            "<= 1.0x floor",
            ratio_at_most(1.0),
        ),
        Metric(
            "first_reply_ms",
            f"start-up, spawn to the first ping reply (median of {p.startup_reps * rounds})",
            "ms",
            "lower",
        ),
        Metric(
            "shutdown_ms",
            f"shutdown, SIGTERM to exit (median of {p.startup_reps * rounds})",
            "ms",
            "lower",
        ),
        Metric("rss_before_mib", "resident memory after warm-up", "MiB", "", digits=1),
        Metric(
            "rss_after_mib",
            f"resident memory after {p.mem_total:,} more messages",
            "MiB",
            "",
            digits=1,
        ),
        Metric(
            "rss_growth_mib",
            f"resident memory growth over {p.mem_total:,} messages",
            "MiB",
            "lower",
            "flat (<= 2 MiB)",
            lambda ours, floor: ours <= 2.0,
            1,
            ratio=False,
        ),
        Metric(
            "rss_ref_growth_mib",
            f"resident memory growth over {p.mem_total:,} reference create/release cycles",
            "MiB",
            "lower",
            "flat (<= 2 MiB)",
            lambda ours, floor: ours <= 2.0,
            1,
            ratio=False,
        ),
        Metric(
            "rss_payload_mib",
            f"resident memory after {p.payload_mem_n:,} round trips of the "
            f"{p.payload_bytes / 1e6:g} MB string",
            "MiB",
            "lower",
            digits=1,
        ),
    ]


# measurement groups: each runs on a fresh server instance
# (name, measurement, metrics it yields, the Params fields its counts come from)
GROUPS: list[tuple[str, Callable[..., Any], list[str], list[str]]] = [
    (
        "sequential",
        C.m_sequential,
        [
            "seq_ping_median_us",
            "seq_ping_p99_us",
            "seq_run_median_us",
            "seq_run_p99_us",
            "seq_ping_cpu_us",
            "seq_run_cpu_us",
        ],
        ["seq_n"],
    ),
    (
        "pipelined",
        C.m_pipelined,
        [
            "pipe_ping_rate",
            "cpu_per_ping_us",
            "cpu_busy_ping_pct",
            "pipe_run_rate",
            "cpu_per_run_us",
            "cpu_busy_run_pct",
        ],
        ["pipe_n", "pipe_reps"],
    ),
    ("concurrent", C.m_concurrent, ["conc_rate"], ["conc_n"]),
    ("payload", C.m_payload, ["payload_ms"], []),
    (
        "large argument",
        C.m_large_argument,
        ["large_store_ms", "large_run_ms", "large_run_per_store"],
        [],
    ),
    ("arrays", C.m_arrays, ["arange_json_ms", "arange_bin_ms", "f64_json_mbs", "f64_bin_mbs"], []),
    ("JS client", m_js_client, list(JS_ROWS.values()), []),
    ("stdio", stdio_rows.m_stdio, stdio_rows.ROWS, ["seq_n", "pipe_n", "pipe_reps"]),
    ("pyodide", m_pyodide, list(PYODIDE_ROWS.values()), []),
    (
        "ping during command",
        C.m_ping_during_command,
        ["sleep_ping_max_ms", "sleep_ping_median_ms", "sleep_command_ms"],
        [],
    ),
    (
        "memory",
        C.m_memory,
        ["rss_before_mib", "rss_after_mib", "rss_growth_mib"],
        ["mem_total", "mem_batch"],
    ),
    ("memory, large messages", C.m_payload_memory, ["rss_payload_mib"], []),
    (
        "memory, references",
        C.m_reference_memory,
        ["rss_ref_growth_mib"],
        ["mem_total", "mem_batch"],
    ),
]


@dataclass
class Cell:
    value: float | None = None
    status: str = "ok"  # ok | fails | n/a | skipped
    reason: str = ""


@dataclass
class Results:
    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)

    def set(self, metric: str, server: str, cell: Cell) -> None:
        self.cells.setdefault(metric, {})[server] = cell

    def get(self, metric: str, server: str) -> Cell:
        return self.cells.get(metric, {}).get(server, Cell(status="skipped"))


def short(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return " ".join(text.split())[:300]


def record(
    res: Results,
    spec: ServerSpec,
    server: Server,
    keys: list[str],
    outcome: dict[str, Any] | BaseException,
    p: C.Params,
    note: str,
) -> None:
    """Store a measurement's values, or its failure, in ``res``."""
    if isinstance(outcome, C.NotSupported):
        for k in keys:
            res.set(k, spec.key, Cell(status="n/a", reason=str(outcome)))
    elif isinstance(outcome, BaseException):
        reason = (
            short(outcome)
            if not isinstance(outcome, (asyncio.TimeoutError, TimeoutError))
            else f"no answer within {p.timeout_s:g} s"
        )
        if not server.alive():
            assert server.proc is not None
            reason += (
                f" (server died: status {server.proc.returncode}; "
                f"stderr: {server.stderr_tail(300)!r})"
            )
        for k in keys:
            res.set(k, spec.key, Cell(status="fails", reason=reason))
    else:
        for k in keys:
            v = outcome.get(k)
            if isinstance(v, C.NotSupported):
                res.set(k, spec.key, Cell(status="n/a", reason=str(v)))
            elif v is None:
                res.set(k, spec.key, Cell(status="fails", reason="not measured"))
            else:
                res.set(k, spec.key, Cell(float(v), reason=note))


async def interleave(
    measurements: dict[str, C.Steps], timeout_s: dict[str, float]
) -> dict[str, dict[str, Any] | BaseException]:
    """Run several servers' measurements block by block, taking turns (ABBAAB...), so
    that every server is measured under the same conditions; the result (or exception)
    of each. A slow or failing server does not stop the others."""
    outcomes: dict[str, dict[str, Any] | BaseException] = {}
    active = list(measurements)
    turn = 0
    while active:
        for key in list(active) if turn % 2 == 0 else active[::-1]:  # a copy: see remove
            steps = measurements[key]
            try:
                step = await asyncio.wait_for(anext(steps), timeout_s[key])
            except StopAsyncIteration:
                outcomes.setdefault(key, RuntimeError("the measurement yielded no result"))
            except Exception as err:
                if os.environ.get("BENCH_DEBUG"):
                    traceback.print_exc()
                outcomes[key] = err
                with contextlib.suppress(Exception):  # it may have ended with the error
                    await steps.aclose()
            else:
                if step is not None:
                    outcomes[key] = step
                continue
            active.remove(key)
        turn += 1
    return outcomes


def run_group(
    runs: list[tuple[ServerSpec, C.Params, str]],
    fn: Callable[..., Any],
    keys: list[str],
    res: Results,
) -> None:
    """Measure the servers of ``runs`` (spec, counts, note) with ``fn``, each on a fresh
    instance. Step-wise measurements (async generators) run side by side, interleaved;
    others one server after the other, each alone."""
    if not inspect.isasyncgenfunction(fn) and len(runs) > 1:
        for run in runs:
            run_group([run], fn, keys, res)
        return
    started: dict[str, tuple[ServerSpec, Server, C.Params, str]] = {}
    try:
        for spec, p, note in runs:
            try:
                started[spec.key] = (spec, Server(spec).start(), p, note)
            except ServerError as err:
                failed = Cell(status="fails", reason=f"server did not start: {err}")
                for k in keys:
                    res.set(k, spec.key, failed)
        if inspect.isasyncgenfunction(fn):
            outcomes = asyncio.run(
                interleave(
                    {key: fn(server, p) for key, (_, server, p, _) in started.items()},
                    {key: p.timeout_s for key, (_, _, p, _) in started.items()},
                )
            )
        else:
            outcomes = {}
            for key, (_, server, p, _) in started.items():  # one server
                try:
                    outcomes[key] = asyncio.run(asyncio.wait_for(fn(server, p), p.timeout_s))
                except Exception as err:
                    if os.environ.get("BENCH_DEBUG"):
                        traceback.print_exc()
                    outcomes[key] = err
        for key, (spec, server, p, note) in started.items():
            record(res, spec, server, keys, outcomes[key], p, note)
    finally:
        for _, server, _, _ in started.values():
            server.stop()


# Groups measured in alternating rounds (--rounds): the noisy latency and throughput ones.
REPEATED_GROUPS = {"sequential", "pipelined", "concurrent", "payload", "large argument"}
# At least this many rounds for groups that take ~1 s a round: the 2 MB round trip's
# ratio moves by ±10% from one pair of fresh processes to the next, even interleaved.
MIN_ROUNDS = {"payload": 7}


def merge_rounds(rounds: list[Results], keys: list[str], servers: list[str], res: Results) -> None:
    """The median of each measurement over the rounds it succeeded in; else the failure."""
    for key in keys:
        for server in servers:
            cells = [r.cells[key][server] for r in rounds if server in r.cells.get(key, {})]
            good = [c for c in cells if c.status == "ok" and c.value is not None]
            if len(good) == len(cells) and good:
                values = [c.value for c in good if c.value is not None]
                res.set(key, server, Cell(statistics.median(values), reason=good[0].reason))
            elif cells:
                res.set(key, server, next(c for c in cells if c.status != "ok"))


def run_instructions(
    spec: ServerSpec, quick: bool, res: Results, log: Callable[[str], None]
) -> None:
    """Instructions per message under callgrind (bench/instructions.py): full runs only."""
    keys = {"ping": "instr_per_ping", "ping-seq": "instr_per_seq_ping", "run": "instr_per_run"}
    for kind, key in keys.items():
        if quick:
            res.set(key, spec.key, Cell(status="n/a", reason="full runs only (~1 min a server)"))
        elif instructions.VALGRIND is None:
            res.set(key, spec.key, Cell(status="n/a", reason="needs valgrind"))
        elif spec.key == "baseline":
            res.set(key, spec.key, Cell(status="n/a", reason="not measured: ~40x slower"))
        else:
            log(f"instructions ({kind}): {spec.title}")
            try:
                per_message = instructions.instructions_per_message(spec, kind)
                res.set(key, spec.key, Cell(per_message / 1e3))
            except Exception as err:
                res.set(key, spec.key, Cell(status="fails", reason=short(err)))


STARTUP_KEYS = ["startup_ms", "first_reply_ms", "shutdown_ms"]


def run_startups(runs: list[tuple[ServerSpec, C.Params]], rounds: int, res: Results) -> None:
    """Start each server ``startup_reps * rounds`` times, taking turns (ABBA...) so
    that drift on the machine hits all alike: spawn to marker, spawn to the first ping
    reply (connect, handshake, ping), SIGTERM to exit."""
    times: dict[str, dict[str, list[float]]] = {
        spec.key: {k: [] for k in STARTUP_KEYS} for spec, _ in runs
    }
    failed: dict[str, str] = {}
    reps = max(p.startup_reps for _, p in runs) * rounds
    for rep in range(reps):
        for spec, p in runs if rep % 2 == 0 else runs[::-1]:
            if spec.key in failed or rep >= p.startup_reps * rounds:
                continue
            try:
                server = Server(spec).start()
                try:
                    # the ping also proves it is really serving before we stop it
                    asyncio.run(asyncio.wait_for(_ping_once(server), 10))
                    first_reply = time.perf_counter() - server.spawned_at
                finally:
                    down = server.stop()
            except Exception as err:
                failed[spec.key] = short(err)
                continue
            mine = times[spec.key]
            mine["startup_ms"].append(server.startup_s * 1e3)
            mine["first_reply_ms"].append(first_reply * 1e3)
            mine["shutdown_ms"].append(down * 1e3)
    for spec, _ in runs:
        for key, values in times[spec.key].items():
            if spec.key in failed:
                res.set(key, spec.key, Cell(status="fails", reason=failed[spec.key]))
            elif not all(math.isfinite(v) for v in values):
                res.set(key, spec.key, Cell(status="fails", reason="did not exit within 6 s"))
            else:
                res.set(key, spec.key, Cell(statistics.median(values)))


async def _ping_once(server: Server) -> None:
    c = await C.Client.open(server)
    try:
        await C.check_ping(c)
    finally:
        await c.close()


# --- the report ------------------------------------------------------------------------


def fmt(v: float, digits: int) -> str:
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if digits == 0 and abs(v) < 10:
        digits = 1
    return f"{v:,.{digits}f}"


def render(
    p: C.Params, rounds: int, res: Results, servers: list[ServerSpec], header: list[str]
) -> str:
    titles = {"liaison": "liaison", "floor": "floor", "baseline": "liaison-py 1.0.1"}
    lines = ["# Liaison benchmark results", ""]
    lines += header
    lines += [
        "",
        "| metric | unit | liaison | floor | liaison-py 1.0.1 | liaison/floor | target | met |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    notes: list[str] = []

    def note(text: str) -> str:
        if text not in notes:
            notes.append(text)
        return f"[{notes.index(text) + 1}]"

    for m in metrics(p, rounds):
        row = [m.label, m.unit]
        for key in ("liaison", "floor", "baseline"):
            c = res.get(m.key, key)
            if c.status == "ok" and c.value is not None:
                row.append(
                    fmt(c.value, m.digits)
                    + (f" {note(f'{titles[key]}: {c.reason}')}" if c.reason else "")
                )
            elif c.status == "skipped":
                row.append("skipped")
            else:
                row.append(f"{c.status} {note(f'{titles[key]}: {c.reason}')}")
        ours, floor = res.get(m.key, "liaison"), res.get(m.key, "floor")
        both = ours.status == "ok" and floor.status == "ok" and floor.value
        row.append(f"{ours.value / floor.value:.2f}" if both and m.ratio else "-")
        row.append(
            m.target
            or (
                "lower is better"
                if m.better == "lower"
                else "higher is better"
                if m.better == "higher"
                else ""
            )
        )
        if m.check is None:
            row.append("")
        elif ours.status in ("n/a", "skipped"):
            row.append("-")  # not measured here (quick run, missing tool, --groups): no verdict
        elif ours.status != "ok":
            row.append("no")
        elif "floor" in m.target:
            row.append(("yes" if m.check(ours.value, floor.value) else "**no**") if both else "-")
        else:
            row.append("yes" if m.check(ours.value, 0.0) else "**no**")
        lines.append("| " + " | ".join(row) + " |")
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"{i + 1}. {text}" for i, text in enumerate(notes)]
    lines += [
        "",
        "liaison/floor is the ratio of the two values as shown (for msg/s and MB/s "
        "higher is better, for times and CPU lower is better). See bench/README.md.",
        "",
    ]
    return "\n".join(lines)


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return "?"


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_header(
    args: argparse.Namespace,
    p: C.Params,
    started: float,
    load_before: str,
    baseline: ServerSpec | None,
) -> list[str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    repo = BENCH.parent
    commit = sh(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"]) or "no commit"
    dirty = sh(["git", "-C", str(repo), "status", "--porcelain", "--", "src"])
    base_py = (
        sh([baseline.python, "-c", "import platform; print(platform.python_version())"])
        if baseline
        else ""
    )
    mode = "quick (smoke run, small counts: not for comparison)" if args.quick else "full"
    out = [
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; "
        f"mode: {mode}; run time {time.perf_counter() - started:.0f} s",
        f"- machine: `{sh(['uname', '-a'])}`",
        f"- CPU: {cpu}, {os.cpu_count()} cores; load average before/after: {load_before} / "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- Python {platform.python_version()} ({sys.executable}); websockets "
        f"{version('websockets')}, orjson {version('orjson')}, numpy {version('numpy')}",
        f"- liaison: liaison-backend {version('liaison-backend')}, git {commit}"
        f"{' (src/ has uncommitted changes)' if dirty else ''}",
        f"- floor: bench/floor_server.py (websockets {version('websockets')} asyncio server, "
        f"orjson, no compression)",
    ]
    if baseline:
        out.append(
            f"- baseline: liaison-py 1.0.1 in bench/.venvs/liaison-py (Python {base_py}; "
            "validates each command with jsonschema, stdlib json)"
        )
    else:
        out.append("- baseline: skipped (--skip-baseline)")
    out.append(
        f"- client: one Python process, websockets asyncio client (no compression), orjson; "
        f"counts: {p.seq_n:,} sequential, {p.pipe_n:,} pipelined x {p.pipe_reps}, "
        f"{p.conc_clients}x{p.conc_n:,} concurrent, {p.payload_reps} payload and "
        f"{p.array_reps} array repetitions, {p.mem_total:,} messages for memory"
    )
    out.append(js_client_header())
    out.append(
        "- sequential, pipelined, concurrent and payload rows: the servers run side by side "
        f"and take turns block by block ({C.SEQ_BLOCK} sequential round trips, one "
        "pipelined or payload repetition, "
        f"{C.CONC_BLOCK} pings per concurrent client)"
        + (
            f"; median of {args.rounds} such rounds ({MIN_ROUNDS['payload']} for payload), "
            "each with fresh servers (liaison-py: one round)"
            if not args.quick and args.rounds > 1
            else ""
        )
        + "; start-up rows: the servers take turns, one spawn each"
    )
    out.append(
        "- targets (liaison vs floor): server CPU per ping <= 1.5x; pipelined throughput "
        ">= 0.8x; sequential round trip <= 1.0x; 2 MB payload round trip at least as "
        "fast; ping during a 1 s command < 5 ms; start-up no slower; memory flat over "
        "100k messages; a 1,000,000-float argument's `run` <= 1.3x its `store`"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smoke run with small counts (CI)")
    ap.add_argument(
        "--skip-baseline", action="store_true", help="do not install or run liaison-py 1.0.1"
    )
    ap.add_argument(
        "--output",
        help="markdown file to write (default bench/out/RESULTS.md, with --quick "
        "bench/out/RESULTS-quick.md; bench/out/ is gitignored)",
    )
    ap.add_argument(
        "--record",
        action="store_true",
        help="write the tracked bench/RESULTS.md (a full run to keep in the repository)",
    )
    ap.add_argument("--json", help="also write the raw results as JSON to this file")
    ap.add_argument("--only", help="comma-separated servers to run (liaison,floor,baseline)")
    ap.add_argument(
        "--groups",
        help="comma-separated measurement groups to run (default all): "
        + ", ".join([name for name, *_ in GROUPS] + ["instructions", "start-up"]),
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of the latency and throughput groups, each with fresh servers "
        "(full runs; default 3)",
    )
    args = ap.parse_args(argv)
    p = C.QUICK if args.quick else C.FULL
    if args.record and (args.output or args.quick):
        ap.error("--record writes bench/RESULTS.md from a full run: no --output, no --quick")
    if args.record:
        args.output = str(BENCH / "RESULTS.md")
    elif args.output is None:
        # Out of the tracked tree: a plain run must not rewrite the recorded results.
        (BENCH / "out").mkdir(exist_ok=True)
        args.output = str(BENCH / "out" / ("RESULTS-quick.md" if args.quick else "RESULTS.md"))
    started = time.perf_counter()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f}s] {msg}", file=sys.stderr, flush=True)

    only = set(args.only.split(",")) if args.only else {"liaison", "floor", "baseline"}
    specs: list[ServerSpec] = []
    if "liaison" in only:
        specs.append(liaison_spec())
    if "floor" in only:
        specs.append(floor_spec())
    baseline: ServerSpec | None = None
    res = Results()
    if not args.skip_baseline and "baseline" in only:
        try:
            baseline = ensure_baseline(log)
            specs.append(baseline)
        except Exception as err:
            log(f"baseline unavailable: {short(err)}")
            for m in metrics(p):
                res.set(
                    m.key,
                    "baseline",
                    Cell(status="fails", reason=f"could not install: {short(err)}"),
                )

    rounds = 1 if args.quick else args.rounds
    everything = [name for name, *_ in GROUPS] + ["instructions", "start-up"]
    groups = set(args.groups.split(",")) if args.groups else set(everything)
    if groups - set(everything):
        ap.error(f"unknown groups: {', '.join(sorted(groups - set(everything)))}")
    for name, fn, keys, fields in GROUPS:
        if name not in groups:
            continue
        # Latency and throughput swing by 20-40% from one server start to the next on a
        # shared VM: over several rounds, each with fresh servers, the median counts; and
        # within a round the servers run side by side, taking turns block by block.
        repeated = name in REPEATED_GROUPS and rounds > 1
        group_rounds = max(rounds, MIN_ROUNDS.get(name, 0)) if repeated else 1
        per_round: list[Results] = []
        for round_index in range(group_rounds):
            round_res = Results() if repeated else res
            per_round.append(round_res)
            runs = []
            for spec in specs:
                if repeated and round_index > 0 and spec.key == "baseline":
                    continue  # liaison-py takes ~50x longer; one round is plenty
                sp = C.params_for(spec.key, args.quick)
                differs = [f for f in fields if getattr(sp, f) != getattr(p, f)]
                note = (
                    (
                        "measured with smaller counts ("
                        + ", ".join(C.COUNT_WORDS[f].format(getattr(sp, f)) for f in differs)
                        + ") to keep the run short"
                    )
                    if differs
                    else ""
                )
                runs.append((spec, sp, note))
            suffix = f" (round {round_index + 1} of {group_rounds})" if repeated else ""
            log(f"{name}: {', '.join(spec.title for spec, _, _ in runs)}{suffix}")
            run_group(runs, fn, keys, round_res)
        if repeated:
            merge_rounds(per_round, keys, [spec.key for spec in specs], res)
    for spec in specs if "instructions" in groups else []:
        run_instructions(spec, args.quick, res, log)
    if "start-up" in groups:
        runs_startup = [(spec, C.params_for(spec.key, args.quick)) for spec in specs]
        log(f"start-up: {', '.join(spec.title for spec in specs)}")
        run_startups(runs_startup, rounds, res)

    report = render(p, rounds, res, specs, machine_header(args, p, started, load_before, baseline))
    print(report)
    output = Path(args.output)
    # bench/memory_cases.py's section (it is not part of this run): kept as it was.
    previous = output.read_text() if output.exists() else ""
    _, section, rest = previous.partition("\n## Memory bounds (bench/memory_cases.py)")
    if section:
        report = report.rstrip("\n") + "\n" + section + rest
    output.write_text(report)
    log(f"wrote {args.output}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {m: {s: vars(c) for s, c in row.items()} for m, row in res.cells.items()}, indent=1
            )
        )
    ours_failed = [
        k for k, row in res.cells.items() if row.get("liaison") and row["liaison"].status == "fails"
    ]
    if ours_failed and "liaison" in only:
        log(f"liaison failed {len(ours_failed)} measurements: {', '.join(ours_failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
