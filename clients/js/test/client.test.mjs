// Tests of the client's own logic against an in-process fake liaison (the `ws` package's
// server), so that they run without Python: routing, ids, timeouts, aborts, closing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { readFileSync, readdirSync } from "node:fs";
import { WebSocketServer } from "ws";
import { connect, LiaisonError, encodeFrame, RemoteError, CallCancelled, CallTimeout, ConnectFailed, ConnectionLost } from "../dist/index.js";

let server;
let url;
let handler = () => {};
const lastRequest = {};
const configured = []; // what each connection sent with `configure`, in order
let ignoreConfigure = false; // a liaison that never answers `configure`

before(async () => {
  server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  server.on("connection", (ws, req) => {
    lastRequest.url = req.url;
    if (new URL(req.url, "http://x").searchParams.get("token") === "slam") {
      ws.close(4000, "go away");
      return;
    }
    ws.on("message", (data, isBinary) => {
      const msg = isBinary ? { binaryFrame: data } : JSON.parse(String(data));
      if (msg.command?.command === "configure") {
        configured.push(msg.command.kwargs);
        if (ignoreConfigure) return;
        reply(ws, msg, msg.command.kwargs);
        return;
      }
      handler(msg, ws);
    });
  });
  await once(server, "listening");
  url = `ws://127.0.0.1:${server.address().port}/`;
});

after(() => {
  for (const c of server.clients) c.terminate();
  server.close();
});

const reply = (ws, msg, response) => ws.send(JSON.stringify({ response, tag: "response", evt: msg, id: msg.id }));
const errorReply = (ws, msg, type, message) =>
  ws.send(JSON.stringify({ error: ["Traceback (most recent call last):\n", `${type}: ${message}\n`], tag: "error", evt: msg, id: msg.id, exception: { type, message } }));

test("sends the documented message shape, token in the URL, and resolves with response", async () => {
  const seen = [];
  handler = (msg, ws) => {
    seen.push(msg);
    reply(ws, msg, msg.command.command === "run" ? 42 : "pong");
  };
  const l = await connect(url, { token: "s3cr3t&x", timeout: 5000 });
  assert.equal(new URL(lastRequest.url, "http://x").searchParams.get("token"), "s3cr3t&x");
  assert.ok(!l.url.includes("s3cr3t"), "the token is hidden in liaison.url");
  assert.equal(await l.run("operator:add", [40, 2], { k: 1 }, { concurrent: true, echo: false }), 42);
  assert.equal(await l.ping({ timeout: null }), "pong");
  assert.deepEqual(seen[0].command, { command: "run", args: ["operator:add", 40, 2], kwargs: { k: 1 } });
  assert.match(seen[0].id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(seen[0].timeout, 5, "the connection's timeout (ms) is sent in seconds");
  assert.equal(seen[0].concurrent, true);
  assert.equal(seen[0].echo, false);
  assert.equal(seen[0].stream, undefined);
  assert.equal(seen[1].timeout, undefined, "timeout: null disables the default");
  assert.equal(seen[1].echo, false, "echo is off by default, as in the Python client");
  await l.run("f", [], {}, { echo: true });
  assert.equal(seen[2].echo, true);
  await l.close();
});

test("errors have the Python client's classes, and keep their types", async () => {
  handler = (msg, ws) => {
    const type = msg.command.args[1];
    if (type === "silent") return;
    errorReply(ws, msg, type, "it failed");
  };
  const l = await connect(url);
  const checks = [
    ["ZeroDivisionError", RemoteError],
    ["CancelledError", CallCancelled],
    ["TimeoutError", CallTimeout],
  ];
  for (const [type, Class] of checks) {
    await assert.rejects(l.run("f", [type]), (e) => {
      assert.ok(e instanceof Class && e instanceof RemoteError && e instanceof LiaisonError, type);
      assert.equal(e.type, type);
      assert.equal(e.name, Class.name);
      return true;
    });
  }
  await assert.rejects(l.run("f", ["silent"], {}, { timeout: 50 }), (e) => e instanceof CallTimeout && e.type === "TimeoutError" && e.reply === undefined);
  await l.close();
  await assert.rejects(l.ping(), (e) => e instanceof ConnectionLost && e.type === "ConnectionClosed");
  await assert.rejects(connect("ws://127.0.0.1:1/"), (e) => e instanceof ConnectFailed && e.type === "ConnectionError");
});

test("matches replies by id when they arrive out of order", async () => {
  const held = [];
  handler = (msg, ws) => {
    held.push(msg);
    if (held.length === 3) for (const m of held.reverse()) reply(ws, m, m.command.args[1]);
  };
  const l = await connect(url);
  const results = await Promise.all([l.run("f", [1]), l.run("f", [2]), l.run("f", [3])]);
  assert.deepEqual(results, [1, 2, 3]);
  await l.close();
});

test("an error reply rejects with LiaisonError type, message, traceback and reply", async () => {
  handler = (msg, ws) => errorReply(ws, msg, "ZeroDivisionError", "division by zero");
  const l = await connect(url);
  await assert.rejects(l.run("operator:truediv", [1, 0]), (e) => {
    assert.ok(e instanceof LiaisonError && e instanceof Error);
    assert.equal(e.type, "ZeroDivisionError");
    assert.equal(e.message, "division by zero");
    assert.match(e.traceback, /^Traceback[\s\S]*ZeroDivisionError: division by zero\n$/);
    assert.equal(e.reply.exception.type, "ZeroDivisionError");
    return true;
  });
  // A 1.0-style reply without "exception": type and message come from the traceback.
  handler = (msg, ws) => ws.send(JSON.stringify({ error: ["Traceback...\n", "KeyError: 'x'\n"], tag: "error", evt: msg, id: msg.id }));
  await assert.rejects(l.get("d.x"), { type: "KeyError", message: "'x'" });
  await l.close();
});

test("routes pushed messages by tag, untagged ones to 'message', and progress/partial to the call", async () => {
  handler = (msg, ws) => {
    ws.send(JSON.stringify({ tag: "alert", text: "hi" }));
    ws.send(JSON.stringify({ text: "untagged" }));
    ws.send(JSON.stringify({ tag: "progress", id: msg.id, progress: 0.5 }));
    ws.send(JSON.stringify({ tag: "partial", id: msg.id, partial: "a" }));
    ws.send(JSON.stringify({ tag: "partial", id: msg.id, partial: "b" }));
    reply(ws, msg, 2);
  };
  const l = await connect(url);
  const alerts = [];
  const untagged = [];
  const all = [];
  const onAlert = (m) => alerts.push(m);
  l.on("alert", onAlert).on("message", (m) => untagged.push(m)).on("*", (m) => all.push(m));
  const progress = [];
  const partial = [];
  const n = await l.run("gen", [], {}, { onProgress: (p) => progress.push(p), onPartial: (x) => partial.push(x) });
  assert.equal(n, 2);
  assert.deepEqual(progress, [0.5]);
  assert.deepEqual(partial, ["a", "b"]);
  assert.deepEqual(alerts, [{ tag: "alert", text: "hi" }]);
  assert.deepEqual(untagged, [{ text: "untagged" }]);
  assert.equal(all.length, 2);
  l.off("alert", onAlert);
  await l.run("gen");
  assert.equal(alerts.length, 1, "off() removed the handler");
  await l.close();
});

test("onPartial sets stream: true; binary: true sends typed arrays in a binary frame and decodes binary replies", async () => {
  const seen = [];
  handler = (msg, ws) => {
    seen.push(msg);
    if (msg.binaryFrame) {
      const buf = msg.binaryFrame;
      const frame = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
      const hlen = new DataView(frame).getUint32(0, true);
      const header = JSON.parse(new TextDecoder().decode(new Uint8Array(frame, 4, hlen)));
      // Echo the argument back in a binary reply.
      const [off, nbytes] = header.buffers[0];
      const out = encodeFrame({ response: new Float64Array(frame.slice(off, off + nbytes)), tag: "response", id: header.id });
      ws.send(new Uint8Array(out), { binary: true });
    } else reply(ws, msg, 0);
  };
  const l = await connect(url);
  await l.run("gen", [], {}, { onPartial: () => {} });
  assert.equal(seen[0].stream, true);
  const r = await l.run("numpy:asarray", [new Float64Array([1.5, 2.5])], {}, { binary: true });
  assert.ok(r instanceof Float64Array);
  assert.deepEqual(Array.from(r), [1.5, 2.5]);
  assert.deepEqual(r.shape, [2]);
  // binary: true without typed arrays still sends text, with "binary": true
  await l.run("f", [1], {}, { binary: true });
  assert.equal(seen[2].binary, true);
  // without binary: true, typed arrays go as JSON arrays
  await l.run("f", [new Int32Array([1, 2])]);
  assert.deepEqual(seen[3].command.args[1], [1, 2]);
  await l.close();
});

test("a call with no reply rejects client-side with TimeoutError shortly after its timeout, and sends cancel", async () => {
  const seen = [];
  handler = (msg, ws) => {
    seen.push(msg);
    if (msg.command.command !== "run") reply(ws, msg, msg.command.command === "cancel" ? true : "pong");
  };
  const l = await connect(url);
  const t0 = Date.now();
  await assert.rejects(l.run("time:sleep", [30], {}, { timeout: 100 }), { type: "TimeoutError" });
  const dt = Date.now() - t0;
  assert.ok(dt >= 100 && dt < 2500, `rejected after ${dt} ms`);
  assert.equal(seen[0].timeout, 0.1);
  await l.ping(); // the cancel was sent before this ping, so the server has seen it
  assert.equal(seen[1].command.command, "cancel");
  assert.deepEqual(seen[1].command.args, [seen[0].id]);
  await assert.rejects(l.run("f", [], {}, { timeout: 0 }), RangeError);
  await l.close();
});

test("aborting sends cancel with the call's id and rejects with the server's CancelledError", async () => {
  const seen = [];
  let running;
  handler = (msg, ws) => {
    seen.push(msg);
    if (msg.command.command === "run") running = msg;
    if (msg.command.command === "cancel") {
      errorReply(ws, running, "CancelledError", "cancelled");
      reply(ws, msg, true);
    }
  };
  const l = await connect(url);
  const ac = new AbortController();
  const p = l.run("time:sleep", [30], {}, { signal: ac.signal, id: "my-id" });
  ac.abort();
  await assert.rejects(p, { type: "CancelledError" });
  assert.deepEqual(seen[1].command, { command: "cancel", args: ["my-id"], kwargs: {} });
  // Already aborted: rejects at once with AbortError, nothing sent.
  await assert.rejects(l.run("f", [], {}, { signal: AbortSignal.abort() }), { type: "AbortError" });
  assert.equal(seen.length, 2);
  await l.close();
});

test("close() rejects every pending call at once with ConnectionClosed; later calls too", async () => {
  handler = () => {};
  const l = await connect(url);
  const closes = [];
  l.on("close", (info) => closes.push(info));
  const a = l.run("time:sleep", [30]);
  const b = l.get("x");
  assert.equal(l.pendingCount, 2);
  const closed = l.close();
  await assert.rejects(a, { type: "ConnectionClosed" });
  await assert.rejects(b, { type: "ConnectionClosed" });
  await closed;
  assert.equal(closes.length, 1);
  assert.equal(l.connected, false);
  await assert.rejects(l.ping(), { type: "ConnectionClosed" });
  // abort on a dead connection: AbortError at once
  await assert.rejects(l.ping({ signal: AbortSignal.abort() }), { type: "ConnectionClosed" });
});

test("the server closing the connection rejects pending calls and fires on('close')", async () => {
  handler = (msg, ws) => ws.close(1011, "boom");
  const l = await connect(url);
  const closed = new Promise((resolve) => l.on("close", resolve));
  await assert.rejects(l.run("f"), (e) => e.type === "ConnectionClosed" && /1011/.test(e.message));
  assert.equal((await closed).code, 1011);
});

test("an abort after the connection is gone rejects with AbortError", async () => {
  let sock;
  handler = (msg, ws) => {
    sock = ws;
  };
  const l = await connect(url);
  const ac = new AbortController();
  const p = l.run("time:sleep", [30], {}, { signal: ac.signal });
  await l.ping({ timeout: 50 }).catch(() => {}); // the handler has now seen the run
  sock.terminate();
  await assert.rejects(p, (e) => e.type === "ConnectionClosed" || e.type === "AbortError");
});

test("connection failures: refused port, HTTP 401, connect timeout", async () => {
  const ws401 = new WebSocketServer({ host: "127.0.0.1", port: 0, verifyClient: (_info, cb) => cb(false, 401) });
  await once(ws401, "listening");
  try {
    await assert.rejects(connect(`ws://127.0.0.1:${ws401.address().port}/`, { token: "nope" }), (e) => {
      assert.equal(e.type, "ConnectionError");
      assert.match(e.message, /401/);
      assert.ok(!e.message.includes("nope"), "the token is not in the message");
      return true;
    });
  } finally {
    ws401.close();
  }
  await assert.rejects(connect("ws://127.0.0.1:1/"), { type: "ConnectionError" });
  await assert.rejects(connect("not a url"), { type: "ConnectionError" });
  // A TCP server that never answers the handshake.
  const net = await import("node:net");
  const silent = net.createServer(() => {});
  silent.listen(0, "127.0.0.1");
  await once(silent, "listening");
  try {
    const t0 = Date.now();
    await assert.rejects(connect(`ws://127.0.0.1:${silent.address().port}/`, { timeout: 200 }), { type: "TimeoutError" });
    assert.ok(Date.now() - t0 < 2000);
  } finally {
    silent.close();
  }
});

test("the browser entry uses no Node built-ins", () => {
  const dist = new URL("../dist/", import.meta.url);
  for (const f of readdirSync(dist).filter((f) => f.endsWith(".js") && f !== "node.js")) {
    const src = readFileSync(new URL(f, dist), "utf8");
    const code = src.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, ""); // comments may name Node things
    for (const [, spec] of code.matchAll(/\bfrom\s+["']([^"']+)["']/g)) assert.match(spec, /^\.\/(?!node\.js)/, `${f} imports ${spec}`);
    assert.doesNotMatch(code, /["']node:|\brequire\(|\bprocess\.|\bBuffer\./, f);
  }
});

test("connect asks for pushed messages at once, before any call", async () => {
  configured.length = 0;
  const seen = [];
  handler = (msg, ws) => {
    seen.push(msg.command.command);
    reply(ws, msg, "pong");
  };
  const l = await connect(url);
  assert.deepEqual(configured, [{ pushes: "immediate" }]);
  assert.equal(await l.ping(), "pong");
  assert.deepEqual(seen, ["ping"]);
  await l.close();
});

test("connect does not hang on a liaison that never answers configure", { timeout: 10_000 }, async () => {
  ignoreConfigure = true;
  try {
    handler = (msg, ws) => reply(ws, msg, "pong");
    const l = await connect(url); // no call timeout: only configure's own bound ends the wait
    assert.equal(await l.ping(), "pong");
    await l.close();
  } finally {
    ignoreConfigure = false;
  }
});
