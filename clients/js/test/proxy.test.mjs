// Python objects as proxies (liaison.module, references, release) against the real liaison.
// Run with --expose-gc (package.json's test script): the FinalizationRegistry test needs gc().
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { connect, kw, spawnLiaison } from "../dist/node.js";

const python = process.env.LIAISON_PYTHON ?? "python";
const options = { python, timeout: 20000 };

let liaison;

before(async () => {
  liaison = await spawnLiaison(options);
});

after(async () => {
  await liaison?.stop();
});

/** Rejects with a LiaisonError of this type whose message names `name`. */
const rejectsNaming = (promise, type, name) =>
  assert.rejects(promise, (e) => e.type === type && e.message.includes(name));

test("module calls with positional and keyword arguments, attribute chains, awaited attributes", async () => {
  const stats = liaison.module("scipy.stats");
  const a = [0.5982758, 0.67019733, 0.68617796, 0.28764011];
  const b = [0.41138649, 1.67023998, 1.0420896, 1.49671732];
  assert.deepEqual(await stats.ttest_ind(a, b, kw({ equal_var: false })), [-2.008309436290938, 0.1217799378120249]);
  assert.equal(await liaison.module("os").path.join("a", "b"), "a/b");
  assert.equal(await liaison.module("math").pi, Math.PI);
  assert.deepEqual(await liaison.module("builtins").sorted([3, 1, 2], kw({ reverse: true })), [3, 2, 1]);
});

test("a non-JSON result arrives as a proxy whose methods and attributes work", async () => {
  const rng = await liaison.module("random").Random(42);
  assert.equal(typeof rng, "function"); // a proxy, not a string
  assert.match(String(rng), /random\.Random object/);
  const x = await rng.random();
  assert.ok(typeof x === "number" && x >= 0 && x < 1);
  assert.equal(await rng.randint(7, 7), 7);
  assert.equal(await rng.VERSION, 3);
  const name = JSON.parse(JSON.stringify({ r: rng })).r.slice(1);
  assert.ok((await liaison.names()).includes(name));
  assert.ok((await liaison.describe(name)).doc.includes("Random"));
  await liaison.release(rng);
});

test("a proxy passed back as an argument travels as its $name", async () => {
  const queue = await liaison.module("collections").deque([3, 1, 2]);
  const builtins = liaison.module("builtins");
  assert.deepEqual(await builtins.sorted(queue), [1, 2, 3]);
  const chain = await liaison.module("itertools").chain.from_iterable([queue, queue]); // an iterator: a proxy
  assert.deepEqual(await builtins.list(chain), [3, 1, 2, 3, 1, 2]);
  await liaison.release(chain);
  assert.equal(await builtins.callable(queue.append), true);
  await liaison.release(queue);
});

test("release, then use after release: NameNotFound naming the reference", async () => {
  const rng = await liaison.module("random").Random(1);
  const name = JSON.parse(JSON.stringify(rng)).slice(1);
  assert.deepEqual(await liaison.release(rng), [name]);
  assert.ok(!(await liaison.names()).includes(name));
  await rejectsNaming(rng.random(), "NameNotFound", name);
  await rejectsNaming(liaison.module("builtins").id(rng), "NameNotFound", name);
  await rejectsNaming(liaison.release(rng), "NameNotFound", name);
});

test("Symbol.asyncDispose releases the reference", async () => {
  const rng = await liaison.module("random").Random(2);
  const name = JSON.parse(JSON.stringify(rng)).slice(1);
  await rng[Symbol.asyncDispose]();
  assert.ok(!(await liaison.names()).includes(name));
});

test("references are freed when their connection closes", async () => {
  const other = await connect(`ws://127.0.0.1:${liaison.port}/`, { token: liaison.token });
  const refs = [await other.module("random").Random(1), await other.module("random").Random(2)];
  const names = refs.map((r) => JSON.parse(JSON.stringify(r)).slice(1));
  const current = await liaison.names();
  assert.ok(names.every((n) => current.includes(n)));
  await other.close();
  // The liaison learns of the close on its own schedule: ask, reply by reply.
  let left = names;
  for (let i = 0; i < 1000 && left.length; i++) left = names.filter(((known) => (n) => known.includes(n))(await liaison.names()));
  assert.deepEqual(left, []);
});

test("names do not grow over 200 create/release cycles", async () => {
  const before = await liaison.names();
  for (let i = 0; i < 200; i++) await liaison.release(await liaison.module("random").Random(i));
  assert.deepEqual(await liaison.names(), before);
});

test("a dropped proxy is released by the FinalizationRegistry, in one batch", async () => {
  assert.equal(typeof globalThis.gc, "function", "run with --expose-gc");
  const sent = [];
  const originalCall = liaison.call.bind(liaison);
  liaison.call = (command, args, ...rest) => {
    if (command === "release") sent.push(args);
    return originalCall(command, args, ...rest);
  };
  let names = [];
  await (async () => {
    const refs = [await liaison.module("random").Random(1), await liaison.module("random").Random(2)];
    names = refs.map((r) => JSON.parse(JSON.stringify(r)).slice(1));
  })();
  for (let i = 0; i < 200 && !names.every((n) => sent.flat().includes(n)); i++) {
    globalThis.gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  liaison.call = originalCall;
  // Proxies earlier tests dropped may be released in the same batch.
  assert.ok(sent.some((batch) => names.every((n) => batch.includes(n))), `one release for both: ${JSON.stringify(sent)}`);
  let left = names;
  for (let i = 0; i < 100 && left.length; i++) left = names.filter(((known) => (n) => known.includes(n))(await liaison.names()));
  assert.deepEqual(left, []);
});

test("module proxies are not references: no $name, no release", async () => {
  assert.throws(() => JSON.stringify([liaison.module("math")]), /module path/);
  await assert.rejects(liaison.release(liaison.module("math")), TypeError);
  const math = await liaison.module("math"); // a module proxy is not thenable: itself
  assert.equal(typeof math, "function");
  assert.equal(await math.sqrt(9), 3);
});
