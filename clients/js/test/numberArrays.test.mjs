// Plain Arrays of numbers sent raw (binaryNumberArrays, on by default): against the real
// liaison, over WebSocket and stdio, Python gets exactly the list JSON text gives it
// (compared through json.dumps, which tells 1 from 1.0 and -0.0 from 0, and shows None
// as null), and the message really went as a binary frame.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { spawnLiaison, resolveWebSocket, encodeMessage, INDEXED_SHARE_MAX, NUMBER_ARRAY_MIN } from "../dist/node.js";

const python = process.env.LIAISON_PYTHON ?? "python";
const repo = fileURLToPath(new URL("../../../", import.meta.url));
const N = NUMBER_ARRAY_MIN;

// Numbers whose JSON text is special: ints, -0, null, exponents, 64-bit edges, subnormals.
const SPECIALS = [0, -0, 3, -7, NaN, Infinity, -Infinity, 1e21, 1e21 - 131072, 2 ** 53, 2 ** 53 + 2, -(2 ** 53) - 2,
  2 ** 60, 2 ** 63, -(2 ** 63), 2 ** 64, 1.5e20, 5e-324, -5e-324, 1.7976931348623157e308, 0.1, -1e-7, 2 ** 31, -(2 ** 31) - 1];

/** A seeded generator (mulberry32), so that a failure can be replayed. */
function random(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `length` numbers: full-precision floats, with `share` of them from SPECIALS. */
function mixed(rand, length, share) {
  return Array.from({ length }, () => (rand() < share ? SPECIALS[Math.floor(rand() * SPECIALS.length)] : (rand() - 0.5) * 10 ** Math.floor(rand() * 40 - 20)));
}

/** Connections whose sends are recorded: over WebSocket by a spying WebSocket class, over stdio by a spy on the child's stdin. */
async function spawnSpied(transport, extra = {}) {
  const sent = [];
  const options = { python, env: { PYTHONPATH: `${repo}tests` }, timeout: 20000, transport, ...extra };
  if (transport === "websocket") {
    const Base = await resolveWebSocket();
    options.WebSocket = class extends Base {
      send(data) {
        sent.push(typeof data === "string" ? "text" : "binary");
        super.send(data);
      }
    };
  }
  const liaison = await spawnLiaison(options);
  if (transport === "stdio") {
    const write = liaison.process.stdin.write.bind(liaison.process.stdin);
    liaison.process.stdin.write = (chunk, ...rest) => {
      if (typeof chunk === "string" && chunk.startsWith("#")) sent.push("binary");
      else if (typeof chunk === "string" && chunk.startsWith("{")) sent.push("text");
      return write(chunk, ...rest);
    };
  }
  sent.length = 0; // the configure sent at connection
  return { liaison, sent };
}

const spawned = [];
after(async () => {
  await Promise.all(spawned.map((l) => l.stop()));
});

for (const transport of ["websocket", "stdio"]) {
  test(`${transport}: arrays of every kind of number arrive as the list JSON gives, raw when long`, async () => {
    const { liaison, sent } = await spawnSpied(transport);
    spawned.push(liaison);
    const rand = random(transport === "stdio" ? 7 : 15);
    const cases = [];
    for (const length of [0, 3, N - 1, N, N + 1, 5000]) for (const share of [0, 0.05, 0.2, 0.6, 1]) cases.push(mixed(rand, length, share));
    cases.push(Array.from({ length: N }, (_, i) => i - 500)); // int32: travels as int32
    cases.push(Array.from({ length: N }, (_, i) => (i % 2 ? -0 : 2 ** 31 - 1 - i))); // int32 with -0
    cases.push(Array.from({ length: 3000 }, (_, i) => (i % 100 ? Math.sin(i) * 1000 : SPECIALS[(i / 100) % SPECIALS.length])));
    for (const array of cases) {
      const expectRaw = encodeMessage({ command: { command: "run", args: ["json:dumps", array], kwargs: {} } }, { binary: false, numberArrays: true }) instanceof ArrayBuffer;
      liaison.binaryNumberArrays = true;
      sent.length = 0;
      const raw = await liaison.run("json:dumps", [array]);
      assert.deepEqual(sent, [expectRaw ? "binary" : "text"]);
      liaison.binaryNumberArrays = false;
      sent.length = 0;
      const json = await liaison.run("json:dumps", [array]);
      assert.deepEqual(sent, ["text"]);
      assert.equal(raw, json, `length ${array.length}: ${raw.slice(0, 200)} against ${json.slice(0, 200)}`);
    }
    // The fast path must not be off by accident: long float arrays with a few specials go raw.
    const rawCount = cases.filter((a) => a.length >= N && encodeMessage({ command: { args: [a] } }, { binary: false, numberArrays: true }) instanceof ArrayBuffer).length;
    assert.ok(rawCount >= 12, `only ${rawCount} arrays went raw`);
  });
}

test("the reply stays JSON unless binary: true; nested arrays and kwargs go raw too", async () => {
  const { liaison, sent } = await spawnSpied("websocket");
  spawned.push(liaison);
  const floats = Array.from({ length: 2000 }, (_, i) => Math.sin(i) * 1000); // sin(0) * 1000 === 0: an int
  const reply = await liaison.run("builtins:dict", [], { deep: [{ x: floats }], k: floats }, { echo: true });
  assert.deepEqual(sent, ["binary"]);
  assert.deepEqual(reply, { deep: [{ x: floats }], k: floats });
  assert.deepEqual(await liaison.run("remote_helpers:kind_of", [floats]), { type: "list" });
  // A numpy result stays a JSON array without binary: true, and comes raw with it.
  const back = await liaison.run("numpy:asarray", [floats]);
  assert.ok(Array.isArray(back) && back.length === 2000 && back[1] === floats[1]);
  const typed = await liaison.run("numpy:asarray", [floats], {}, { binary: true });
  assert.ok(typed instanceof Float64Array && typed[1] === floats[1]);
  assert.deepEqual(sent, ["binary", "binary", "binary", "binary"]);
});

test("binaryNumberArrays: false at spawn sends JSON text", async () => {
  const { liaison, sent } = await spawnSpied("websocket", { binaryNumberArrays: false });
  spawned.push(liaison);
  assert.equal(liaison.binaryNumberArrays, false);
  assert.equal(await liaison.run("builtins:len", [Array.from({ length: 5000 }, Math.random)]), 5000);
  assert.deepEqual(sent, ["text"]);
  assert.ok(INDEXED_SHARE_MAX > 0 && INDEXED_SHARE_MAX < 1);
});
