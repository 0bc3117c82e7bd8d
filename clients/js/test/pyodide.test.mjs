// liaison-client/pyodide: the liaison itself in Pyodide, in a worker_threads Worker,
// behind the same Liaison API. The behaviour tests that hold for every transport run
// against the Python liaison over WebSocket and stdio too (spawned with LIAISON_PYTHON);
// then the documented differences (docs/protocol.md, "Guarantees per transport"), and
// that nothing here starts a process for Pyodide.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import childProcess from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

// Every child process this process starts is recorded (spawnLiaison's included), so the
// Pyodide tests can show they started none.
const started = [];
for (const name of ["spawn", "execFile", "exec", "fork", "spawnSync", "execFileSync", "execSync"]) {
  const original = childProcess[name];
  childProcess[name] = function (...args) {
    started.push([name, args[0]]);
    return original.apply(this, args);
  };
}
syncBuiltinESMExports();
const { spawnLiaison, RemoteError, bytes } = await import("../dist/node.js");
const { startPyodideLiaison, Liaison } = await import("../dist/pyodide.js");
const { Interrupter, InterruptRequests, SHARED_BYTES } = await import("../dist/pyodide/shared.js");

// The functions the tests call, importable by every liaison under test.
const HELPERS = `
import asyncio
import liaison


def steps(n):
    for i in range(n):
        liaison.progress({"step": i})
    return "done"


def count(n):
    yield from range(n)


def spin():
    """Busy Python code until interrupted; says so first, so a test knows it runs."""
    liaison.progress("spinning")
    while True:
        pass


async def nap(seconds):
    liaison.progress("napping")
    await asyncio.sleep(seconds)
    return "rested"


class Pusher:
    def __init__(self, handle):
        self.handle = handle

    def alert(self, text):
        self.handle.send({"tag": "alert", "text": text})
        return text


def flip(data):
    return bytes(reversed(data))
`;

const python = process.env.LIAISON_PYTHON ?? "python";
const helpersDir = mkdtempSync(join(tmpdir(), "liaison-pyodide-test-"));
writeFileSync(join(helpersDir, "shared_helpers.py"), HELPERS);
const spawned = { python, env: { PYTHONPATH: helpersDir }, timeout: 20000 };

/** The pids of this process's children now (Linux /proc), or undefined elsewhere. */
function childPids() {
  try {
    return readdirSync("/proc")
      .filter((name) => /^\d+$/.test(name))
      .filter((pid) => {
        try {
          const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
          return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === process.pid;
        } catch {
          return false; // gone meanwhile
        }
      })
      .map(Number);
  } catch {
    return undefined;
  }
}

const transports = {
  websocket: () => spawnLiaison(spawned),
  stdio: () => spawnLiaison({ ...spawned, transport: "stdio" }),
  pyodide: () => startPyodideLiaison({ files: { "shared_helpers.py": HELPERS } }),
};
const liaisons = {};

before(async () => {
  for (const [name, start] of Object.entries(transports)) liaisons[name] = await start();
});

after(async () => {
  for (const liaison of Object.values(liaisons)) await (liaison.stop ? liaison.stop() : liaison.close());
  rmSync(helpersDir, { recursive: true, force: true });
});

/** Resolves once the running command reports progress (so it surely runs). */
const runs = () => {
  let onProgress;
  const running = new Promise((resolve) => (onProgress = resolve));
  return { running, onProgress };
};

/** `body(liaison)` for every transport; for Pyodide, also checks that no process started. */
function forEachTransport(title, body) {
  describe(title, () => {
    for (const name of Object.keys(transports)) {
      test(name, async () => {
        const children = childPids();
        const count = started.length;
        await body(liaisons[name], name);
        if (name === "pyodide") {
          assert.deepEqual(started.slice(count), [], "no child process started");
          assert.deepEqual(childPids(), children, "no new child process");
        }
      });
    }
  });
}

forEachTransport("the same Liaison: calls, errors, get, exists, init, store", async (liaison) => {
  assert.ok(liaison instanceof Liaison);
  assert.equal(await liaison.run("operator:add", [2, 3]), 5);
  assert.equal(await liaison.get("math:pi"), Math.PI);
  assert.equal(await liaison.exists("math:no_such_thing"), false);
  assert.equal(await liaison.init("counter", "collections:Counter", ["abca"]), "counter");
  assert.equal(await liaison.get("counter.a"), 2);
  await assert.rejects(liaison.run("builtins:divmod", [1, 0]), (e) => e instanceof RemoteError && e.type === "ZeroDivisionError" && /division/.test(e.message));
  await assert.rejects(liaison.call("no_such_command"), (e) => e.type === "UnknownCommand");
  assert.equal(await liaison.ping(), "pong");
});

forEachTransport("progress reaches onProgress before the reply; generators stream", async (liaison) => {
  const progress = [];
  assert.equal(await liaison.run("shared_helpers:steps", [3], {}, { onProgress: (p) => progress.push(p) }), "done");
  assert.deepEqual(progress, [{ step: 0 }, { step: 1 }, { step: 2 }]);
  const items = [];
  assert.equal(await liaison.run("shared_helpers:count", [4], {}, { onPartial: (x) => items.push(x) }), 4);
  assert.deepEqual(items, [0, 1, 2, 3]);
  assert.deepEqual(await liaison.run("shared_helpers:count", [3]), [0, 1, 2]);
});

forEachTransport("liaison.send pushes reach on(tag)", async (liaison) => {
  await liaison.init("pusher", "shared_helpers:Pusher", ["$liaison"]);
  const pushed = new Promise((resolve) => liaison.once("alert", resolve));
  assert.equal(await liaison.run("pusher.alert", ["fire"]), "fire");
  assert.deepEqual(await pushed, { tag: "alert", text: "fire" });
});

forEachTransport("a timeout interrupts a busy loop: the liaison's TimeoutError", async (liaison) => {
  await assert.rejects(liaison.run("shared_helpers:spin", [], {}, { timeout: 300 }), (e) => {
    assert.equal(e.type, "TimeoutError");
    assert.ok(e.reply, "the liaison's own reply, not the client-side fallback");
    return true;
  });
  assert.equal(await liaison.run("operator:add", [1, 1]), 2);
});

forEachTransport("an AbortSignal cancels a running busy loop: CancelledError", async (liaison) => {
  const ac = new AbortController();
  const { running, onProgress } = runs();
  const call = liaison.run("shared_helpers:spin", [], {}, { signal: ac.signal, onProgress });
  await running;
  ac.abort();
  await assert.rejects(call, (e) => e.type === "CancelledError" && e.reply !== undefined);
  assert.equal(await liaison.run("operator:add", [1, 2]), 3);
});

forEachTransport("async def commands: control commands answer while they await; cancel reaches them", async (liaison) => {
  const { running, onProgress } = runs();
  const ac = new AbortController();
  const napping = liaison.run("shared_helpers:nap", [30], {}, { signal: ac.signal, onProgress });
  await running;
  assert.equal(await liaison.ping(), "pong");
  assert.ok((await liaison.names()).includes("counter"));
  ac.abort();
  await assert.rejects(napping, (e) => e.type === "CancelledError");
  assert.equal(await liaison.run("shared_helpers:nap", [0]), "rested");
});

forEachTransport("proxies, references and release", async (liaison) => {
  assert.equal(await liaison.module("statistics").mean([1, 2, 3, 4]), 2.5);
  const rng = await liaison.module("random").Random(42);
  assert.equal(typeof rng, "function");
  assert.equal(await rng.randint(7, 7), 7);
  const name = JSON.parse(JSON.stringify({ r: rng })).r.slice(1);
  assert.ok((await liaison.names()).includes(name));
  assert.ok((await liaison.describe(name)).doc.includes("Random"));
  await liaison.release(rng);
  assert.ok(!(await liaison.names()).includes(name));
  assert.ok("run" in (await liaison.commands()));
});

forEachTransport("binary frames both ways: raw bytes in, raw bytes out", async (liaison) => {
  const payload = new Uint8Array(1 << 20).map((_, i) => i & 0xff);
  const flipped = await liaison.run("shared_helpers:flip", [bytes(payload)], {}, { binary: true });
  assert.ok(flipped instanceof Uint8Array);
  assert.equal(flipped.length, payload.length);
  assert.equal(flipped[0], payload[payload.length - 1]);
  // Number arrays travel raw too (list placeholders), and come back as a list.
  const numbers = Array.from({ length: 4096 }, (_, i) => i / 2);
  assert.equal(await liaison.run("builtins:sum", [numbers]), (4095 * 4096) / 4);
});

describe("documented differences of the Pyodide transport", () => {
  let liaison;
  before(() => {
    liaison = liaisons.pyodide;
  });

  test("its address is 'pyodide', and no process can be started from it", async () => {
    const count = started.length;
    assert.equal(liaison.url, "pyodide");
    assert.equal(await liaison.get("liaison.address"), "pyodide");
    await assert.rejects(liaison.run("subprocess:run", [["python3", "-c", "1"]]), (e) => e instanceof RemoteError);
    assert.deepEqual(started.slice(count), []);
  });

  test("cancels in a row each interrupt a busy loop", async () => {
    const outcomes = [];
    for (let i = 0; i < 50; i++) {
      const ac = new AbortController();
      const { running, onProgress } = runs();
      const call = liaison.run("shared_helpers:spin", [], {}, { signal: ac.signal, onProgress, timeout: 10_000 });
      await running;
      ac.abort();
      outcomes.push(await call.catch((e) => `${e.type}${e.reply ? "" : " (client-side)"}`));
    }
    assert.deepEqual(outcomes, Array(50).fill("CancelledError"));
  });

  test("a write to the interrupt buffer that Pyodide loses is made again until the worker takes it", async () => {
    // Pyodide reads its interrupt buffer and then zeroes it, not atomically: a write in
    // between is lost (it happened in ~3% of this file's runs before the rewrite).
    const shared = new SharedArrayBuffer(SHARED_BYTES);
    const words = new Int32Array(shared);
    const interrupter = new Interrupter(shared);
    try {
      Atomics.store(words, 1, 7); // command 7 runs
      interrupter.cancel("x");
      assert.equal(Atomics.load(words, 0), 2);
      Atomics.store(words, 0, 0); // the lost write
      const deadline = Date.now() + 3000;
      while (Atomics.load(words, 0) === 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(Atomics.load(words, 0), 2, "written again");
      assert.equal(new InterruptRequests(shared, () => undefined).take(), 'cancel:"x"');
    } finally {
      interrupter.close();
    }
  });

  test("concurrent: true is refused: there are no threads", async () => {
    await assert.rejects(liaison.run("operator:add", [1, 2], {}, { concurrent: true }), (e) => e.type === "Unsupported" && /threads/.test(e.message));
  });

  test("a ping sent while a synchronous command runs is answered after it (over WebSocket: at once)", async () => {
    for (const [name, first] of [["pyodide", "run"], ["websocket", "ping"]]) {
      const order = [];
      const { running, onProgress } = runs();
      const ac = new AbortController();
      const spinning = liaisons[name].run("shared_helpers:spin", [], {}, { signal: ac.signal, onProgress }).catch((e) => order.push(`run ${e.type}`));
      await running;
      const ping = liaisons[name].ping().then(() => order.push("ping"));
      if (name === "websocket") await ping;
      ac.abort();
      await Promise.all([spinning, ping]);
      assert.equal(order[0].split(" ")[0], first, `${name}: ${order}`);
    }
  });

  test("shutdown stops the liaison: the connection closes with 1000 and the worker ends", async () => {
    const count = started.length;
    const other = await startPyodideLiaison();
    const closed = new Promise((resolve) => other.once("close", resolve));
    const napping = other.run("asyncio:sleep", [30]);
    assert.equal(await other.shutdown(), true);
    await assert.rejects(napping, (e) => e.type === "CancelledError" && /shutting down/.test(e.message));
    assert.equal((await closed).code, 1000);
    assert.equal(other.connected, false);
    assert.deepEqual(started.slice(count), []);
  });

  test("worker: false runs the liaison on this thread", async () => {
    const count = started.length;
    // Files may sit in packages; only the files given are importable; a file named like
    // the liaison's package does not shadow it.
    const files = { "mine/__init__.py": "", "mine/tool.py": HELPERS, "liaison.py": "raise ImportError('shadowed')\n" };
    const here = await startPyodideLiaison({ worker: false, files });
    try {
      const progress = [];
      assert.equal(await here.run("mine.tool:steps", [2], {}, { onProgress: (p) => progress.push(p) }), "done");
      assert.deepEqual(progress, [{ step: 0 }, { step: 1 }]);
      await assert.rejects(here.run("shared_helpers:steps", [2]), (e) => e.type === "ModuleNotFoundError");
    } finally {
      await here.close();
    }
    assert.deepEqual(started.slice(count), []);
  });

  test("a start that fails rejects with the reason and ends the worker", async () => {
    await assert.rejects(startPyodideLiaison({ files: { "../escape.py": "" } }), (e) => e.type === "SpawnError" && /escape/.test(e.message));
  });
});
