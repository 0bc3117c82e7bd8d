/// <reference types="node" />
/**
 * The Node / Electron (main process) entry of liaison-client: everything of the browser
 * entry, plus {@link spawnLiaison}, which starts a Python liaison as a child process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Liaison, openSocket, receivePushesAtOnce, type ConnectOptions } from "./client.js";
import { LiaisonError, SpawnError } from "./errors.js";
import { START_MARKER, STOP_MARKER } from "./index.js";
import { PipeSocket } from "./stdio.js";

export * from "./index.js";

export interface SpawnOptions {
  /** The Python executable (looked up in `PATH`, no shell). Default: `"python"`. */
  python?: string;
  /**
   * `"websocket"` runs `python -m liaison.websocket ADDRESS` and connects to it;
   * `"stdio"` runs `python -m liaison.stdio` and talks to it over its stdin and stdout
   * (no port, no token; `address`, `token` and `WebSocket` are unused, and what its
   * commands print arrives on its stderr). Default: `"websocket"`.
   */
  transport?: "websocket" | "stdio";
  /** `HOST:PORT` to bind; port `0` picks a free port. Default: `"127.0.0.1:0"`. */
  address?: string;
  /** Working directory of the child. Default: this process's. */
  cwd?: string;
  /** Environment variables, merged over `process.env` (a value `undefined` removes the variable). Default: `{}`. */
  env?: Record<string, string | undefined>;
  /** More arguments after the address, e.g. `["--allow-module", "scipy"]`. Default: `[]`. */
  args?: string[];
  /**
   * A GUI toolkit whose event loop the liaison runs between commands (`--gui`), so the
   * windows its commands open stay alive: `"tk"`, `"qt"`, ... Default: none.
   */
  gui?: string;
  /** Milliseconds for the start marker to appear and the connection to open. Default: `20000`. */
  timeout?: number;
  /** The token to use. Default: a fresh random one (32 bytes, hex). */
  token?: string;
  /** Default timeout (ms) of every call on the returned connection. Default: none. */
  callTimeout?: number;
  /** The WebSocket implementation. Default: `globalThis.WebSocket`, else the `ws` package. */
  WebSocket?: ConnectOptions["WebSocket"];
  /** Sets the returned connection's `binaryNumberArrays` (large number Arrays sent raw). Default: true. */
  binaryNumberArrays?: boolean;
}

/** Milliseconds `stop()` waits for the child to exit after `shutdown` before it kills it. */
export const STOP_GRACE = 5000;

/**
 * How {@link SpawnedLiaison.stop} first asks the child to stop: the `shutdown` command
 * while connected, else SIGTERM; Windows has no signals (Node would kill the child
 * outright), so there it is `"kill"`. If the child is still running after
 * {@link STOP_GRACE}, it is killed on every OS.
 */
export function stopMethod(connected: boolean, platform: string = process.platform): "shutdown" | "SIGTERM" | "kill" {
  if (connected) return "shutdown";
  return platform === "win32" ? "kill" : "SIGTERM";
}

const STDERR_KEEP = 64 * 1024;

// Children still running, killed when this process exits. One "exit" listener serves
// them all: one per child would trip Node's MaxListenersExceededWarning past 10.
const liveChildren = new Set<ChildProcess>();
function killLiveChildren(): void {
  for (const child of liveChildren) {
    try {
      child.kill();
    } catch {
      /* already gone */
    }
  }
}
function watchUntilExit(child: ChildProcess): () => void {
  if (liveChildren.size === 0) process.on("exit", killLiveChildren);
  liveChildren.add(child);
  return () => {
    if (liveChildren.delete(child) && liveChildren.size === 0) process.off("exit", killLiveChildren);
  };
}

/** A connection to a liaison this process started: a {@link Liaison} plus the child process. */
export class SpawnedLiaison extends Liaison {
  /** The Python child process. */
  readonly process: ChildProcess;
  /** The token the liaison was started with (to connect more clients, e.g. a renderer); `""` over stdio. */
  readonly token: string;
  /** The host the liaison reported in its start marker; `"stdio"` over stdio. */
  readonly host: string;
  /** The port the liaison listens on; `0` over stdio. */
  readonly port: number;
  #exited: Promise<number | null>;
  #stderr: () => string;

  /** @internal Use {@link spawnLiaison}. */
  constructor(
    socket: ConstructorParameters<typeof Liaison>[0],
    options: ConstructorParameters<typeof Liaison>[1],
    child: ChildProcess,
    info: { token: string; host: string; port: number; exited: Promise<number | null>; stderr: () => string },
  ) {
    super(socket, options);
    this.process = child;
    this.token = info.token;
    this.host = info.host;
    this.port = info.port;
    this.#exited = info.exited;
    this.#stderr = info.stderr;
  }

  /** The last 64 KiB the child wrote to stderr (its log). */
  get stderr(): string {
    return this.#stderr();
  }

  /** Resolves with the child's exit code once it has exited (`null` if a signal ended it). */
  get exited(): Promise<number | null> {
    return this.#exited;
  }

  /**
   * Stops the liaison: sends `shutdown` (or, if the connection is already closed,
   * SIGTERM; on Windows, which has no signals, it kills the child), waits for the child
   * to exit, and resolves with its exit code (0 for a graceful stop). If it has not
   * exited within 5 s it is killed (SIGKILL; on Windows, TerminateProcess) and `stop()`
   * resolves with `null`.
   */
  async stop(): Promise<number | null> {
    const child = this.process;
    if (child.exitCode !== null || child.signalCode !== null) {
      await this.close();
      return child.exitCode;
    }
    const killer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE);
    try {
      const method = stopMethod(this.connected);
      if (method === "shutdown") {
        // The reply may lose the race with the connection closing: either is fine.
        await Promise.race([this.shutdown({ timeout: null }).catch(() => undefined), this.#exited]);
      } else {
        child.kill(method === "SIGTERM" ? "SIGTERM" : "SIGKILL");
      }
      return await this.#exited;
    } finally {
      clearTimeout(killer);
      await this.close();
    }
  }
}

function connectHost(host: string): string {
  const h = host.replace(/^\[(.*)\]$/, "$1");
  if (h === "0.0.0.0" || h === "") return "127.0.0.1";
  if (h === "::") return "[::1]";
  return h.includes(":") ? `[${h}]` : h;
}

/**
 * Starts `python -m liaison.websocket ADDRESS ...args` with a fresh random token (in
 * `LIAISON_TOKEN`), waits for `LIAISON:CONNECTED@HOST:PORT` on its stdout, connects,
 * and resolves with the connection. The child is killed when this process exits.
 * With `transport: "stdio"` it starts `python -m liaison.stdio ...args` instead and
 * the connection runs over the child's stdin and stdout: the same {@link Liaison} API.
 *
 * Rejects with a {@link LiaisonError} holding the child's stderr if the child cannot
 * be started (`SpawnError`), exits first (`SpawnError`), or the timeout passes
 * (`TimeoutError`); the child is then killed.
 */
export function spawnLiaison(options: SpawnOptions = {}): Promise<SpawnedLiaison> {
  const python = options.python ?? "python";
  const address = options.address ?? "127.0.0.1:0";
  const timeout = options.timeout ?? 20000;
  const transport = options.transport ?? "websocket";
  if (transport !== "websocket" && transport !== "stdio") {
    return Promise.reject(new LiaisonError("TypeError", `transport must be "websocket" or "stdio", got ${JSON.stringify(transport)}`));
  }
  const stdio = transport === "stdio";
  const token = stdio ? "" : (options.token ?? randomBytes(32).toString("hex"));
  const entry = stdio ? ["liaison.stdio"] : ["liaison.websocket", address];
  const argv = ["-m", ...entry, ...(options.args ?? []), ...(options.gui ? ["--gui", options.gui] : [])];
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...(options.env ?? {}) })) if (v !== undefined) env[k] = v;
  if (stdio) delete env.LIAISON_TOKEN;
  else env.LIAISON_TOKEN = token;
  const started = Date.now();
  const command = [python, ...argv].join(" ");

  return new Promise<SpawnedLiaison>((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(python, argv, { cwd: options.cwd, env, stdio: ["pipe", "pipe", "pipe"], windowsHide: true });
    } catch (e) {
      reject(new SpawnError("SpawnError", `cannot start the liaison (${command}): ${(e as Error).message}`, { cause: e }));
      return;
    }
    let stdout = "";
    let stderr = "";
    let settled = false;
    let ready = false;
    const tail = () => stderr;
    const withStderr = (text: string) => {
      const err = stderr.trim();
      return err ? `${text}\n--- stderr of the liaison ---\n${err}` : `${text} (it wrote nothing to stderr)`;
    };

    const unwatch = watchUntilExit(child);
    let exitCode: number | null | undefined;
    let exitSignal: NodeJS.Signals | null = null;
    const exited = new Promise<number | null>((res) => {
      child.once("exit", (code, signal) => {
        exitCode = code;
        exitSignal = signal;
        unwatch();
        res(code);
      });
      child.once("error", () => {
        // spawn failed: no "exit" event will come
        unwatch();
        if (child.pid === undefined) res(null);
      });
    });

    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      stderr += chunk;
      if (stderr.length > STDERR_KEEP) stderr = stderr.slice(-STDERR_KEEP);
    });
    if (stdio) {
      const pipe = new PipeSocket(
        child.stdin!,
        child.stdout!,
        { start: `${START_MARKER}@stdio`, stop: `${STOP_MARKER}@stdio` },
        () => onPipeReady(pipe),
        (line) => fail(new SpawnError("SpawnError", withStderr(`the liaison (${command}) wrote ${JSON.stringify(line.slice(0, 200))} before its start marker`))),
      );
    } else {
      child.stdout!.setEncoding("utf8");
      child.stdout!.on("data", (chunk: string) => {
        if (ready) return; // kept drained after the start marker
        stdout += chunk;
        const m = new RegExp(`${START_MARKER}@(\\S+):(\\d+)`).exec(stdout);
        if (m) {
          ready = true;
          stdout = "";
          onReady(m[1], Number(m[2]));
        } else if (stdout.length > STDERR_KEEP) {
          stdout = stdout.slice(-1024);
        }
      });
    }
    // Keep the child's stdin open: it is how some launch setups notice that we are gone.
    child.stdin!.on("error", () => undefined);

    const fail = (error: LiaisonError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (exitCode === undefined && child.pid !== undefined) child.kill("SIGKILL");
      reject(error);
    };

    const timer = setTimeout(() => {
      fail(new SpawnError("TimeoutError", withStderr(`the liaison (${command}) was not ready within ${timeout} ms`)));
    }, timeout);

    child.once("error", (e) => {
      fail(new SpawnError("SpawnError", withStderr(`cannot start the liaison (${command}): ${e.message}`), { cause: e }));
    });
    const onEnded = () => {
      if (settled) return;
      const how = exitSignal ? `was killed by ${exitSignal}` : `exited with code ${exitCode}`;
      fail(new SpawnError("SpawnError", withStderr(`the liaison (${command}) ${how} before it was ready`)));
    };
    // "close" comes once stderr is fully read; "exit" can come before it.
    child.once("close", onEnded);
    child.once("exit", () => {
      setTimeout(onEnded, 1000).unref();
    });

    const onPipeReady = (pipe: PipeSocket) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const liaison = new SpawnedLiaison(pipe, { url: "stdio", timeout: options.callTimeout, binaryNumberArrays: options.binaryNumberArrays }, child, { token, host: "stdio", port: 0, exited, stderr: tail });
      void receivePushesAtOnce(liaison).then(() => resolve(liaison));
    };

    const onReady = (host: string, port: number) => {
      if (settled) return;
      const url = `ws://${connectHost(host)}:${port}/`;
      const left = Math.max(1, timeout - (Date.now() - started));
      openSocket(url, { token, timeout: left, WebSocket: options.WebSocket }).then(
        ({ socket, url: safe }) => {
          if (settled) {
            socket.close();
            return;
          }
          settled = true;
          clearTimeout(timer);
          const liaison = new SpawnedLiaison(socket, { url: safe, timeout: options.callTimeout, binaryNumberArrays: options.binaryNumberArrays }, child, { token, host, port, exited, stderr: tail });
          void receivePushesAtOnce(liaison).then(() => resolve(liaison));
        },
        (e: LiaisonError) => {
          fail(new SpawnError(e.type === "TimeoutError" ? "TimeoutError" : "SpawnError", withStderr(`the liaison (${command}) started, but: ${e.message}`), { cause: e }));
        },
      );
    };
  });
}
