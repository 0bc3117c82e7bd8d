"""The one client used against every server, and the measurements it makes.

Every measurement is an ``async`` function ``(server, params) -> {metric: value}`` that
opens its own connections (websockets asyncio client, no compression, no size limit, no
keepalive pings) and raises on any failure: ``NotSupported`` for a feature the server
does not have (reported as n/a), anything else is reported as "fails".

The latency and throughput measurements are async generators instead: they yield
``None`` after each block of work and their ``{metric: value}`` last, so that run.py can
interleave the blocks of several servers running side by side (``run.interleave``).
"""

from __future__ import annotations

import asyncio
import functools
import socket
import statistics
import struct
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import numpy
import orjson
import websockets
from servers import Server
from websockets.asyncio.client import connect
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

perf = time.perf_counter


class NotSupported(Exception):
    """The server lacks the feature this measurement needs (reported as n/a)."""


class CommandError(Exception):
    """The server answered with an error reply."""


@dataclass(frozen=True)
class Params:
    seq_n: int = 5000
    pipe_n: int = 20_000
    pipe_reps: int = 3
    pipe_warmup: int = 2000
    conc_clients: int = 8
    conc_n: int = 2000
    payload_bytes: int = 2_000_000
    payload_reps: int = 5
    large_n: int = 1_000_000
    large_reps: int = 8
    arange_n: int = 1_000_000
    array_reps: int = 5
    sleep_s: float = 1.0
    startup_reps: int = 5
    mem_total: int = 100_000
    mem_batch: int = 5000
    payload_mem_n: int = 300
    timeout_s: float = 90.0


FULL = Params()
# liaison-py 1.0.1 handles ~1,000 messages/s: smaller counts keep the run short
BASELINE_FULL = replace(
    FULL,
    seq_n=2000,
    pipe_n=5000,
    pipe_reps=1,
    pipe_warmup=500,
    conc_n=500,
    mem_total=10_000,  # and as many again to warm up: ~40 s at liaison-py's pace
    mem_batch=2000,
)
QUICK = Params(
    seq_n=300,
    pipe_n=2000,
    pipe_reps=1,
    conc_n=150,
    payload_reps=1,
    large_n=100_000,
    large_reps=2,
    arange_n=100_000,
    array_reps=1,
    sleep_s=0.5,
    startup_reps=2,
    mem_total=10_000,
    mem_batch=2000,
    payload_mem_n=10,
    timeout_s=30.0,
    pipe_warmup=500,
)
BASELINE_QUICK = replace(
    QUICK, seq_n=200, pipe_n=1000, pipe_warmup=200, conc_n=100, mem_total=4000, mem_batch=1000
)


def params_for(server_key: str, quick: bool) -> Params:
    if server_key == "baseline":
        return BASELINE_QUICK if quick else BASELINE_FULL
    return QUICK if quick else FULL


COUNT_WORDS = {
    "seq_n": "{:,} sequential round trips",
    "pipe_n": "{:,} in flight",
    "pipe_reps": "{} repetition(s)",
    "conc_n": "{:,} pings per client",
    "mem_total": "{:,} messages",
    "mem_batch": "batches of {:,}",
}

# A no-op that goes through the ordinary (ordered) command path of every server.
NOOP = ("run", ["builtins:abs", -1])
PING = ("ping", [])
# A small object that is not JSON: the reference rows measure the bookkeeping, not the
# allocator (5,000 live random.Random objects, 2.5 kB each, fragment the heap by ~5 MiB).
REF_TARGET = ["builtins:object"]
REF_BATCH = 500


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Client:
    def __init__(self, ws: Any, dialect: str):
        self.ws = ws
        self.dialect = dialect  # server key: "liaison", "floor" or "baseline"
        self.next_id = 0

    @classmethod
    async def open(cls, server: Server) -> Client:
        ws = await connect(
            server.uri,
            compression=None,
            max_size=None,
            max_queue=None,
            ping_interval=None,
            proxy=None,
            open_timeout=10,
            close_timeout=2,
        )
        return cls(ws, server.spec.key)

    async def close(self) -> None:
        await self.ws.close()

    def encode(
        self, command: str, args: list | None = None, kwargs: dict | None = None, **extra: Any
    ) -> bytes:
        self.next_id += 1
        cmd: dict[str, Any] = {"command": command}
        if args:
            cmd["args"] = args
        if kwargs:
            cmd["kwargs"] = kwargs
        return orjson.dumps({"command": cmd, "id": self.next_id, **extra})

    async def send(self, raw: bytes) -> None:
        await self.ws.send(raw, text=True)

    async def recv(self, binary: bool = False) -> dict:
        """The next message. ``binary``: it may be a binary frame (told apart by the frame
        type, at the cost of decoding text frames to str)."""
        if binary:
            data = await self.ws.recv()  # str for a text frame, bytes for a binary one
            return orjson.loads(data) if isinstance(data, str) else decode_binary(data)
        return orjson.loads(await self.ws.recv(decode=False))

    async def call(
        self, command: str, args: list | None = None, kwargs: dict | None = None, **extra: Any
    ) -> Any:
        await self.send(self.encode(command, args, kwargs, **extra))
        return result_of(await self.recv())


def reply_id(reply: dict) -> Any:
    if "id" in reply:
        return reply["id"]
    evt = reply.get("evt")
    return evt.get("id") if isinstance(evt, dict) else None


def result_of(reply: dict) -> Any:
    if "response" in reply:
        return reply["response"]
    exc = reply.get("exception")
    if exc:
        raise CommandError(f"{exc.get('type')}: {exc.get('message')}")
    err = reply.get("error")
    if isinstance(err, list) and err:
        raise CommandError(str(err[-1]).strip())
    raise CommandError(f"unexpected reply {str(reply)[:200]}")


def decode_binary(frame: bytes) -> dict:
    """Decode a binary reply frame (docs/protocol.md, "Binary frames")."""
    (length,) = struct.unpack_from("<I", frame, 0)
    reply = orjson.loads(memoryview(frame)[4 : 4 + length])
    buffers = reply.get("buffers", [])

    def fill(obj: Any) -> Any:
        if isinstance(obj, dict):
            if "$buffer" in obj:
                offset, nbytes = buffers[obj["$buffer"]]
                if obj.get("dtype") == "bytes":
                    return frame[offset : offset + nbytes]
                dtype = numpy.dtype(obj["dtype"]).newbyteorder("<")
                arr = numpy.frombuffer(
                    frame, dtype=dtype, count=nbytes // dtype.itemsize, offset=offset
                )
                return arr.reshape(obj.get("shape", [-1]))
            return {k: fill(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [fill(v) for v in obj]
        return obj

    if "response" in reply:
        reply["response"] = fill(reply["response"])
    reply["$binary"] = True
    return reply


async def check_ping(c: Client) -> None:
    r = await c.call("ping")
    if r != "pong":
        raise CommandError(f"ping answered {r!r}")


# --- measurements ------------------------------------------------------------------------


# Interleaving is only useful if a block is short next to how fast conditions on the
# machine drift (seconds): a block of 250 sequential round trips takes ~70 ms.
SEQ_BLOCK = 250
CONC_BLOCK = 250


def blocks(n: int, size: int) -> list[int]:
    """``n`` split into blocks of at most ``size``."""
    return [min(size, n - start) for start in range(0, n, size)]


Steps = AsyncIterator[dict[str, Any] | None]


async def m_sequential(server: Server, p: Params) -> Steps:
    """Sequential round trips: ping, then a no-op `run` through the command path."""
    c = await Client.open(server)
    try:
        out = {}
        for key, (cmd, args) in (("ping", PING), ("run", NOOP)):
            for _ in range(100):  # warm-up
                await c.send(c.encode(cmd, args))
                result_of(await c.recv())
            times: list[float] = []
            cpu_ns = 0  # the server's, over the blocks (only this server is busy then)
            for size in blocks(p.seq_n, SEQ_BLOCK):
                raws = [c.encode(cmd, args) for _ in range(size)]
                cpu_before = server.cpu_ns()
                for raw in raws:
                    t0 = perf()
                    await c.send(raw)
                    reply = await c.recv()
                    times.append(perf() - t0)
                    result_of(reply)
                cpu_ns += server.cpu_ns() - cpu_before
                yield None
            out[f"seq_{key}_median_us"] = statistics.median(times) * 1e6
            out[f"seq_{key}_p99_us"] = percentile(times, 0.99) * 1e6
            out[f"seq_{key}_cpu_us"] = cpu_ns / len(times) / 1e3
        yield out
    finally:
        await c.close()


class LeanClient:
    """A blocking client for the pipelined firehose: the websockets sans-I/O protocol
    (``websockets.client.ClientProtocol``) over a plain socket, one thread sending the
    pre-framed messages while the caller reads. The asyncio client costs ~20 µs of client
    CPU per message, more than the floor server spends, so with it the pipelined test
    would measure the client; this one costs about half that."""

    def __init__(self, server: Server, timeout: float):
        self.uri = parse_uri(server.uri)
        self.proto = ClientProtocol(self.uri, max_size=None)
        self.sock = socket.create_connection((self.uri.host, self.uri.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.proto.send_request(self.proto.connect())
        self._flush()
        while True:
            self._feed()
            events = self.proto.events_received()
            if events:
                if not isinstance(events[0], Response) or events[0].status_code != 101:
                    raise CommandError(f"handshake failed: {events[0]}")
                break
        self.next_id = 0

    def _flush(self) -> None:
        self.sock.sendall(b"".join(self.proto.data_to_send()))

    def _feed(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise CommandError(f"{self._closed_reason()} (EOF)")
        self.proto.receive_data(data)

    def _closed_reason(self) -> str:
        rcvd = self.proto.close_rcvd
        return (
            f"server closed the connection ({rcvd.code} {rcvd.reason!r})"
            if rcvd
            else ("connection closed")
        )

    def frames(self, messages: list[bytes]) -> bytes:
        if self.proto.state is not State.OPEN:
            raise CommandError(self._closed_reason())
        for m in messages:
            self.proto.send_text(m)
        return b"".join(self.proto.data_to_send())

    def pipelined(self, wire: bytes, n: int) -> tuple[float, dict | None, int]:
        """Write `wire` (n framed messages) from a thread while reading n replies.
        Returns (seconds, last reply, number of error replies)."""
        failure: list[BaseException] = []

        def sender() -> None:
            try:
                self.sock.sendall(wire)
            except BaseException as err:  # reported below
                failure.append(err)

        t0 = perf()
        thread = threading.Thread(target=sender, daemon=True)
        thread.start()
        got = errors = 0
        last = None
        while got < n:
            self._feed()
            for frame in self.proto.events_received():
                if frame.opcode is Opcode.TEXT:
                    last = orjson.loads(frame.data)
                    got += 1
                    if "response" not in last:
                        errors += 1
                elif frame.opcode is Opcode.CLOSE:
                    raise CommandError(f"{self._closed_reason()} after {got} of {n} replies")
        t1 = perf()
        thread.join()
        if failure:
            raise CommandError(f"sending failed: {short_err(failure[0])}")
        return t1 - t0, last, errors

    def close(self) -> None:
        try:
            self.proto.send_close()
            self._flush()
        except OSError:
            pass
        self.sock.close()


def short_err(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def _pipelined(c: LeanClient, server: Server, cmd: str, args: list, n: int) -> tuple[float, float]:
    """Send n messages, then read n replies. Returns (wall s, server CPU s)."""
    first_id = c.next_id + 1
    messages = []
    for i in range(first_id, first_id + n):
        command: dict[str, Any] = {"command": cmd}
        if args:
            command["args"] = args
        messages.append(orjson.dumps({"command": command, "id": i}))
    c.next_id += n
    wire = c.frames(messages)
    cpu0 = server.cpu_seconds()
    wall, last, errors = c.pipelined(wire, n)
    cpu1 = server.cpu_seconds()
    if errors:
        raise CommandError(
            f"{errors} of {n} pipelined {cmd} replies were errors, e.g. {str(last)[:200]}"
        )
    if cmd != "ping" and reply_id(last) != first_id + n - 1:
        raise CommandError(f"last reply has id {reply_id(last)}, expected {first_id + n - 1}")
    return wall, cpu1 - cpu0


async def m_pipelined(server: Server, p: Params) -> Steps:
    """p.pipe_n messages in flight (send all, then read all), p.pipe_reps times each,
    for ping and for the no-op run; server CPU from /proc over the same window."""
    c = LeanClient(server, p.timeout_s)
    try:
        out = {}
        for key, (cmd, args) in (("ping", PING), ("run", NOOP)):
            _pipelined(c, server, cmd, args, min(p.pipe_warmup, p.pipe_n))
            walls, cpus = [], []
            for _ in range(p.pipe_reps):
                wall, cpu = _pipelined(c, server, cmd, args, p.pipe_n)
                walls.append(wall)
                cpus.append(cpu)
                yield None
            out[f"pipe_{key}_rate"] = p.pipe_n / statistics.median(walls)
            out[f"cpu_per_{key}_us"] = sum(cpus) / (p.pipe_n * p.pipe_reps) * 1e6
            out[f"cpu_busy_{key}_pct"] = sum(cpus) / sum(walls) * 100
        yield out
    finally:
        c.close()


async def m_concurrent(server: Server, p: Params) -> Steps:
    """p.conc_clients connections, each p.conc_n sequential pings, all at once (in
    blocks of CONC_BLOCK pings per client)."""
    clients = [await Client.open(server) for _ in range(p.conc_clients)]
    try:
        for c in clients:
            await check_ping(c)

        async def one(c: Client, mine: list[bytes]) -> None:
            for raw in mine:
                await c.send(raw)
                result_of(await c.recv())

        wall = 0.0
        for size in blocks(p.conc_n, CONC_BLOCK):
            raws = [[c.encode("ping") for _ in range(size)] for c in clients]
            t0 = perf()
            await asyncio.gather(*(one(c, r) for c, r in zip(clients, raws, strict=True)))
            wall += perf() - t0
            yield None
        # all clients stay connected until every one is done (liaison-py 1.0.1 stops
        # serving everyone when one client disconnects)
        yield {"conc_rate": p.conc_clients * p.conc_n / wall}
    finally:
        for c in clients:
            await c.close()


def payload_string(p: Params) -> str:
    """The p.payload_bytes ASCII string the payload measurements send."""
    return (b"0123456789abcdef" * (p.payload_bytes // 16 + 1))[: p.payload_bytes].decode()


async def m_payload(server: Server, p: Params) -> Steps:
    """A p.payload_bytes string through an identity function (`run copy:copy s`)."""
    c = await Client.open(server)
    try:
        await check_ping(c)
        payload = payload_string(p)
        times = []
        for _ in range(p.payload_reps):
            raw = c.encode("run", ["copy:copy", payload])
            t0 = perf()
            await c.send(raw)
            reply = await c.recv()
            t1 = perf()
            r = result_of(reply)
            if r != payload:
                raise CommandError(
                    f"payload came back changed ({type(r).__name__}, "
                    f"{len(r) if hasattr(r, '__len__') else '?'} long)"
                )
            times.append(t1 - t0)
            yield None
        yield {"payload_ms": statistics.median(times) * 1e3}
    except websockets.ConnectionClosed as err:
        raise CommandError(f"connection closed: {err}") from None
    finally:
        await c.close()


def large_floats(n: int) -> list[float]:
    """The float argument of the large-argument rows: six decimals, ~11.6 bytes of JSON each."""
    return [round(((i * 7919) % 1_000_003) / 1_000_003 * 1000 - 500, 6) for i in range(n)]


@functools.cache
def large_json_mb(n: int) -> float:
    """The size of large_floats(n) as JSON, in MB."""
    return len(orjson.dumps(large_floats(n))) / 1e6


async def _round_trip(c: Client, raw: bytes) -> tuple[float, Any]:
    t0 = perf()
    await c.send(raw)
    reply = await c.recv()
    return perf() - t0, result_of(reply)


async def m_large_argument(server: Server, p: Params) -> Steps:
    """A list of p.large_n floats as an argument (``"echo": false``): ``run builtins:len``
    and ``store``, alternating on one connection. ``run`` walks its arguments for
    references, ``store`` does not, so their ratio is what the walk costs; the floor,
    which has no ``store``, gets the ``run`` row only."""
    if server.spec.key == "baseline":
        raise NotSupported("not measured: messages over 1 MiB close its connection")
    c = await Client.open(server)
    try:
        await check_ping(c)
        values = large_floats(p.large_n)
        run = c.encode("run", ["builtins:len", values], echo=False)
        store = (
            c.encode("store", ["bench_large", values], echo=False) if c.dialect != "floor" else None
        )
        times: dict[str, list[float]] = {"run": [], "store": []}
        for rep in range(p.large_reps):
            order = [("run", run), ("store", store)]
            for name, raw in order if rep % 2 == 0 else order[::-1]:  # ABBA
                if raw is None:
                    continue
                t, r = await _round_trip(c, raw)
                expected = p.large_n if name == "run" else "bench_large"
                if r != expected:
                    raise CommandError(f"{name} answered {str(r)[:80]}, not {expected}")
                times[name].append(t)
            yield None
        run_ms = statistics.median(times["run"]) * 1e3
        if store is None:
            missing = NotSupported("not measured: the floor has no store command")
            yield {
                "large_run_ms": run_ms,
                "large_store_ms": missing,
                "large_run_per_store": missing,
            }
            return
        store_ms = statistics.median(times["store"]) * 1e3
        # The ratio of each adjacent pair: both commands met the same conditions.
        ratios = [r / s for r, s in zip(times["run"], times["store"], strict=True)]
        yield {
            "large_run_ms": run_ms,
            "large_store_ms": store_ms,
            "large_run_per_store": statistics.median(ratios),
        }
    except websockets.ConnectionClosed as err:
        raise CommandError(f"connection closed: {err}") from None
    finally:
        await c.close()


async def _array(c: Client, n: int, dtype: str, binary: bool) -> tuple[float, Any]:
    """Ask for numpy.arange(n, dtype=dtype); returns (seconds, decoded result)."""
    extra = {"binary": True} if binary else {}
    t0 = perf()
    if c.dialect == "baseline":
        # liaison-py 1.0.1 str()s numpy arrays: make the array, then ask for its .tolist()
        await c.call("init", ["bench_arr", "numpy:arange", n], {"dtype": dtype})
        await c.send(c.encode("run", ["bench_arr.tolist"], **extra))
    else:
        await c.send(c.encode("run", ["numpy:arange", n], {"dtype": dtype}, **extra))
    reply = await c.recv(binary)
    t1 = perf()
    if binary and not reply.get("$binary"):
        raise NotSupported("answers binary:true with a text frame")
    return t1 - t0, result_of(reply)


def _check_array(r: Any, n: int) -> None:
    if len(r) != n or r[-1] != n - 1 or r[1] != 1:
        raise CommandError(f"array came back wrong: {type(r).__name__} of {len(r)}")


async def m_arrays(server: Server, p: Params) -> dict[str, Any]:
    """numpy.arange(p.arange_n) as JSON and as a binary frame, int64 and float64."""
    c = await Client.open(server)
    out: dict[str, Any] = {}
    try:
        await _array(c, 10, "int64", False)  # warm-up (imports numpy in the server)
        nbytes = p.arange_n * 8
        for binary in (False, True):
            suffix = "bin" if binary else "json"
            for dtype in ("int64", "float64"):
                times = []
                try:
                    for _ in range(p.array_reps):
                        t, r = await _array(c, p.arange_n, dtype, binary)
                        _check_array(r, p.arange_n)
                        times.append(t)
                except NotSupported as err:
                    # JSON rows keep their values; the binary rows become n/a
                    out[f"arange_{suffix}_ms"] = out[f"f64_{suffix}_mbs"] = err
                    return out
                med = statistics.median(times)
                if dtype == "int64":
                    out[f"arange_{suffix}_ms"] = med * 1e3
                else:
                    out[f"f64_{suffix}_mbs"] = nbytes / med / 1e6
        return out
    finally:
        await c.close()


async def m_ping_during_command(server: Server, p: Params) -> dict[str, float]:
    """Connection A runs time.sleep(p.sleep_s); connection B pings every 50 ms meanwhile."""
    a = await Client.open(server)
    b = await Client.open(server)
    try:
        await check_ping(a)
        await check_ping(b)
        await a.call("run", ["time:sleep", 0])
        await a.send(a.encode("run", ["time:sleep", p.sleep_s]))
        t_start = perf()
        a_reply = asyncio.create_task(a.recv())
        await asyncio.sleep(0.1)
        lat = []
        while not a_reply.done() and perf() - t_start < p.sleep_s - 0.05:
            t0 = perf()
            await asyncio.wait_for(check_ping(b), p.sleep_s + 10)
            lat.append(perf() - t0)
            await asyncio.sleep(0.05)
        result_of(await asyncio.wait_for(a_reply, p.sleep_s + 10))
        command_s = perf() - t_start
        return {
            "sleep_ping_max_ms": max(lat) * 1e3,
            "sleep_ping_median_ms": statistics.median(lat) * 1e3,
            "sleep_pings": len(lat),
            "sleep_command_ms": command_s * 1e3,
        }
    finally:
        await a.close()
        await b.close()


async def m_payload_memory(server: Server, p: Params) -> dict[str, float]:
    """RSS after p.payload_mem_n round trips of the p.payload_bytes string: what the
    allocator keeps of large messages (fragmentation shows here, not in m_memory)."""
    c = await Client.open(server)
    try:
        payload = payload_string(p)
        for _ in range(p.payload_mem_n):
            if await c.call("run", ["copy:copy", payload]) != payload:
                raise CommandError("payload came back changed")
        return {"rss_payload_mib": server.rss_mib()}
    except websockets.ConnectionClosed as err:
        raise CommandError(f"connection closed: {err}") from None
    finally:
        await c.close()


async def m_memory(server: Server, p: Params) -> dict[str, float]:
    """RSS before and after p.mem_total messages (half ping, half no-op run), pipelined
    in batches of p.mem_batch, after a warm-up of as many messages: a leak grows on, while
    the allocator's high-water mark (reached in the first ~100k here) does not."""
    c = await Client.open(server)
    try:
        half = p.mem_batch // 2

        async def batch() -> None:
            raws = []
            for _ in range(half):
                raws.append(c.encode(*PING))
                raws.append(c.encode(*NOOP))
            for raw in raws:
                await c.send(raw)
            for _ in raws:
                result_of(await c.recv())

        for _ in range(p.mem_total // (2 * half)):
            await batch()
        await asyncio.sleep(0.2)
        before = server.rss_mib()
        for _ in range(p.mem_total // (2 * half)):
            await batch()
        await asyncio.sleep(0.2)
        after = server.rss_mib()
        return {"rss_before_mib": before, "rss_after_mib": after, "rss_growth_mib": after - before}
    finally:
        await c.close()


async def m_reference_memory(server: Server, p: Params) -> dict[str, float]:
    """RSS growth over p.mem_total create/release cycles of a reference (an ``object()``
    made with ``"ref": true``, then ``release``d), pipelined in batches
    of REF_BATCH, after a warm-up of as many: the namespace and the bookkeeping must
    not keep anything of a released reference."""
    c = await Client.open(server)
    try:
        await c.send(c.encode("run", REF_TARGET, ref=True))
        probe = (await c.recv()).get("response")
        if not isinstance(probe, dict) or "$ref" not in probe:
            raise NotSupported("no references (the ref option)")
        await c.send(c.encode("release", [probe["$ref"]]))
        result_of(await c.recv())

        # Batches of 500, not mem_batch: thousands of replies in flight move the resident
        # memory by +-4 MiB from run to run (measured), which would hide a leak.
        size = min(p.mem_batch, REF_BATCH)

        async def batch() -> None:
            creates = [c.encode("run", REF_TARGET, ref=True) for _ in range(size)]
            for raw in creates:
                await c.send(raw)
            names = [result_of(await c.recv())["$ref"] for _ in creates]
            for name in names:
                await c.send(c.encode("release", [name]))
            for _ in names:
                result_of(await c.recv())

        for _ in range(p.mem_total // size):
            await batch()
        await asyncio.sleep(0.2)
        before = server.rss_mib()
        for _ in range(p.mem_total // size):
            await batch()
        await asyncio.sleep(0.2)
        after = server.rss_mib()
        return {"rss_ref_growth_mib": after - before}
    finally:
        await c.close()
