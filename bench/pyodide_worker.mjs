// The liaison in Pyodide, in a worker_threads Worker (liaison-client/pyodide), against a
// floor in the same run: a bare worker that echoes postMessage. Three rows:
//   start   startPyodideLiaison() to ready, against a bare worker's start to its first message;
//   ping    sequential `ping` round trips, against the same JSON text echoed back;
//   f64     an 8 MiB Float64Array as the argument and the result (`run` of a function that
//           returns its bytes, as binary frames), against the buffer echoed back
//           (transferred both ways, as the client transfers its frames).
// Liaison and floor take turns block by block (ABBA...), as bench/run.py's groups do.
//
//   node bench/pyodide_worker.mjs [--quick]
//
// Prints one JSON object; exits 1 (message on stderr) if a call fails or a result is wrong.
// bench/run.py runs it (group "pyodide"); see bench/README.md.

import { performance } from "node:perf_hooks";
import { Worker } from "node:worker_threads";

const quick = process.argv.includes("--quick");
const STARTS = quick ? 1 : 3;
const PINGS = quick ? 300 : 5000;
const PING_BLOCK = 250;
const ARRAYS = quick ? 3 : 20;
const N = 1048576; // float64 elements: 8 MiB

const ECHO_WORKER = `
const { parentPort } = require("node:worker_threads");
parentPort.on("message", (m) => parentPort.postMessage(m, m instanceof ArrayBuffer ? [m] : []));
parentPort.postMessage("ready");
`;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function fail(what, detail) {
  throw new Error(`${what}: ${detail}`);
}

/** The floor: a worker that echoes; `call(message, transfer)` resolves with the echo. */
async function startEcho() {
  const worker = new Worker(ECHO_WORKER, { eval: true });
  let waiting;
  worker.on("message", (m) => waiting?.(m));
  await new Promise((resolve) => (waiting = resolve));
  return {
    call(message, transfer = []) {
      return new Promise((resolve) => {
        waiting = resolve;
        worker.postMessage(message, transfer);
      });
    },
    end: () => worker.terminate(),
  };
}

async function main() {
  let client;
  try {
    client = await import("../clients/js/dist/pyodide.js");
  } catch (e) {
    fail("cannot load clients/js/dist/pyodide.js (run npm ci && npm run build in clients/js)", e.message);
  }
  const { startPyodideLiaison, bytes } = client;
  const files = { "bench_pyodide.py": "def same(data):\n    return data\n" };
  const out = { node: process.version, elements: N };

  // Start: Pyodide's load dominates; the floor is what any worker costs.
  const starts = { liaison: [], floor: [] };
  let liaison;
  let echo;
  for (let i = 0; i < STARTS; i++) {
    for (const who of i % 2 ? ["floor", "liaison"] : ["liaison", "floor"]) {
      const t0 = performance.now();
      if (who === "liaison") {
        const started = await startPyodideLiaison({ files });
        starts.liaison.push(performance.now() - t0);
        if (liaison) await started.close();
        else liaison = started;
      } else {
        const started = await startEcho();
        starts.floor.push(performance.now() - t0);
        if (echo) await started.end();
        else echo = started;
      }
    }
  }
  out.start_ms = { liaison: median(starts.liaison), floor: median(starts.floor), reps: STARTS };

  try {
    // Sequential pings, in blocks taking turns; the floor echoes the message's bytes.
    const pingText = JSON.stringify({ command: { command: "ping", args: [], kwargs: {} }, id: "x", echo: false });
    for (let i = 0; i < 100; i++) {
      await liaison.ping();
      JSON.parse(await echo.call(pingText));
    }
    const pings = { liaison: [], floor: [] };
    for (let done = 0, turn = 0; done < PINGS; done += PING_BLOCK, turn++) {
      for (const who of turn % 2 ? ["floor", "liaison"] : ["liaison", "floor"]) {
        for (let i = 0; i < PING_BLOCK; i++) {
          const t0 = performance.now();
          if (who === "liaison") {
            if ((await liaison.ping()) !== "pong") fail("ping", "no pong");
          } else {
            JSON.parse(await echo.call(pingText));
          }
          pings[who].push(performance.now() - t0);
        }
      }
    }
    out.seq_ping_us = { liaison: median(pings.liaison) * 1000, floor: median(pings.floor) * 1000, n: pings.liaison.length };

    // 8 MiB Float64Array there and back.
    const data = new Float64Array(N).map((_, i) => Math.sin(i));
    const check = (what, result) => {
      const view = new Float64Array(result.buffer, result.byteOffset, result.byteLength / 8);
      if (view.length !== N || view[12345] !== data[12345] || view[N - 1] !== data[N - 1]) fail(what, "wrong values back");
    };
    const arrays = { liaison: [], floor: [] };
    for (let i = 0; i < ARRAYS + 2; i++) {
      for (const who of i % 2 ? ["floor", "liaison"] : ["liaison", "floor"]) {
        const t0 = performance.now();
        let result;
        if (who === "liaison") {
          const raw = await liaison.run("bench_pyodide:same", [bytes(new Uint8Array(data.buffer))], {}, { binary: true, echo: false });
          result = raw;
        } else {
          const copy = data.buffer.slice(0); // the client encodes a frame of its own too
          result = new Uint8Array(await echo.call(copy, [copy]));
        }
        const ms = performance.now() - t0;
        check(who, result);
        if (i >= 2) arrays[who].push(ms); // 2 warm-up rounds
      }
    }
    out.f64_round_trip_ms = { liaison: median(arrays.liaison), floor: median(arrays.floor), n: ARRAYS };
  } finally {
    await liaison.close();
    await echo.end();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`pyodide_worker.mjs: ${e?.type ? `${e.type}: ` : ""}${e?.message ?? e}\n`);
    process.exit(1);
  },
);
