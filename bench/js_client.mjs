// Array throughput of the JavaScript client (clients/js, built to dist/) against an
// already running liaison: 8 MiB of float64 from `run` to a decoded typed array, and
// the other way as an argument, each as a binary frame and as JSON.
//
//   node bench/js_client.mjs ws://127.0.0.1:PORT/ [--quick] [--reps N] [--json-reps N]
//                            [--only results|args]
//
// The URL may also come from LIAISON_URL, a token from LIAISON_TOKEN. Prints one JSON
// object on stdout; exits 1 (message on stderr) if a call fails or a result is wrong.
// bench/run.py runs it; see bench/README.md.

import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";

const N = 1048576; // float64 elements: 8 MiB
const NBYTES = N * 8;

function parseArgs(argv) {
  const opts = { url: process.env.LIAISON_URL, quick: false, reps: null, jsonReps: null, only: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--quick") opts.quick = true;
    else if (a === "--reps") opts.reps = Number(argv[++i]);
    else if (a === "--json-reps") opts.jsonReps = Number(argv[++i]);
    else if (a === "--only") opts.only = argv[++i];
    else if (a.startsWith("ws://") || a.startsWith("wss://")) opts.url = a;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.url) throw new Error("usage: node bench/js_client.mjs ws://HOST:PORT/ [--quick]");
  // JSON calls take ~10x longer than binary ones, so they get fewer repetitions.
  opts.reps ??= opts.quick ? 3 : 20;
  opts.jsonReps ??= opts.quick ? 2 : 5;
  opts.warmup = opts.quick ? 1 : 2;
  return opts;
}

function fail(what, detail) {
  throw new Error(`${what}: ${detail}`);
}

/** Times `call()` `reps` times after `warmup` untimed calls; `check` validates each result. */
async function measure(call, check, reps, warmup) {
  for (let i = 0; i < warmup; i++) check(await call());
  const ms = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const r = await call();
    ms.push(performance.now() - t0);
    check(r); // outside the timing: checking is the benchmark's work, not the client's
  }
  ms.sort((a, b) => a - b);
  const mid = ms.length >> 1;
  const median = ms.length % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2;
  const mbs = (t) => NBYTES / (t / 1e3) / 1e6;
  return { median_mbs: mbs(median), best_mbs: mbs(ms[0]), median_ms: median, best_ms: ms[0], reps, warmup };
}

function checkOnes(r, binary) {
  const what = binary ? "numpy:ones binary" : "numpy:ones JSON";
  if (binary && !(r instanceof Float64Array)) fail(what, `got ${r?.constructor?.name}, not a Float64Array`);
  if (!binary && !Array.isArray(r)) fail(what, `got ${r?.constructor?.name}, not an Array`);
  if (r.length !== N) fail(what, `length ${r.length}, expected ${N}`);
  if (binary && (r.dtype !== "float64" || r.shape?.[0] !== N)) fail(what, `dtype ${r.dtype}, shape ${r.shape}`);
  if (r[0] !== 1 || r[N >> 1] !== 1 || r[N - 1] !== 1) fail(what, `values ${r[0]}, ${r[N >> 1]}, ${r[N - 1]}`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  let client;
  try {
    client = await import("../clients/js/dist/node.js");
  } catch (e) {
    fail("cannot load clients/js/dist/node.js (run npm ci && npm run build in clients/js)", e.message);
  }
  let websocket = "globalThis.WebSocket";
  if (!globalThis.WebSocket) {
    // the client falls back to the ws package, resolved from clients/js
    const require = createRequire(new URL("../clients/js/package.json", import.meta.url));
    websocket = `ws ${require("ws/package.json").version}`;
  }
  const liaison = await client.connect(opts.url, { token: process.env.LIAISON_TOKEN, timeout: 20000 });
  liaison.timeout = undefined; // a call timeout would add a server-side timer to each command
  const out = { node: process.version, websocket, elements: N, bytes: NBYTES };
  try {
    if (opts.only !== "args") {
      // (a) numpy.ones(N) as one binary frame, decoded to a Float64Array (a view on the frame)
      out.result_binary = await measure(
        () => liaison.run("numpy:ones", [N], {}, { binary: true }),
        (r) => checkOnes(r, true),
        opts.reps,
        opts.warmup,
      );
      // (b) the same as JSON: a JS Array of numbers
      out.result_json = await measure(
        () => liaison.run("numpy:ones", [N]),
        (r) => checkOnes(r, false),
        opts.jsonReps,
        1,
      );
    }
    if (opts.only !== "results") {
      // Full-precision values (~19 characters each in JSON), as measured data would be;
      // numpy.sum's result is checked against the JS sum (a different summation order).
      const data = new Float64Array(N);
      let expected = 0;
      for (let i = 0; i < N; i++) expected += data[i] = Math.sin(i) * 1000;
      const checkSum = (what) => (r) => {
        if (typeof r !== "number" || !(Math.abs(r - expected) <= 1e-6 * Math.max(1, Math.abs(expected)))) {
          fail(what, `numpy:sum returned ${r}, expected ${expected}`);
        }
      };
      // (c) a Float64Array argument, raw in a binary frame (the reply is small JSON text)
      out.args_binary = await measure(
        () => liaison.run("numpy:sum", [data], {}, { binary: true }),
        checkSum("numpy:sum binary"),
        opts.reps,
        opts.warmup,
      );
      // (c') the same as a plain Array, as a user passes it: by default it travels raw
      // (binaryNumberArrays); echo: false, else the reply would carry the million
      // numbers back in `evt` and the row would measure both directions
      const plain = Array.from(data);
      out.args_plain = await measure(
        () => liaison.run("numpy:sum", [plain], {}, { echo: false }),
        checkSum("numpy:sum plain Array"),
        opts.reps,
        opts.warmup,
      );
      // (c'') the same Array as JSON text (binaryNumberArrays: false)
      liaison.binaryNumberArrays = false;
      out.args_json = await measure(
        () => liaison.run("numpy:sum", [plain], {}, { echo: false }),
        checkSum("numpy:sum JSON"),
        opts.jsonReps,
        1,
      );
      liaison.binaryNumberArrays = true;
      // (c''') of which the client's JSON encoding of that message (what `run` sends)
      const message = { command: { command: "run", args: ["numpy:sum", plain], kwargs: {} }, id: "x", echo: false };
      out.args_json_encode = await measure(
        () => client.jsonStringify(message),
        (text) => text.length > N || fail("jsonStringify", `${text.length} characters`),
        opts.jsonReps,
        1,
      );
    }
  } finally {
    liaison.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`js_client.mjs: ${e?.type ? `${e.type}: ` : ""}${e?.message ?? e}\n`);
    process.exit(1);
  },
);
