/**
 * Python objects in the liaison, used as if they were local: `liaison.module("math")`
 * returns a proxy without a round trip; attribute access builds a longer target,
 * calling sends `run` with `"ref": "auto"`, awaiting an attribute sends `get`. A result
 * that is not plain JSON arrives as a proxy for a reference (docs/protocol.md,
 * "References"), freed by `liaison.release(proxy)`, `Symbol.asyncDispose`, the
 * connection's close, or, once the program drops every proxy of it, a
 * FinalizationRegistry that batches such releases into one `release` call.
 */

/** What a proxy needs from its connection (implemented by `Liaison`). */
export interface ProxyHost {
  call(command: string, args: unknown[], kwargs: Record<string, unknown>, options: { ref?: boolean | "auto" }): Promise<any>;
  release(...proxies: unknown[]): Promise<string[]>;
}

/** A Python object (module, reference, or attribute path under one): callable; an attribute is also awaitable. */
export interface PyProxy {
  /** Calls it: positional arguments, then optionally one `kw({...})` for keyword arguments. */
  (...args: unknown[]): Promise<any>;
  /** An attribute: a proxy that is also awaitable (its value). */
  readonly [name: string]: PyAttribute;
}

/** An attribute of a Python object: call it, or `await` it to read its value. */
export type PyAttribute = PyProxy & PromiseLike<any>;

const KEYWORDS = Symbol("liaison.kw");
// Symbol.asyncDispose where the runtime has it (Node >= 20.4, recent browsers).
const ASYNC_DISPOSE = (Symbol as { asyncDispose?: symbol }).asyncDispose;

/** Keyword arguments: the last argument of a proxy call, `f(1, kw({axis: 0}))`. */
export interface Keywords {
  readonly [KEYWORDS]: Record<string, unknown>;
}

/** Marks `kwargs` as the keyword arguments of a proxy call: `await stats.ttest_ind(a, b, kw({equal_var: false}))`. */
export function kw(kwargs: Record<string, unknown>): Keywords {
  return { [KEYWORDS]: kwargs };
}

/** A reference's life: shared by its proxy and every attribute proxy under it, so the
 *  reference lives while any of them is reachable. */
class Handle {
  released = false;
  constructor(
    readonly name: string,
    readonly info: { type?: string; repr?: string },
  ) {}
}

interface Target {
  host: ProxyHost;
  path: string; // "pkg.mod:attr.sub" or "_ref7.attr.sub"
  handle: Handle | undefined; // set for a reference and the attributes under it
}

const TARGETS = new WeakMap<object, Target>();

/** The target of a proxy made by this module, else undefined. */
export function proxyTarget(value: unknown): { path: string; reference: string | undefined } | undefined {
  const t = typeof value === "function" ? TARGETS.get(value as object) : undefined;
  return t && { path: t.path, reference: t.handle?.name };
}

/** Releases dropped references, batched: one `release` per connection per turn. */
class Collector {
  #registry: FinalizationRegistry<string> | undefined;
  #pending: string[] = [];
  #scheduled = false;
  constructor(private readonly host: ProxyHost) {
    const FR = (globalThis as { FinalizationRegistry?: typeof FinalizationRegistry }).FinalizationRegistry;
    if (FR) this.#registry = new FR((name) => this.#drop(name));
  }
  track(handle: Handle): void {
    this.#registry?.register(handle, handle.name, handle);
  }
  untrack(handle: Handle): void {
    this.#registry?.unregister(handle);
  }
  #drop(name: string): void {
    this.#pending.push(name);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setTimeout(() => {
      this.#scheduled = false;
      const names = this.#pending.splice(0);
      // Nobody awaits this: a closed connection already freed them.
      this.host.call("release", names, {}, {}).catch(() => undefined);
    }, 0);
  }
}

const COLLECTORS = new WeakMap<ProxyHost, Collector>();

function collector(host: ProxyHost): Collector {
  let c = COLLECTORS.get(host);
  if (!c) COLLECTORS.set(host, (c = new Collector(host)));
  return c;
}

/** A proxy for the module `name`. */
export function moduleProxy(host: ProxyHost, name: string): PyProxy {
  return makeProxy({ host, path: name, handle: undefined }, false);
}

/** A call's response: a proxy if it is a reference object, else the value itself. */
export function fromResponse(host: ProxyHost, response: unknown): unknown {
  if (response !== null && typeof response === "object" && typeof (response as any)["$ref"] === "string") {
    const r = response as { $ref: string; type?: string; repr?: string };
    const handle = new Handle(r.$ref, { type: r.type, repr: r.repr });
    collector(host).track(handle);
    return makeProxy({ host, path: r.$ref, handle }, false);
  }
  return response;
}

/** Marks a reference released (so the registry does not release it again); its name, or undefined for a non-reference. */
export function markReleased(value: unknown): string | undefined {
  const t = typeof value === "function" ? TARGETS.get(value as object) : undefined;
  if (!t || !t.handle || t.path !== t.handle.name) return undefined;
  if (!t.handle.released) {
    t.handle.released = true;
    collector(t.host).untrack(t.handle);
  }
  return t.handle.name;
}

/** A reference proxy (or an attribute under one) as the `$name` it travels as; throws for module proxies. */
export function asArgument(value: unknown): string {
  const t = TARGETS.get(value as object)!;
  if (!t.handle) throw new TypeError(`${t.path} is a module path, not a reference: it cannot be passed as an argument`);
  return `$${t.path}`;
}

function child(t: Target, name: string): string {
  return `${t.path}${t.handle || t.path.includes(":") ? "." : ":"}${name}`;
}

function splitArguments(args: unknown[]): { args: unknown[]; kwargs: Record<string, unknown> } {
  const last = args[args.length - 1];
  if (last !== null && typeof last === "object" && KEYWORDS in (last as object)) {
    return { args: args.slice(0, -1), kwargs: (last as Keywords)[KEYWORDS] };
  }
  return { args, kwargs: {} };
}

async function ask(t: Target, command: string, args: unknown[], kwargs: Record<string, unknown>): Promise<unknown> {
  const response = await t.host.call(command, args, kwargs, { ref: "auto" });
  // Keeps the handle (and so the reference) alive until the reply is in: a proxy the
  // program dropped right after calling must not be released under its own call.
  void t.handle;
  return fromResponse(t.host, response);
}

function describe(t: Target): string {
  const repr = t.handle && t.path === t.handle.name ? t.handle.info.repr : undefined;
  return `PyProxy(${t.path}${repr ? ` ${repr}` : ""})`;
}

function makeProxy(t: Target, thenable: boolean): any {
  // A function target, so that the proxy is callable (the `apply` trap).
  const self = function liaisonProxy() {} as unknown as object;
  const proxy: any = new Proxy(self, {
    get(_, key) {
      if (key === "then") {
        // Only attributes are awaitable: a module or a reference resolves to itself, or
        // `await` on a call's result would read it again, forever.
        if (!thenable) return undefined;
        const value = ask(t, "get", [t.path], {});
        return value.then.bind(value);
      }
      if (key === "toJSON") return () => asArgument(proxy);
      if (key === ASYNC_DISPOSE && ASYNC_DISPOSE !== undefined) return () => t.host.release(proxy);
      if (key === Symbol.toPrimitive || key === "toString") return () => describe(t);
      if (typeof key === "symbol") return undefined;
      return makeProxy({ host: t.host, path: child(t, key), handle: t.handle }, true);
    },
    apply(_, __, argList: unknown[]) {
      const { args, kwargs } = splitArguments(argList);
      return ask(t, "run", [t.path, ...args], kwargs);
    },
    has(_, key) {
      return key !== "then" || thenable;
    },
    set() {
      throw new TypeError("a PyProxy is read-only: set attributes with a Python call");
    },
  });
  TARGETS.set(proxy, t);
  return proxy;
}
