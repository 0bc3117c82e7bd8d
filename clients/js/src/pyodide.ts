/**
 * liaison-client/pyodide: the liaison itself, in Pyodide (CPython compiled to
 * WebAssembly), in a worker of this page or Node process: no Python installed, no
 * process, no socket. {@link startPyodideLiaison} resolves with the same
 * {@link Liaison} that `connect` and `spawnLiaison` give.
 *
 * The client's thread and the worker exchange the liaison's messages as they are:
 * strings, and ArrayBuffers transferred (binary frames). Where a SharedArrayBuffer can
 * be made (Node; browsers when the page is cross-origin isolated), cancel and timeout
 * interrupt a running synchronous command through Pyodide's interrupt buffer
 * (pyodide/shared.ts).
 */
import { Liaison, receivePushesAtOnce, type WebSocketLike } from "./client.js";
import { LiaisonError, SpawnError } from "./errors.js";
import type { Control, HostPort, StartOptions } from "./pyodide/serve.js";
import { Interrupter, SHARED_BYTES } from "./pyodide/shared.js";

export * from "./index.js";

export interface PyodideOptions {
  /**
   * `true`: the liaison runs in a worker (a module Web Worker in browsers, a
   * `worker_threads` Worker in Node), and the page stays responsive while commands run.
   * `false`: on this thread, which each synchronous command then blocks, and which no
   * cancel or timeout can interrupt. Default: `true`.
   */
  worker?: boolean;
  /** Python files, `{ "name.py": source }` (or `"pkg/mod.py"`), importable by commands. Default: none. */
  files?: Record<string, string>;
  /** Pyodide packages to load first, e.g. `["numpy"]` (from `indexURL`, or Pyodide's CDN in Node when not installed). Default: none. */
  packages?: string[];
  /**
   * Where Pyodide's files are served (a URL ending in `/`): needed in browsers; in Node
   * the `pyodide` package installed with this one. Default: none.
   */
  indexURL?: string;
  /** Milliseconds for Pyodide to load and the liaison to be ready. Default: `60000`. */
  timeout?: number;
  /** Default timeout (ms) of every call on the returned connection. Default: none. */
  callTimeout?: number;
  /** Sets the returned connection's `binaryNumberArrays`. Default: true. */
  binaryNumberArrays?: boolean;
}

/** What `liaison.url` is for a liaison in Pyodide (and `liaison.address` in Python). */
export const PYODIDE_URL = "pyodide";

type Listener = (event: any) => void;

/**
 * A {@link WebSocketLike} over the channel to the liaison's worker: OPEN from the start
 * (it is made once the liaison is ready). It closes when the liaison stops (`shutdown`:
 * code 1000), when the worker fails (1006), or on `close()`, which ends the worker.
 */
class WorkerSocket implements WebSocketLike {
  readyState = 1;
  binaryType = "arraybuffer";
  #port: HostPort;
  #end: () => void;
  #interrupter: Interrupter | undefined;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #listeners = new Map<string, Set<Listener>>();

  constructor(port: HostPort, end: () => void, interrupter: Interrupter | undefined) {
    this.#port = port;
    this.#end = end;
    this.#interrupter = interrupter;
  }

  /** A message from the worker, after `ready`. */
  received(message: unknown): void {
    if (this.readyState !== 1) return;
    if (typeof message === "string" || message instanceof ArrayBuffer) {
      this.#emit("message", { data: message });
      return;
    }
    const control = message as Control;
    if (control?.liaison === "arm") {
      const interrupter = this.#interrupter;
      if (!interrupter) return;
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        interrupter.timeout(control.seq);
      }, control.ms);
      this.#timers.add(timer);
    } else if (control?.liaison === "stopped") {
      this.#closed(1000, "the liaison stopped", true);
    }
  }

  /** The worker died (an uncaught error, or it exited). */
  failed(reason: string): void {
    this.#closed(1006, reason, false);
  }

  send(data: string | ArrayBuffer | ArrayBufferView): void {
    if (this.readyState !== 1) throw new Error("the liaison has stopped");
    if (typeof data === "string") {
      // A cancel must reach a command the worker is busy running: through shared memory.
      if (this.#interrupter?.busy && data.startsWith('{"command":{"command":"cancel"')) this.#cancel(data);
      this.#port.post(data);
    } else if (data instanceof ArrayBuffer) {
      this.#port.post(data, [data]); // the client encoded it for this message alone
    } else {
      const copy = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
      this.#port.post(copy, [copy]);
    }
  }

  #cancel(text: string): void {
    try {
      const args = JSON.parse(text)?.command?.args;
      if (Array.isArray(args) && args.length === 1) this.#interrupter?.cancel(args[0]);
    } catch {
      /* the liaison answers a malformed cancel itself */
    }
  }

  /** Ends the worker (and a running command with it). */
  close(): void {
    this.#closed(1000, "closed by the client", true);
  }

  #closed(code: number, reason: string, wasClean: boolean): void {
    if (this.readyState >= 2) return;
    this.readyState = 3;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#interrupter?.close();
    this.#end();
    this.#emit("close", { code, reason, wasClean });
  }

  addEventListener(type: string, listener: Listener): void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener);
  }

  removeEventListener(type: string, listener: Listener): void {
    this.#listeners.get(type)?.delete(listener);
  }

  #emit(type: string, event: unknown): void {
    for (const listener of [...(this.#listeners.get(type) ?? [])]) listener(event);
  }
}

/** The client's end of a channel, and how to end the other side. */
interface Channel {
  port: HostPort;
  /** Called once with a reason if the other side dies. */
  onFailure(handler: (reason: string) => void): void;
  end(): void;
}

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === "string" && typeof (globalThis as { Worker?: unknown }).Worker !== "function";
}

async function workerChannel(): Promise<Channel> {
  if (!isNode()) {
    const worker = new Worker(new URL("./pyodide/worker.js", import.meta.url), { type: "module" });
    return {
      port: {
        post: (message, transfer) => worker.postMessage(message, transfer ?? []),
        listen: (handler) => worker.addEventListener("message", (event) => handler(event.data)),
      },
      onFailure: (handler) => worker.addEventListener("error", (event) => handler(`the liaison's worker failed: ${event.message ?? "an error"}`)),
      end: () => worker.terminate(),
    };
  }
  // Built, not written out: bundlers for the browser then leave it alone (only Node gets here).
  const name = ["node", "worker_threads"].join(":");
  const { Worker: NodeWorker } = await import(/* webpackIgnore: true */ /* @vite-ignore */ name);
  const worker = new NodeWorker(new URL("./pyodide/worker.js", import.meta.url));
  let ended = false;
  return {
    port: {
      post: (message, transfer) => worker.postMessage(message, transfer ?? []),
      listen: (handler) => worker.on("message", handler),
    },
    onFailure: (handler) => {
      worker.on("error", (e: Error) => handler(`the liaison's worker failed: ${e.message}`));
      worker.on("exit", (code: number) => {
        if (!ended) handler(`the liaison's worker exited with code ${code}`);
      });
    },
    end: () => {
      ended = true;
      void worker.terminate();
    },
  };
}

/** Both ends on this thread, over a MessageChannel (messages stay asynchronous, as with a worker). */
async function sameThreadChannel(options: StartOptions): Promise<Channel> {
  const { serve } = await import("./pyodide/serve.js");
  const { port1, port2 } = new MessageChannel();
  const end = (port: MessagePort): HostPort => ({
    post: (message, transfer) => port.postMessage(message, transfer ?? []),
    listen: (handler) => {
      port.onmessage = (event) => handler(event.data);
    },
  });
  void serve(end(port2), options);
  return {
    port: end(port1),
    onFailure: () => undefined,
    end: () => {
      port1.close();
      port2.close();
    },
  };
}

/** A SharedArrayBuffer when this context can make and share one (Node; browsers when cross-origin isolated). */
function sharedMemory(): SharedArrayBuffer | undefined {
  const g = globalThis as { crossOriginIsolated?: boolean };
  if (typeof SharedArrayBuffer !== "function" || g.crossOriginIsolated === false) return undefined;
  return new SharedArrayBuffer(SHARED_BYTES);
}

/**
 * Starts the liaison in Pyodide and resolves with a connection to it, once Pyodide has
 * loaded and the liaison is ready. Rejects with a {@link LiaisonError} (`SpawnError`, or
 * `TimeoutError` past `timeout`) if it cannot start; the worker is then ended.
 *
 * `close()` ends the worker; `shutdown()` stops the liaison, which then closes the
 * connection (code 1000) and ends the worker.
 */
export async function startPyodideLiaison(options: PyodideOptions = {}): Promise<Liaison> {
  const inWorker = options.worker ?? true;
  const timeout = options.timeout ?? 60_000;
  const shared = inWorker ? sharedMemory() : undefined;
  const start: StartOptions = { files: options.files, packages: options.packages, indexURL: options.indexURL, shared };
  let channel: Channel;
  try {
    channel = inWorker ? await workerChannel() : await sameThreadChannel(start);
  } catch (e) {
    throw new SpawnError("SpawnError", `cannot start the liaison's worker: ${(e as Error).message}`, { cause: e });
  }
  const socket = await new Promise<WorkerSocket>((resolve, reject) => {
    let socket: WorkerSocket | undefined;
    const fail = (error: LiaisonError) => {
      clearTimeout(timer);
      channel.end();
      reject(error);
    };
    const timer = setTimeout(() => fail(new SpawnError("TimeoutError", `the liaison in Pyodide was not ready within ${timeout} ms`)), timeout);
    channel.onFailure((reason) => {
      if (socket) socket.failed(reason);
      else fail(new SpawnError("SpawnError", reason));
    });
    channel.port.listen((message) => {
      if (socket) {
        socket.received(message);
        return;
      }
      const control = message as Control;
      if (control?.liaison === "ready") {
        clearTimeout(timer);
        socket = new WorkerSocket(channel.port, () => channel.end(), shared ? new Interrupter(shared) : undefined);
        resolve(socket);
      } else if (control?.liaison === "failed") {
        fail(new SpawnError("SpawnError", `the liaison in Pyodide could not start: ${control.error}`));
      }
    });
    if (inWorker) channel.port.post({ liaison: "start", options: start } satisfies Control);
  });
  const liaison = new Liaison(socket, { url: PYODIDE_URL, timeout: options.callTimeout, binaryNumberArrays: options.binaryNumberArrays });
  await receivePushesAtOnce(liaison);
  return liaison;
}
