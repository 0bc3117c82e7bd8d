/**
 * The Liaison client: one WebSocket connection to a liaison, calls matched to replies
 * by id, pushed messages routed by tag. Runs in browsers, Node >= 20 and Electron; uses
 * no Node built-ins.
 */
import { decodeFrame, encodeMessage } from "./binary.js";
import { CallTimeout, ConnectFailed, ConnectionLost, LiaisonError } from "./errors.js";
import { markReleased, moduleProxy, proxyTarget, type PyProxy } from "./proxy.js";

/** The part of the WHATWG WebSocket API this client uses (browsers, undici, `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  binaryType: string;
  send(data: string | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: string, listener: (event: any) => void): void;
  removeEventListener(type: string, listener: (event: any) => void): void;
}

/** A WebSocket constructor (`globalThis.WebSocket`, or the `ws` package's). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface ConnectOptions {
  /** The liaison's token; sent as `?token=` in the URL. Default: none (or whatever the URL already holds). */
  token?: string;
  /**
   * Milliseconds. Bounds the opening of the connection, and is the default `timeout`
   * of every call made on it. Default: none.
   */
  timeout?: number;
  /** The WebSocket implementation. Default: `globalThis.WebSocket`, else the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** Sets {@link Liaison.binaryNumberArrays}. Default: true. */
  binaryNumberArrays?: boolean;
}

export interface CallOptions {
  /**
   * Milliseconds. Sent to the liaison as the message's `timeout` (in seconds): it
   * cancels the command and replies `TimeoutError`. The call also rejects client-side
   * with a `TimeoutError` if no reply came within `timeout` + 1000 ms. Default: the
   * connection's `timeout`; `null` or `Infinity` for none.
   */
  timeout?: number | null;
  /**
   * Aborting sends `cancel` for this call; the call then rejects with the liaison's
   * `CancelledError` reply (or with its result, if it finished before the cancel
   * arrived). If the connection is gone, it rejects at once with an `AbortError`.
   */
  signal?: AbortSignal;
  /** Receives the `data` of each `liaison.progress(data)` the command calls. */
  onProgress?: (data: any) => void;
  /**
   * Receives each item of a generator result as it comes (sets `"stream": true`); the
   * call then resolves with the number of items.
   */
  onPartial?: (item: any) => void;
  /** `true`: the command runs on a worker thread at once instead of in order (`"concurrent": true`). Default: false. */
  concurrent?: boolean;
  /**
   * `true`: numpy arrays and bytes in the result come back as typed arrays (a binary
   * frame), and typed arrays / ArrayBuffers in the arguments are sent as raw bytes.
   * Default: false (typed arrays in the arguments are then sent as JSON arrays).
   */
  binary?: boolean;
  /** `true`: the reply's `evt` carries the arguments back. Default: false (replies are matched by id), as in the Python client. */
  echo?: boolean;
  /** The message id to use (for `cancel(id)` from elsewhere). Default: `crypto.randomUUID()`. */
  id?: string;
  /**
   * `true`: the result stays in the liaison and the call resolves with a reference object
   * `{$ref, type, repr, callable}`; `"auto"`: only if the result is not plain JSON.
   * Proxies ({@link Liaison.module}) set `"auto"` and turn reference objects into proxies.
   * Default: false.
   */
  ref?: boolean | "auto";
}

/** What `on("close", handler)` handlers receive. */
export interface CloseInfo {
  code: number;
  reason: string;
  wasClean: boolean;
}

export type Handler = (message: any) => void;

interface Pending {
  resolve: (value: any) => void;
  reject: (error: LiaisonError) => void;
  options: CallOptions;
  cleanup: () => void;
}

/** Margin (ms) after a call's timeout before it rejects client-side, leaving the liaison time to reply. */
export const CLIENT_TIMEOUT_GRACE = 1000;

const OPEN = 1;

let fallbackCounter = 0;
/** A random v4 UUID: `crypto.randomUUID()` where available (secure contexts), else built from `getRandomValues`. */
export function newId(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  const b = new Uint8Array(16);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(b);
  else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256) ^ (fallbackCounter++ & 0xff);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function reportAsync(error: unknown): void {
  // Like an EventTarget listener's exception: reported, never swallowed, never breaking the client.
  setTimeout(() => {
    throw error;
  }, 0);
}

function checkTimeout(ms: number | null | undefined, what: string): number | undefined {
  if (ms === undefined || ms === null || ms === Infinity) return undefined;
  if (typeof ms !== "number" || !(ms > 0)) throw new RangeError(`${what} must be a positive number of milliseconds, null or Infinity, got ${String(ms)}`);
  return ms;
}

/** The URL with `?token=` set, and the same URL with the token hidden (for messages). */
export function tokenUrl(url: string, token?: string): { url: string; safe: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConnectFailed("ConnectionError", `not a valid WebSocket URL: ${url}`);
  }
  if (u.protocol === "http:") u.protocol = "ws:";
  if (u.protocol === "https:") u.protocol = "wss:";
  if (u.protocol !== "ws:" && u.protocol !== "wss:") throw new ConnectFailed("ConnectionError", `not a ws:// or wss:// URL: ${url}`);
  if (token !== undefined && token !== null) u.searchParams.set("token", token);
  const full = u.toString();
  if (u.searchParams.has("token")) u.searchParams.set("token", "***");
  return { url: full, safe: u.toString() };
}

/** `globalThis.WebSocket` when present, else the `ws` package (Node, Electron's main process). */
export async function resolveWebSocket(): Promise<WebSocketConstructor> {
  const g = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof g === "function") return g;
  const name = "ws"; // a variable, so that bundlers for the browser leave it alone
  try {
    const mod = await import(/* webpackIgnore: true */ /* @vite-ignore */ name);
    const ctor = (mod.WebSocket ?? mod.default) as WebSocketConstructor | undefined;
    if (typeof ctor === "function") return ctor;
  } catch (e) {
    throw new ConnectFailed(
      "ConnectionError",
      "no WebSocket implementation: globalThis.WebSocket is missing (Node 20 needs --experimental-websocket) and the 'ws' package could not be loaded (npm install ws)",
      { cause: e },
    );
  }
  throw new ConnectFailed("ConnectionError", "the 'ws' package has no WebSocket export");
}

/** Opens a WebSocket and resolves once it is open. */
export async function openSocket(url: string, options: ConnectOptions = {}): Promise<{ socket: WebSocketLike; url: string }> {
  const timeout = checkTimeout(options.timeout, "timeout");
  const { url: full, safe } = tokenUrl(url, options.token);
  const Ctor = options.WebSocket ?? (await resolveWebSocket());
  let socket: WebSocketLike;
  try {
    socket = new Ctor(full);
  } catch (e) {
    throw new ConnectFailed("ConnectionError", `cannot connect to ${safe}: ${(e as Error).message}`, { cause: e });
  }
  socket.binaryType = "arraybuffer";
  await new Promise<void>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = () => {
      if (timer !== undefined) clearTimeout(timer);
      socket.removeEventListener("open", onOpen);
      socket.removeEventListener("error", onError);
      socket.removeEventListener("close", onClose);
      // Closing a connecting `ws` socket emits "error"; unheard, Node would throw it.
      socket.addEventListener("error", () => undefined);
    };
    const onOpen = () => {
      done();
      resolve();
    };
    // The first of "error" and "close" fails the connection: Node 20's undici WebSocket
    // fires only "error" when the handshake is refused, and stays CONNECTING.
    const fail = (detail: string) => {
      done();
      try {
        if (socket.readyState < 2) socket.close();
      } catch {
        /* not closable while connecting in some implementations */
      }
      const hint = /\b401\b/.test(detail)
        ? " (401: a token is required)"
        : /\b403\b/.test(detail)
          ? " (403: wrong token, Origin not allowed, or Host not a loopback name)"
          : /\b503\b/.test(detail)
            ? " (503: too many connections)"
            : "";
      reject(new ConnectFailed("ConnectionError", `cannot connect to ${safe}${detail ? `: ${detail}` : ""}${hint}`));
    };
    const onError = (event: any) => {
      // Browsers tell nothing; `ws` says e.g. "Unexpected server response: 401".
      const m = event?.message ?? event?.error?.message;
      fail(m ? String(m).replaceAll(full, safe) : "");
    };
    const onClose = (event: any) => fail(event?.code ? `closed with code ${event.code}` : "");
    socket.addEventListener("open", onOpen);
    socket.addEventListener("error", onError);
    socket.addEventListener("close", onClose);
    if (timeout !== undefined) {
      timer = setTimeout(() => {
        done();
        try {
          socket.close();
        } catch {
          /* not open yet */
        }
        reject(new ConnectFailed("TimeoutError", `cannot connect to ${safe}: no connection within ${timeout} ms`));
      }, timeout);
    }
  });
  return { socket, url: safe };
}

/**
 * Connects to a liaison at `url` (`ws://HOST:PORT/`).
 *
 * @param url the liaison's WebSocket URL
 * @param options `token` (sent as `?token=`), `timeout` (ms: bounds the connection and
 *   is the default timeout of every call), `WebSocket` (implementation)
 */
export async function connect(url: string, options: ConnectOptions = {}): Promise<Liaison> {
  const { socket, url: safe } = await openSocket(url, options);
  const liaison = new Liaison(socket, { url: safe, timeout: options.timeout, binaryNumberArrays: options.binaryNumberArrays });
  await receivePushesAtOnce(liaison);
  return liaison;
}

/**
 * @internal Ask the liaison to send pushed messages at once. This client routes them by tag
 * whenever they come, so it need not have them held until its calls' replies, as liaison 1.0
 * clients do. A liaison that does not know `configure` sends them at once anyway.
 */
export async function receivePushesAtOnce(liaison: Liaison): Promise<void> {
  // Bounded even without a connection timeout: a live liaison answers a control command
  // at once, and one that does not is no reason for connect or spawn to hang.
  const timeout = Math.min(liaison.timeout ?? CONFIGURE_TIMEOUT_MS, CONFIGURE_TIMEOUT_MS);
  await liaison.call("configure", [], { pushes: "immediate" }, { timeout }).catch(() => undefined);
}

/** How long connect and spawnLiaison wait for the reply to `configure` (ms); past it
 *  they go on without it, and pushes come after pending replies, as for 1.0 clients. */
const CONFIGURE_TIMEOUT_MS = 2_000;

/** One connection to a liaison. Make it with {@link connect} (or `spawnLiaison` in Node). */
export class Liaison {
  /** The URL connected to, with the token hidden. */
  readonly url: string;
  /** Default timeout (ms) of every call; `undefined` for none. */
  timeout: number | undefined;
  /**
   * `true` (the default): a plain Array of at least `NUMBER_ARRAY_MIN` (1024) numbers in
   * a call's arguments travels as raw float64 (or int32) in a binary frame, and Python
   * gets the very list JSON text would give it (ints, floats, `None` for NaN and
   * ±Infinity), 3-4x faster for large arrays. `false`: such Arrays go as JSON text, as
   * for a liaison that predates list placeholders (protocol.md, "Binary frames").
   * The `binary` call option is unrelated: it asks for a binary *reply*.
   */
  binaryNumberArrays: boolean;

  #socket: WebSocketLike;
  #pending = new Map<string, Pending>();
  #handlers = new Map<string, Set<Handler>>();
  #closed = false;
  #closeInfo: CloseInfo | undefined;
  #closeWaiters: (() => void)[] = [];

  /** @internal Use {@link connect}. */
  constructor(socket: WebSocketLike, options: { url?: string; timeout?: number; binaryNumberArrays?: boolean } = {}) {
    this.#socket = socket;
    this.url = options.url ?? "";
    this.timeout = checkTimeout(options.timeout, "timeout");
    this.binaryNumberArrays = options.binaryNumberArrays ?? true;
    socket.binaryType = "arraybuffer";
    socket.addEventListener("message", (event: any) => this.#onMessage(event.data));
    socket.addEventListener("close", (event: any) =>
      this.#onClose({ code: Number(event?.code ?? 1006), reason: String(event?.reason ?? ""), wasClean: Boolean(event?.wasClean) }),
    );
    socket.addEventListener("error", () => {
      /* a "close" event follows; without a listener some implementations would throw */
    });
    if (socket.readyState > OPEN) queueMicrotask(() => this.#onClose({ code: 1006, reason: "", wasClean: false }));
  }

  /** True until the connection closes. */
  get connected(): boolean {
    return !this.#closed && this.#socket.readyState === OPEN;
  }

  /** The number of calls waiting for their reply. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  // ---- the commands -------------------------------------------------------------

  /** `fcn(*args, **kwargs)` (command `run`); a generator is collected to an array, or streamed with `onPartial`. */
  run(target: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: CallOptions = {}): Promise<any> {
    return this.call("run", [target, ...args], kwargs, options);
  }

  /** The value of `target` (command `get`). */
  get(target: string, options: CallOptions = {}): Promise<any> {
    return this.call("get", [target], {}, options);
  }

  /** `true` if `target` resolves (command `exists`). */
  exists(target: string, options: CallOptions = {}): Promise<boolean> {
    return this.call("exists", [target], {}, options);
  }

  /** Stores `cls(*args, **kwargs)` as `name` in the namespace (command `init`); resolves with `name`. */
  init(name: string, cls: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: CallOptions = {}): Promise<string> {
    return this.call("init", [name, cls, ...args], kwargs, options);
  }

  /** Stores the object `target` resolves to as `name` (command `register`); resolves with `name`. */
  register(name: string, target: string, options: CallOptions = {}): Promise<string> {
    return this.call("register", [name, target], {}, options);
  }

  /** Stores `value` as `name` (command `store`); resolves with `name`. */
  store(name: string, value: unknown, options: CallOptions = {}): Promise<string> {
    return this.call("store", [name, value], {}, options);
  }

  /**
   * Command `try`: resolves with `{success: true, result}` or, if the function raised,
   * `{success: false, result: "formatted exception"}` (it rejects only if the command
   * itself fails, e.g. an unknown target).
   */
  attempt(target: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: CallOptions = {}): Promise<{ success: boolean; result: any }> {
    return this.call("try", [target, ...args], kwargs, options);
  }

  /** Resolves with `"pong"` (a control command: answered even while a command runs). */
  ping(options: CallOptions = {}): Promise<string> {
    return this.call("ping", [], {}, options);
  }

  /** Cancels the call with this id (of this connection); resolves `true` if it was queued or running. */
  cancel(id: string | number, options: CallOptions = {}): Promise<boolean> {
    return this.call("cancel", [id], {}, options);
  }

  /** The sorted names of the namespace. */
  names(options: CallOptions = {}): Promise<string[]> {
    return this.call("names", [], {}, options);
  }

  /** `{kind, name, signature, parameters, doc}` of `target`. */
  describe(target: string, options: CallOptions = {}): Promise<any> {
    return this.call("describe", [target], {}, options);
  }

  /** `{name: {args, doc}}` for every command the liaison knows. */
  commands(options: CallOptions = {}): Promise<Record<string, { args: string[]; doc: string }>> {
    return this.call("commands", [], {}, options);
  }

  /**
   * The Python module `name` as a proxy, without a round trip:
   * `await liaison.module("scipy.stats").ttest_ind(a, b, kw({equal_var: false}))`.
   * See the README's "Python objects as proxies".
   */
  module(name: string): PyProxy {
    return moduleProxy(this, name);
  }

  /**
   * Frees references in the liaison (command `release`): proxies for references, or
   * their names. All or none: rejects with `NameNotFound` naming each one that is not a
   * live reference of this connection (e.g. already released).
   */
  release(...references: unknown[]): Promise<string[]> {
    const names: string[] = [];
    for (const r of references) {
      const name = typeof r === "string" ? r : markReleased(r);
      if (name === undefined) {
        const path = proxyTarget(r)?.path;
        return Promise.reject(new TypeError(`release takes reference proxies or names, got ${path ? `the attribute proxy ${path}` : typeof r}`));
      }
      names.push(name);
    }
    return this.call("release", names);
  }

  /**
   * Sets options of this connection (`{pushes: "immediate"}` or `"after-reply"`); resolves
   * with all of them. `connect` and `spawnLiaison` set `pushes: "immediate"`.
   */
  configure(connectionOptions: Record<string, string>, options: CallOptions = {}): Promise<Record<string, string>> {
    return this.call("configure", [], connectionOptions, options);
  }

  /** Asks the liaison to stop (command `shutdown`); resolves `true`. The connection then closes. */
  shutdown(options: CallOptions = {}): Promise<boolean> {
    return this.call("shutdown", [], {}, options);
  }

  /**
   * Sends any command and resolves with the reply's `response` (rejects with a
   * {@link RemoteError} on an error reply).
   */
  call(command: string, args: unknown[] = [], kwargs: Record<string, unknown> = {}, options: CallOptions = {}): Promise<any> {
    return new Promise((resolve, reject) => {
      const fail = (type: string, message: string, extra: { cause?: unknown } = {}) => reject(new LiaisonError(type, message, extra));
      let timeout: number | undefined;
      try {
        timeout = options.timeout === undefined ? this.timeout : checkTimeout(options.timeout, "options.timeout");
      } catch (e) {
        reject(e);
        return;
      }
      if (!this.connected) return reject(new ConnectionLost("ConnectionClosed", `cannot send ${command}: the connection to ${this.url} is closed`));
      if (options.signal?.aborted) return fail("AbortError", `${command} was aborted before it was sent`, { cause: options.signal.reason });
      const id = options.id ?? newId();
      if (this.#pending.has(id)) return fail("InvalidArguments", `a call with id ${id} is already pending`);
      const message: Record<string, unknown> = { command: { command, args, kwargs }, id };
      if (timeout !== undefined) message.timeout = timeout / 1000;
      if (options.onPartial) message.stream = true;
      if (options.concurrent) message.concurrent = true;
      if (options.binary) message.binary = true;
      message.echo = options.echo ?? false;
      if (options.ref) message.ref = options.ref;
      let data: string | ArrayBuffer;
      try {
        data = encodeMessage(message, { binary: options.binary === true, numberArrays: this.binaryNumberArrays });
      } catch (e) {
        if (e instanceof LiaisonError) return reject(e);
        return fail("EncodingError", `cannot encode the arguments of ${command}: ${(e as Error).message}`, { cause: e });
      }

      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => {
        if (!this.#pending.has(id)) return;
        if (!this.connected) {
          this.#settle(id, undefined, new LiaisonError("AbortError", `${command} was aborted and the connection is closed`, { cause: options.signal?.reason }));
          return;
        }
        // The liaison replies to the call itself with CancelledError; that reply settles it.
        this.cancel(id).catch(() => {
          this.#settle(id, undefined, new LiaisonError("AbortError", `${command} was aborted and the cancel could not be sent`, { cause: options.signal?.reason }));
        });
      };
      const cleanup = () => {
        if (timer !== undefined) clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
      };
      this.#pending.set(id, { resolve, reject, options, cleanup });
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          if (!this.#pending.has(id)) return;
          this.#settle(id, undefined, new CallTimeout("TimeoutError", `${command} got no reply within ${timeout} ms (client-side timeout)`));
          if (this.connected) this.cancel(id).catch(() => undefined);
        }, timeout + CLIENT_TIMEOUT_GRACE);
      }
      options.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        this.#socket.send(data);
      } catch (e) {
        this.#settle(id, undefined, new ConnectionLost("ConnectionClosed", `cannot send ${command}: ${(e as Error).message}`, { cause: e }));
      }
    });
  }

  // ---- events -----------------------------------------------------------------

  /**
   * Listens for pushed messages with this `tag` (e.g. `"alert"` for
   * `liaison.send({"tag": "alert", ...})`); a message without a tag goes to
   * `"message"`, an error reply that matches no call (e.g. to an unparseable frame) to
   * `"error"`. `on("close", handler)` is called once with `{code, reason, wasClean}`
   * when the connection closes. `on("*", handler)` receives every pushed message.
   */
  on(tag: string, handler: Handler): this {
    let set = this.#handlers.get(tag);
    if (!set) this.#handlers.set(tag, (set = new Set()));
    set.add(handler);
    return this;
  }

  /** Removes a handler added with {@link on}. */
  off(tag: string, handler: Handler): this {
    this.#handlers.get(tag)?.delete(handler);
    return this;
  }

  /** Like {@link on}, removed after the first call. */
  once(tag: string, handler: Handler): this {
    const wrapper: Handler = (m) => {
      this.off(tag, wrapper);
      handler(m);
    };
    return this.on(tag, wrapper);
  }

  /** Closes the connection; every pending call rejects with `ConnectionClosed` at once. Resolves when closed. */
  close(code = 1000, reason = ""): Promise<void> {
    const done = new Promise<void>((resolve) => {
      if (this.#closeInfo) resolve();
      else this.#closeWaiters.push(resolve);
    });
    this.#rejectAll(`the connection to ${this.url} was closed by the client`);
    if (this.#socket.readyState < 2) {
      try {
        this.#socket.close(code, reason);
      } catch {
        this.#socket.close();
      }
    }
    this.#closed = true;
    return done;
  }

  // ---- internals --------------------------------------------------------------

  #emit(tag: string, message: unknown): void {
    for (const key of tag === "*" ? ["*"] : [tag, "*"]) {
      if (key === "*" && tag === "close") continue;
      const set = this.#handlers.get(key);
      if (!set) continue;
      for (const handler of [...set]) {
        try {
          handler(message);
        } catch (e) {
          reportAsync(e);
        }
      }
    }
  }

  #settle(id: string, value: unknown, error?: LiaisonError): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    p.cleanup();
    if (error) p.reject(error);
    else p.resolve(value);
  }

  #rejectAll(message: string): void {
    const ids = [...this.#pending.keys()];
    for (const id of ids) this.#settle(id, undefined, new ConnectionLost("ConnectionClosed", message));
  }

  #onMessage(data: unknown): void {
    let msg: Record<string, unknown>;
    try {
      if (typeof data === "string") {
        const parsed: unknown = JSON.parse(data);
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
          this.#emit("message", parsed);
          return;
        }
        msg = parsed as Record<string, unknown>;
      } else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
        msg = decodeFrame(data as ArrayBuffer);
      } else {
        throw new LiaisonError("ProtocolError", `unexpected frame data of type ${Object.prototype.toString.call(data)}`);
      }
    } catch (e) {
      const err = e instanceof LiaisonError ? e : new LiaisonError("ProtocolError", `unreadable message from the liaison: ${(e as Error).message}`, { cause: e });
      this.#emit("error", err);
      return;
    }
    const id = msg.id;
    const pending = typeof id === "string" || typeof id === "number" ? this.#pending.get(String(id)) : undefined;
    const tag = typeof msg.tag === "string" ? msg.tag : undefined;
    if (pending && id !== undefined) {
      if ("response" in msg) {
        this.#settle(String(id), msg.response);
        return;
      }
      if ("error" in msg && (tag === "error" || "exception" in msg)) {
        this.#settle(String(id), undefined, LiaisonError.fromReply(msg));
        return;
      }
      if (tag === "progress" && "progress" in msg) {
        if (pending.options.onProgress) this.#callback(pending.options.onProgress, msg.progress);
        else this.#emit("progress", msg);
        return;
      }
      if (tag === "partial" && "partial" in msg) {
        if (pending.options.onPartial) this.#callback(pending.options.onPartial, msg.partial);
        else this.#emit("partial", msg);
        return;
      }
    }
    this.#emit(tag ?? "message", msg);
  }

  #callback(fn: (x: any) => void, value: unknown): void {
    try {
      fn(value);
    } catch (e) {
      reportAsync(e);
    }
  }

  #onClose(info: CloseInfo): void {
    if (this.#closeInfo) return;
    this.#closeInfo = info;
    this.#closed = true;
    this.#rejectAll(`the connection to ${this.url} closed (code ${info.code}${info.reason ? `: ${info.reason}` : ""})`);
    this.#emit("close", info);
    for (const w of this.#closeWaiters.splice(0)) w();
  }
}
