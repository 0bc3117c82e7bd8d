// spawnLiaison({transport: "stdio"}): the same Liaison API over the child's stdin and stdout
// (`python -m liaison.stdio`), against the real Python liaison; and the framing in-process.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { spawnLiaison, RemoteError } from "../dist/node.js";
import { LineReader, encodeTextLine } from "../dist/stdio.js";

const python = process.env.LIAISON_PYTHON ?? "python";
const repo = fileURLToPath(new URL("../../../", import.meta.url));
const options = { python, env: { PYTHONPATH: `${repo}tests` }, timeout: 20000, transport: "stdio" };

let liaison;

before(async () => {
  liaison = await spawnLiaison(options);
});

after(async () => {
  await liaison?.stop();
});

test("commands run over stdio, errors reject as over WebSocket", async () => {
  assert.equal(liaison.url, "stdio");
  assert.equal(liaison.host, "stdio");
  assert.equal(liaison.port, 0);
  assert.equal(liaison.token, "");
  const cmdline = readFileSync(`/proc/${liaison.process.pid}/cmdline`, "utf8");
  assert.deepEqual(cmdline.split("\0").slice(1, 3), ["-m", "liaison.stdio"]);
  assert.equal(await liaison.run("statistics:mean", [[1, 2, 3]]), 2);
  assert.equal(await liaison.get("liaison.address"), "stdio");
  assert.equal(await liaison.ping(), "pong");
  // A text message with a newline inside a string and one starting like a header.
  assert.equal(await liaison.run("builtins:str", ["two\nlines #3"]), "two\nlines #3");
  await assert.rejects(liaison.run("builtins:divmod", [1, 0]), (e) => e instanceof RemoteError && e.type === "ZeroDivisionError");
  const steps = [];
  await liaison.run("remote_helpers:report_progress", [2], {}, { onProgress: (s) => steps.push(s.step) });
  assert.deepEqual(steps, [0, 1]);
});

test("what a command prints goes to stderr and leaves the channel intact", async () => {
  assert.equal(await liaison.run("builtins:print", ["{printed, not a message}"]), null);
  assert.equal(await liaison.run("os:system", ["echo from C-level code"]), 0);
  assert.equal(await liaison.ping(), "pong");
  assert.match(liaison.stderr, /\{printed, not a message\}/);
  assert.match(liaison.stderr, /from C-level code/);
});

test("pushed messages arrive at once (configure pushes=immediate)", async () => {
  await liaison.init("pusher", "remote_helpers:Pusher", ["$liaison"]);
  const pushed = new Promise((resolve) => liaison.once("alert", resolve));
  assert.equal(await liaison.run("pusher.alert", ["hello"]), "hello");
  assert.deepEqual(await pushed, { tag: "alert", text: "hello" });
});

test("binary frames both ways: numpy replies as typed arrays, a 2 MB typed array raw", async () => {
  const arrays = await liaison.run("remote_helpers:arrays", [3], {}, { binary: true });
  assert.ok(arrays[2] instanceof Float64Array);
  assert.deepEqual(Array.from(arrays[2]), [0, 1]);
  const big = Object.assign(new Float64Array(262144).map((_, i) => i), { shape: [262144] });
  const doubled = await liaison.run("numpy:multiply", [big, 2], {}, { binary: true });
  assert.ok(doubled instanceof Float64Array);
  assert.equal(doubled.length, big.length);
  assert.equal(doubled[262143], 2 * 262143);
});

test("stop() stops the child with status 0; closing stdin does too", async () => {
  const other = await spawnLiaison(options);
  assert.equal(await other.ping(), "pong");
  const closed = new Promise((resolve) => other.once("close", resolve));
  assert.equal(await other.stop(), 0);
  assert.equal((await closed).code, 1000); // the stop marker came last
  assert.equal(other.connected, false);
  const third = await spawnLiaison(options);
  let onProgress;
  const runs = new Promise((resolve) => (onProgress = resolve));
  const running = assert.rejects(third.run("remote_helpers:announce_then_sleep", [1], {}, { onProgress }), /closed by the client/);
  await runs;
  await third.close(); // EOF on its stdin: the running command finishes, then the liaison stops
  assert.equal(await third.exited, 0);
  await running;
});

test("LineReader splits lines and frames across chunks; encodeTextLine keeps one line", () => {
  const bytes = Buffer.concat([Buffer.from('{"a": 1}\n\n#3\n'), Buffer.from([0, 10, 255]), Buffer.from("\n{\"b\": 2}\n")]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const reader = new LineReader();
    const pieces = [...reader.feed(bytes.subarray(0, cut)), ...reader.feed(bytes.subarray(cut))];
    assert.equal(pieces.length, 3, `cut at ${cut}`);
    assert.equal(pieces[0], '{"a": 1}');
    assert.deepEqual([...new Uint8Array(pieces[1])], [0, 10, 255]);
    assert.equal(pieces[2], '{"b": 2}');
  }
  assert.throws(() => new LineReader().feed(Buffer.from("#x\n")), /bad binary frame header/);
  assert.equal(encodeTextLine('{\n"a": "#"}'), '{ "a": "#"}\n');
  assert.equal(encodeTextLine("#1"), " #1\n");
});
