/**
 * The liaison's worker: a module Web Worker in browsers, a worker_threads Worker in
 * Node. Its first message is `{liaison: "start", options}`; see serve.ts.
 */
import { serve, type Control, type HostPort } from "./serve.js";

function browserPort(): HostPort | undefined {
  const scope = globalThis as any;
  if (typeof scope.WorkerGlobalScope !== "function" || typeof scope.postMessage !== "function") return undefined;
  return {
    post: (message, transfer) => scope.postMessage(message, transfer ?? []),
    listen: (handler) => scope.addEventListener("message", (event: MessageEvent) => handler(event.data)),
  };
}

async function nodePort(): Promise<HostPort> {
  // Built, not written out: bundlers for the browser then leave it alone (only Node gets here).
  const name = ["node", "worker_threads"].join(":");
  const { parentPort } = await import(/* webpackIgnore: true */ /* @vite-ignore */ name);
  if (!parentPort) throw new Error("liaison-client/pyodide's worker.js runs only as a worker");
  return {
    post: (message, transfer) => parentPort.postMessage(message, transfer ?? []),
    listen: (handler) => parentPort.on("message", handler),
  };
}

// A browser's worker listens before its first await: its messages are not queued for
// a listener that comes later. Node's parentPort queues them.
const early: unknown[] = [];
let started = false;
const port = browserPort() ?? (await nodePort());
port.listen((message) => {
  if (started) return;
  const control = message as Control;
  if (control && typeof control === "object" && "liaison" in control && control.liaison === "start") {
    started = true;
    void serve(port, control.options, early);
  } else {
    early.push(message);
  }
});
