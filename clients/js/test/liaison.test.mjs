// The client against the real Python liaison (`python -m liaison.websocket`), spawned with
// spawnLiaison. LIAISON_PYTHON names the Python that has liaison installed (default "python").
// `npm test` runs this file twice on Node 20: with the `ws` package, and with Node's own
// (undici) WebSocket under --experimental-websocket, the one Node >= 22 and Electron use.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { connect, spawnLiaison, stopMethod, LiaisonError, RemoteError } from "../dist/node.js";

const python = process.env.LIAISON_PYTHON ?? "python";
const repo = fileURLToPath(new URL("../../../", import.meta.url));
// tests/ holds remote_helpers, the functions these tests call in the liaison.
const options = { python, env: { PYTHONPATH: `${repo}tests` }, timeout: 20000 };

let liaison;

before(async () => {
  liaison = await spawnLiaison(options);
});

after(async () => {
  await liaison?.stop();
});

/** Resolves with the first pushed message with this tag. */
const nextMessage = (l, tag) => new Promise((resolve) => l.once(tag, resolve));

/** Resolves once the running command reports progress (so it surely runs). */
const started = () => {
  let onProgress;
  const running = new Promise((resolve) => (onProgress = resolve));
  return { running, onProgress };
};

test("the seed's t-test gives what scipy gives", async () => {
  const a = [1, 2, 3, 4, 5];
  const b = [2, 3, 4, 5, 6];
  const script = `import json, sys; from scipy.stats import ttest_ind; print(json.dumps([float(x) for x in ttest_ind(*json.loads(sys.argv[1]))]))`;
  const expected = JSON.parse(execFileSync(python, ["-c", script, JSON.stringify([a, b])], { encoding: "utf8" }));
  const [statistic, pvalue] = await liaison.run("scipy.stats:ttest_ind", [a, b]);
  assert.equal(statistic, expected[0]);
  assert.equal(pvalue, expected[1]);
  assert.equal(statistic, -1); // equal variances, means 3 and 4: t = -1 / sqrt(2 * 2.5 / 5)
  // The seed README's data, whose Welch test gives the README's numbers.
  const seedA = [0.5982758, 0.67019733, 0.68617796, 0.28764011];
  const seedB = [0.41138649, 1.67023998, 1.0420896, 1.49671732];
  const welch = await liaison.run("scipy.stats:ttest_ind", [seedA, seedB], { equal_var: false });
  assert.deepEqual(welch, [-2.008309436290938, 0.1217799378120249]);
});

test("get, exists, init, register, store, attempt, ping", async () => {
  assert.equal(await liaison.get("math:pi"), Math.PI);
  assert.equal(await liaison.exists("math:tau"), true);
  assert.equal(await liaison.exists("math:no_such_thing"), false);
  assert.equal(await liaison.init("counter", "collections:Counter", ["abca"]), "counter");
  assert.equal(await liaison.get("counter.a"), 2);
  assert.equal(await liaison.register("hyp", "math:hypot"), "hyp");
  assert.equal(await liaison.run("hyp", [3, 4]), 5);
  assert.equal(await liaison.store("data", { xs: [1, 2, 3] }), "data");
  assert.equal(await liaison.run("builtins:sum", ["$data.xs"]), 6);
  assert.deepEqual(await liaison.attempt("operator:truediv", [1, 4]), { success: true, result: 0.25 });
  const failed = await liaison.attempt("operator:truediv", [1, 0]);
  assert.equal(failed.success, false);
  assert.match(failed.result, /ZeroDivisionError/);
  assert.equal(await liaison.ping(), "pong");
});

test("a method for every command in the liaison's command table", async () => {
  // The table (liaison/protocol/commands.py) is the one declaration of the commands.
  const script = "import json; from liaison.protocol.commands import COMMANDS; print(json.dumps({n: c.method for n, c in COMMANDS.items()}))";
  const methods = JSON.parse(execFileSync(python, ["-c", script], { encoding: "utf8" }));
  assert.deepEqual(Object.keys(methods).sort(), Object.keys(await liaison.commands()).sort());
  for (const [name, method] of Object.entries(methods)) {
    assert.equal(typeof liaison[method], "function", `command ${name}: no method ${method}`);
  }
});

test("a Python exception rejects with LiaisonError: type, message, traceback, reply", async () => {
  await assert.rejects(liaison.run("operator:truediv", [1, 0], {}, { echo: true }), (e) => {
    assert.ok(e instanceof RemoteError && e instanceof LiaisonError);
    assert.equal(e.type, "ZeroDivisionError");
    assert.equal(e.message, "division by zero");
    assert.equal(e.reply.tag, "error");
    assert.deepEqual(e.reply.evt.command.args, ["operator:truediv", 1, 0]);
    return true;
  });
  // By default the reply echoes no arguments (echo: false), as in the Python client.
  await assert.rejects(liaison.run("operator:truediv", [1, 0]), (e) => e.reply.evt.command.args === undefined);
  // Raised in Python code, so the traceback has frames.
  await assert.rejects(liaison.init("f", "fractions:Fraction", [1, 0]), (e) => {
    assert.equal(e.type, "ZeroDivisionError");
    assert.match(e.message, /Fraction\(1, 0\)/);
    assert.match(e.traceback, /^Traceback \(most recent call last\):\n[\s\S]*fractions\.py[\s\S]*ZeroDivisionError: Fraction\(1, 0\)\n$/);
    assert.equal(e.traceback, e.reply.error.join(""));
    return true;
  });
  await assert.rejects(liaison.run("no_such_module_xyz:f"), { type: "ModuleNotFoundError" });
  await assert.rejects(liaison.get("math:pi..real"), { type: "InvalidTarget" });
  // The connection stays usable after errors.
  assert.equal(await liaison.run("operator:add", [2, 3]), 5);
});

test("a timeout makes the liaison cancel the command: TimeoutError, fast", async () => {
  const t0 = Date.now();
  await assert.rejects(liaison.run("time:sleep", [30], {}, { timeout: 200 }), (e) => {
    assert.equal(e.type, "TimeoutError");
    assert.ok(e.reply, "the liaison's own reply, not the client-side fallback");
    return true;
  });
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  assert.equal(await liaison.run("operator:add", [1, 1]), 2);
});

test("an AbortSignal cancels a running command on the liaison", async () => {
  const ac = new AbortController();
  const { running, onProgress } = started();
  const t0 = Date.now();
  const call = liaison.run("remote_helpers:announce_then_sleep", [30], {}, { signal: ac.signal, onProgress });
  await running;
  ac.abort();
  await assert.rejects(call, (e) => {
    assert.equal(e.type, "CancelledError");
    assert.ok(e.reply, "rejected by the liaison's CancelledError reply");
    return true;
  });
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  // The ordered queue moves on: the next command runs at once.
  assert.equal(await liaison.run("operator:add", [1, 2], {}, { timeout: 5000 }), 3);
});

test("progress messages reach onProgress before the reply", async () => {
  const progress = [];
  const result = await liaison.run("remote_helpers:report_progress", [3], {}, { onProgress: (p) => progress.push(p) });
  assert.equal(result, "done");
  assert.deepEqual(progress, [0, 1, 2].map((step) => ({ step, of: 3 })));
});

test("onPartial streams generator items in order; the reply is their number", async () => {
  const items = [];
  assert.equal(await liaison.run("remote_helpers:count", [4], {}, { onPartial: (x) => items.push(x) }), 4);
  assert.deepEqual(items, [0, 1, 2, 3]);
  const asyncItems = [];
  assert.equal(await liaison.run("remote_helpers:async_count", [3], {}, { onPartial: (x) => asyncItems.push(x) }), 3);
  assert.deepEqual(asyncItems, [0, 1, 2]);
  // Without onPartial a generator is collected.
  assert.deepEqual(await liaison.run("remote_helpers:count", [3]), [0, 1, 2]);
});

test("messages pushed with liaison.send reach on(tag) handlers of every client", async () => {
  const other = await connect(`ws://127.0.0.1:${liaison.port}/`, { token: liaison.token, timeout: 5000 });
  try {
    await liaison.init("pusher", "remote_helpers:Pusher", ["$liaison"]);
    const mine = nextMessage(liaison, "alert");
    const theirs = nextMessage(other, "alert");
    assert.equal(await liaison.run("pusher.alert", ["fire"]), "fire");
    assert.deepEqual(await mine, { tag: "alert", text: "fire" });
    assert.deepEqual(await theirs, { tag: "alert", text: "fire" });
    const seen = [];
    const handler = (m) => seen.push(m);
    other.on("alert", handler).off("alert", handler);
    const again = nextMessage(other, "alert");
    await liaison.run("pusher.alert", ["twice"]);
    assert.deepEqual(await again, { tag: "alert", text: "twice" });
    assert.deepEqual(seen, [], "off() removed the handler");
  } finally {
    await other.close();
  }
});

test("close() rejects every pending call at once; on('close') fires", async () => {
  const other = await connect(`ws://127.0.0.1:${liaison.port}/`, { token: liaison.token });
  const { running, onProgress } = started();
  const blocked = other.run("remote_helpers:announce_then_block", [30], {}, { onProgress });
  await running;
  const queued = other.run("operator:add", [1, 2]); // waits behind the blocked command
  const closes = [];
  other.on("close", (info) => closes.push(info));
  const t0 = Date.now();
  const closed = other.close();
  await assert.rejects(blocked, { type: "ConnectionClosed" });
  await assert.rejects(queued, { type: "ConnectionClosed" });
  assert.ok(Date.now() - t0 < 1000);
  await closed;
  assert.equal(closes.length, 1);
  assert.equal(other.connected, false);
  await assert.rejects(other.ping(), { type: "ConnectionClosed" });
  // Free the main thread for the other tests (release runs on a worker thread).
  await liaison.run("remote_helpers:release", [], {}, { concurrent: true });
  assert.equal(await liaison.run("operator:add", [2, 2], {}, { timeout: 10000 }), 4);
});

test("binary: true brings numpy arrays as typed arrays and sends typed arrays raw", async () => {
  const arrays = await liaison.run("remote_helpers:arrays", [3], {}, { binary: true });
  assert.equal(arrays.length, 3);
  assert.ok(arrays[2] instanceof Float64Array);
  assert.deepEqual(Array.from(arrays[2]), [0, 1]);
  assert.deepEqual(arrays[2].shape, [2]);
  const matrix = Object.assign(new Int32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] });
  const kind = await liaison.run("remote_helpers:kind_of", [matrix], {}, { binary: true });
  assert.deepEqual(kind, { type: "ndarray", dtype: "int32", shape: [2, 3], writeable: true });
  const doubled = await liaison.run("numpy:multiply", [matrix, 2], {}, { binary: true });
  assert.ok(doubled instanceof BigInt64Array || doubled instanceof Int32Array, doubled.constructor.name);
  assert.deepEqual(doubled.shape, [2, 3]);
  assert.deepEqual(Array.from(doubled, Number), [2, 4, 6, 8, 10, 12]);
});

test("spawnLiaison passes a fresh token by environment, never argv; no token, no connection", async () => {
  assert.match(liaison.token, /^[0-9a-f]{64}$/);
  const cmdline = readFileSync(`/proc/${liaison.process.pid}/cmdline`, "utf8");
  assert.ok(!cmdline.includes(liaison.token), "the token is not on the command line");
  assert.deepEqual(cmdline.split("\0").slice(1, 4), ["-m", "liaison.websocket", "127.0.0.1:0"]);
  // `ws` reports the HTTP status of a refused handshake; undici's WebSocket, like browsers', does not.
  const status = (code) => (typeof globalThis.WebSocket === "function" ? /^cannot connect to / : new RegExp(`\\b${code}\\b`));
  await assert.rejects(connect(`ws://127.0.0.1:${liaison.port}/`), (e) => e.type === "ConnectionError" && status(401).test(e.message));
  await assert.rejects(connect(`ws://127.0.0.1:${liaison.port}/`, { token: "wrong" }), (e) => e.type === "ConnectionError" && status(403).test(e.message));
});

test("stop() shuts the liaison down: resolves 0 and the process is gone", async () => {
  const own = await spawnLiaison(options);
  const { pid } = own.process;
  assert.equal(await own.ping(), "pong");
  const outcome = own.run("time:sleep", [30]).then((value) => ({ value }), (error) => ({ error }));
  assert.equal(await own.stop(), 0);
  assert.ok((await outcome).error instanceof LiaisonError, "the running command did not finish");
  assert.equal(own.process.exitCode, 0);
  assert.throws(() => process.kill(pid, 0), { code: "ESRCH" });
  await assert.rejects(connect(`ws://127.0.0.1:${own.port}/`, { token: own.token }), { type: "ConnectionError" });
});

test("a dozen spawned liaisons share one exit listener: no MaxListenersExceededWarning", async () => {
  const warnings = [];
  const onWarning = (w) => warnings.push(w.name);
  process.on("warning", onWarning);
  const before = process.listenerCount("exit"); // the shared listener is there already if a child lives
  const children = [];
  try {
    for (const c of await Promise.allSettled(Array.from({ length: 12 }, () => spawnLiaison({ ...options, transport: "stdio" })))) {
      assert.equal(c.status, "fulfilled", c.reason?.message);
      children.push(c.value);
    }
    assert.ok(process.listenerCount("exit") <= before + 1, `${process.listenerCount("exit")} exit listeners`);
    assert.deepEqual(await Promise.all(children.map((c) => c.ping())), Array(12).fill("pong"));
  } finally {
    assert.deepEqual(await Promise.all(children.map((c) => c.stop())), Array(children.length).fill(0));
    process.off("warning", onWarning);
  }
  assert.equal(process.listenerCount("exit"), before);
  assert.deepEqual(warnings, []);
});

test("spawnLiaison rejects with the child's stderr when it cannot start", async () => {
  const t0 = Date.now();
  await assert.rejects(spawnLiaison({ ...options, address: "127.0.0.1:not-a-port" }), (e) => {
    assert.equal(e.type, "SpawnError");
    assert.match(e.message, /exited with code 2 before it was ready/);
    assert.match(e.message, /--- stderr of the liaison ---\n.*\S/);
    return true;
  });
  await assert.rejects(spawnLiaison({ ...options, python: "/nonexistent/python" }), { type: "SpawnError" });
  assert.ok(Date.now() - t0 < 10000);
});

test("spawnLiaison passes gui as --gui", async () => {
  await assert.rejects(spawnLiaison({ ...options, gui: "no-such-toolkit" }), (e) => {
    assert.equal(e.type, "SpawnError");
    assert.match(e.message, /unknown --gui 'no-such-toolkit'/);
    return true;
  });
});

test("stop() asks by shutdown while connected, else SIGTERM; Windows, with no signals, kills", () => {
  for (const platform of ["linux", "darwin", "win32"]) assert.equal(stopMethod(true, platform), "shutdown");
  assert.equal(stopMethod(false, "linux"), "SIGTERM");
  assert.equal(stopMethod(false, "darwin"), "SIGTERM");
  assert.equal(stopMethod(false, "win32"), "kill");
});
