"""Sequential round trips of server variants, same run: the floor and liaison builds.

    python bench/compare_sequential.py [--payload] ROUNDS VARIANT...

VARIANT is ``floor``, ``liaison``, or ``liaison:NAME=VALUE,...`` (environment of that
server: ``liaison:PYTHONPATH=/path/to/other/checkout/src`` runs another build). Each
round starts every variant fresh and runs bench/client.py's sequential measurement,
the variants taking turns every 250 round trips; prints the medians over the rounds
of the round trip and of the server CPU per call (SEQ_N round trips each, default 5,000).
With ``--payload``, the 2 MB round trip instead (bench/client.py ``m_payload``, 15 a
round, taking turns one round trip at a time): each round's median, and their median.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
from collections.abc import Callable
from typing import Any

import servers as S

import client as C


def spec(variant: str) -> S.ServerSpec:
    if variant == "floor":
        return S.floor_spec()
    _, _, assignments = variant.partition(":")
    server = S.liaison_spec()
    server.key = variant
    server.env = dict(a.split("=", 1) for a in assignments.split(",") if a)
    return server


async def one_round(
    variants: list[str], p: C.Params, measure: Callable[[S.Server, C.Params], C.Steps]
) -> dict[str, Any]:
    started = {v: S.Server(spec(v)).start() for v in variants}
    try:
        steps = {v: measure(started[v], p) for v in variants}
        out: dict[str, Any] = {}
        active, turn = list(variants), 0
        while active:
            for v in list(active if turn % 2 == 0 else active[::-1]):
                try:
                    step = await anext(steps[v])
                except StopAsyncIteration:
                    active.remove(v)
                    continue
                if step is not None:
                    out[v] = step
            turn += 1
        return out
    finally:
        for server in started.values():
            server.stop()


def main() -> None:
    args = sys.argv[1:]
    if args[0] == "--payload":
        rounds, variants = int(args[1]), args[2:]
        p = C.Params(payload_reps=15)
        results = [asyncio.run(one_round(variants, p, C.m_payload)) for _ in range(rounds)]
        for v in variants:
            ms = [r[v]["payload_ms"] for r in results]
            print(v.ljust(40), "2 MB round trip ms:", *(f"{x:.1f}" for x in ms),
                  f"median {statistics.median(ms):.2f}")  # fmt: skip
        return
    rounds, variants = int(args[0]), args[1:]
    p = C.Params(seq_n=int(os.environ.get("SEQ_N", "5000")))
    results = [asyncio.run(one_round(variants, p, C.m_sequential)) for _ in range(rounds)]
    keys = ["seq_ping_median_us", "seq_run_median_us", "seq_ping_cpu_us", "seq_run_cpu_us"]
    print("variant".ljust(40), "ping µs   run µs   ping CPU µs   run CPU µs")
    for v in variants:
        cells = [statistics.median(r[v][k] for r in results) for k in keys]
        print(v.ljust(40), "  ".join(f"{c:9.1f}" for c in cells))


if __name__ == "__main__":
    main()
