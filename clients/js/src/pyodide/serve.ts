/**
 * The side that runs Python: loads Pyodide, writes the liaison's package and the
 * user's files into its file system, starts the host (liaison.server.transports.pyodide)
 * and passes messages between it and a {@link HostPort}. Runs in the worker
 * (worker.ts), or on the client's own thread when `worker: false`.
 */
import { FALLBACK_FILES, PYTHON_FILES } from "./python-files.js";
import { InterruptRequests, interruptBuffer } from "./shared.js";

/** What the worker and the client's thread say to each other, besides the liaison's messages (strings and ArrayBuffers). */
export type Control =
  | { liaison: "start"; options: StartOptions }
  | { liaison: "ready" }
  | { liaison: "failed"; error: string }
  | { liaison: "arm"; seq: number; ms: number }
  | { liaison: "stopped" };

export interface StartOptions {
  files?: Record<string, string>;
  packages?: string[];
  indexURL?: string;
  shared?: SharedArrayBuffer;
}

/** One end of the channel, whatever carries it (a Worker, worker_threads, a MessagePort). */
export interface HostPort {
  post(message: unknown, transfer?: Transferable[]): void;
  listen(handler: (message: unknown) => void): void;
}

const LIAISON_DIR = "/lib/liaison-python";
const FALLBACK_DIR = "/lib/liaison-fallback";
const FILES_DIR = "/home/pyodide/liaison-files";

function dirname(path: string): string {
  return path.slice(0, Math.max(0, path.lastIndexOf("/")));
}

function writeTree(FS: any, root: string, files: Record<string, string>): void {
  for (const [name, source] of Object.entries(files)) {
    if (name.startsWith("/") || name.split("/").includes("..")) throw new Error(`files: ${JSON.stringify(name)} must be a relative path inside the files folder`);
    const path = `${root}/${name}`;
    FS.mkdirTree(dirname(path));
    FS.writeFile(path, source);
  }
}

/** `bytes` as a buffer of its own, ready to transfer (never a view of Pyodide's memory). */
function ownBuffer(bytes: Uint8Array): [ArrayBuffer, Transferable[]] {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer;
  const buffer = whole ? (bytes.buffer as ArrayBuffer) : (bytes.slice().buffer as ArrayBuffer);
  return [buffer, [buffer]];
}

async function importPyodide(indexURL: string | undefined): Promise<any> {
  if (indexURL) return import(/* webpackIgnore: true */ /* @vite-ignore */ new URL("pyodide.mjs", indexURL).href);
  const name = "pyodide"; // resolved from node_modules in Node; a browser needs indexURL
  try {
    return await import(/* webpackIgnore: true */ /* @vite-ignore */ name);
  } catch (e) {
    throw new Error(`cannot load Pyodide: ${(e as Error).message} (in a browser, pass indexURL: the URL of Pyodide's files)`);
  }
}

/**
 * Start the liaison and serve `port` until it stops. Messages that come before the
 * host is ready wait. Posts `ready` or `failed`, then `stopped` when it stops.
 */
export async function serve(port: HostPort, options: StartOptions, early: unknown[] = []): Promise<void> {
  const waiting: unknown[] = [...early];
  let receive: ((message: unknown) => void) | undefined;
  port.listen((message) => {
    if (receive) receive(message);
    else waiting.push(message);
  });
  let py: any;
  try {
    const { loadPyodide } = await importPyodide(options.indexURL);
    py = await loadPyodide(options.indexURL ? { indexURL: options.indexURL } : {});
    if (options.packages?.length) await py.loadPackage(options.packages);
    writeTree(py.FS, LIAISON_DIR, PYTHON_FILES);
    writeTree(py.FS, FALLBACK_DIR, FALLBACK_FILES);
    writeTree(py.FS, FILES_DIR, options.files ?? {});
    // The liaison's package first: a user's file cannot shadow it.
    py.runPython(`import sys; sys.path[:0] = ["${LIAISON_DIR}", "${FILES_DIR}"]; sys.path.append("${FALLBACK_DIR}")`);
    const interrupts = options.shared
      ? new InterruptRequests(options.shared, (seq, ms) => port.post({ liaison: "arm", seq, ms } satisfies Control))
      : undefined;
    if (options.shared) py.setInterruptBuffer(interruptBuffer(options.shared));
    const start = py.pyimport("liaison.server.transports.pyodide.worker").start;
    const pyReceive = start(
      (text: string) => port.post(text),
      (bytes: Uint8Array) => port.post(...ownBuffer(bytes)),
      () => port.post({ liaison: "stopped" } satisfies Control),
      interrupts,
    );
    receive = (message) => {
      if (typeof message !== "string" && !(message instanceof ArrayBuffer)) return;
      try {
        pyReceive(message);
      } catch (e) {
        // The host answers every message itself; this is a bug of ours: keep serving.
        console.error("liaison: a message could not be handled:", e);
      }
    };
  } catch (e) {
    port.post({ liaison: "failed", error: String((e as Error)?.message ?? e) } satisfies Control);
    return;
  }
  port.post({ liaison: "ready" } satisfies Control);
  for (const message of waiting.splice(0)) receive(message);
}
