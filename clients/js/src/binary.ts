/**
 * Binary frames (protocol.md, "Binary frames"): numeric arrays and bytes travel as raw
 * little-endian buffers after a JSON header.
 *
 * ```
 * bytes 0-3   L, the length of the JSON header, uint32 little-endian
 * 4 .. 4+L    the message as UTF-8 JSON, with "buffers": [[offset, nbytes], ...]
 * offsets     each buffer, at an offset (from the frame's start) that is a multiple of 8
 * ```
 *
 * In the JSON each array is `{"$buffer": i, "dtype": "float64", "shape": [2, 3]}`
 * (C order) and each bytes value `{"$buffer": i, "dtype": "bytes"}`.
 */
import { LiaisonError } from "./errors.js";
import { isLongArray, numberArrayParts } from "./numberArrays.js";

/** Any typed array this client produces or accepts. */
export type TypedArray =
  | Float64Array
  | Float32Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint8ClampedArray
  | Uint16Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A typed array carrying the numpy `shape` and `dtype` it stands for. */
export type NDArray<T extends TypedArray = TypedArray> = T & { shape: number[]; dtype: string };

type TypedArrayConstructor = {
  new (buffer: ArrayBufferLike, byteOffset?: number, length?: number): TypedArray;
  new (length: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
};

const DTYPES: Record<string, TypedArrayConstructor> = {
  float64: Float64Array,
  float32: Float32Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
  bytes: Uint8Array,
};

/** numpy's other spellings of the same dtypes ("<f8", "f8", "double", ...). */
const ALIASES: Record<string, string> = {
  f8: "float64", f4: "float32", i1: "int8", i2: "int16", i4: "int32", i8: "int64",
  u1: "uint8", u2: "uint16", u4: "uint32", u8: "uint64", b1: "bool", "?": "bool",
  double: "float64", float: "float64", single: "float32", bool_: "bool", boolean: "bool",
  int: "int64", byte: "int8", ubyte: "uint8", short: "int16", ushort: "uint16",
  intc: "int32", uintc: "uint32", longlong: "int64", ulonglong: "uint64",
};

/** Normalises a dtype name: `"<f8"` → `"float64"`; unknown names are returned as they are. */
export function normalizeDtype(dtype: string): string {
  const d = dtype.replace(/^[<=|]/, "");
  return DTYPES[d] ? d : (ALIASES[d] ?? dtype);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Attaches `shape` and `dtype` to a typed array (in place) and returns it. */
export function ndarray<T extends TypedArray>(data: T, shape?: number[], dtype?: string): NDArray<T> {
  const out = data as NDArray<T>;
  out.shape = shape ? [...shape] : [data.length];
  out.dtype = dtype ?? dtypeOf(data);
  return out;
}

/** Marks a Uint8Array as Python `bytes` (rather than a uint8 numpy array) when sent in a binary frame. */
export function bytes(data: Uint8Array | ArrayBuffer): NDArray<Uint8Array> {
  const u8 = data instanceof Uint8Array ? data : new Uint8Array(data);
  return ndarray(u8, [u8.length], "bytes");
}

/** The dtype name of a typed array: its attached `dtype`, else the one of its class. */
export function dtypeOf(data: ArrayBufferView): string {
  const attached = (data as { dtype?: unknown }).dtype;
  if (typeof attached === "string") return normalizeDtype(attached);
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Int16Array) return "int16";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof Uint16Array) return "uint16";
  if (data instanceof Uint32Array) return "uint32";
  if (data instanceof BigUint64Array) return "uint64";
  if (data instanceof Uint8ClampedArray) return "uint8";
  if (data instanceof Uint8Array) {
    // A Node Buffer is bytes; a plain Uint8Array is a uint8 array.
    const ctor = (data.constructor as { name?: string } | undefined)?.name;
    return ctor === "Buffer" ? "bytes" : "uint8";
  }
  return "bytes"; // DataView
}

function isPlaceholder(v: unknown): v is { $buffer: number; dtype?: string; shape?: number[] } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && typeof (v as { $buffer?: unknown }).$buffer === "number";
}

function swapBytes(src: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(src.length);
  for (let i = 0; i < src.length; i += size) for (let j = 0; j < size; j++) out[i + j] = src[i + size - 1 - j];
  return out;
}

/**
 * Makes the typed array for buffer bytes `[offset, offset + nbytes)` of `frame`: a
 * zero-copy view when `offset` is a multiple of the element size (always, for frames
 * that follow the protocol), else a copy.
 */
export function viewBuffer(frame: ArrayBuffer, offset: number, nbytes: number, dtype: string, shape?: number[]): NDArray {
  const name = normalizeDtype(dtype);
  const Ctor = DTYPES[name] ?? Uint8Array;
  const size = Ctor.BYTES_PER_ELEMENT;
  if (offset < 0 || nbytes < 0 || offset + nbytes > frame.byteLength) {
    throw new LiaisonError("ProtocolError", `buffer [${offset}, ${offset + nbytes}) lies outside the ${frame.byteLength}-byte frame`);
  }
  if (nbytes % size !== 0) {
    throw new LiaisonError("ProtocolError", `buffer of ${nbytes} bytes is not a whole number of ${name} elements`);
  }
  let arr: TypedArray;
  if (size > 1 && !LITTLE_ENDIAN) {
    arr = new Ctor(swapBytes(new Uint8Array(frame, offset, nbytes), size).buffer, 0, nbytes / size);
  } else if (offset % size === 0) {
    arr = new Ctor(frame, offset, nbytes / size);
  } else {
    arr = new Ctor(frame.slice(offset, offset + nbytes), 0, nbytes / size);
  }
  return ndarray(arr, shape ?? [nbytes / size], DTYPES[name] ? name : dtype);
}

function resolvePlaceholders(value: unknown, frame: ArrayBuffer, buffers: [number, number][]): unknown {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = resolvePlaceholders(value[i], frame, buffers);
    return value;
  }
  if (typeof value !== "object" || value === null) return value;
  if (isPlaceholder(value)) {
    const spec = buffers[value.$buffer];
    if (!Array.isArray(spec) || spec.length < 2) {
      throw new LiaisonError("ProtocolError", `binary frame names buffer ${value.$buffer}, which its "buffers" list lacks`);
    }
    return viewBuffer(frame, Number(spec[0]), Number(spec[1]), value.dtype ?? "bytes", Array.isArray(value.shape) ? value.shape.map(Number) : undefined);
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) obj[key] = resolvePlaceholders(obj[key], frame, buffers);
  return obj;
}

/**
 * Decodes one binary frame into the message it holds, with every `$buffer` placeholder
 * replaced by a typed array (a view on `frame`). `evt` (the server's echo of what the
 * client sent) is left as it is: its placeholders refer to the client's own frame.
 */
export function decodeFrame(data: ArrayBuffer | ArrayBufferView): Record<string, unknown> {
  let frame: ArrayBuffer;
  if (data instanceof ArrayBuffer) frame = data;
  else if (data.buffer instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) frame = data.buffer;
  else frame = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice().buffer; // copy so offsets stay 8-aligned
  if (frame.byteLength < 4) throw new LiaisonError("ProtocolError", `binary frame of ${frame.byteLength} bytes is too short`);
  const length = new DataView(frame).getUint32(0, true);
  if (4 + length > frame.byteLength) {
    throw new LiaisonError("ProtocolError", `binary frame header says ${length} bytes of JSON, but the frame has ${frame.byteLength - 4}`);
  }
  const text = new TextDecoder().decode(new Uint8Array(frame, 4, length));
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch (e) {
    throw new LiaisonError("ProtocolError", `binary frame header is not JSON: ${(e as Error).message}`);
  }
  if (typeof message !== "object" || message === null || Array.isArray(message)) {
    throw new LiaisonError("ProtocolError", "binary frame header is not a JSON object");
  }
  const msg = message as Record<string, unknown>;
  const buffers = (Array.isArray(msg.buffers) ? msg.buffers : []) as [number, number][];
  for (const key of Object.keys(msg)) {
    if (key === "evt" || key === "buffers") continue;
    msg[key] = resolvePlaceholders(msg[key], frame, buffers);
  }
  return msg;
}

function isBinaryValue(v: unknown): v is ArrayBufferView | ArrayBuffer {
  return ArrayBuffer.isView(v) || v instanceof ArrayBuffer;
}

/** True if `value` holds a typed array, DataView or ArrayBuffer anywhere. */
export function containsBinary(value: unknown, seen = new Set<unknown>()): boolean {
  if (isBinaryValue(value)) return true;
  if (typeof value !== "object" || value === null || seen.has(value)) return false;
  seen.add(value);
  if (Array.isArray(value)) return value.some((v) => containsBinary(v, seen));
  return Object.values(value).some((v) => containsBinary(v, seen));
}

const align8 = (n: number) => (n + 7) & ~7;

/** What {@link encodeFrame} sends raw. */
export interface FrameOptions {
  /** Typed arrays, ArrayBuffers and DataViews anywhere (else they stay JSON arrays). Default: true. */
  typedArrays?: boolean;
  /** Plain Arrays of numbers (long enough) in `command`, as list placeholders. Default: false. */
  numberArrays?: boolean;
}

/**
 * Encodes `message` as one binary frame: every typed array (`Float64Array`, ...,
 * with its `shape` if attached, else 1-D) becomes a numpy array, every
 * `ArrayBuffer`, `DataView`, Node `Buffer` or `bytes(...)`-marked `Uint8Array` becomes
 * Python bytes; with `numberArrays`, each plain Array of numbers in `command` that
 * {@link numberArrayParts} takes becomes the Python list JSON would give. Returns the
 * frame's ArrayBuffer.
 */
export function encodeFrame(message: Record<string, unknown>, options: FrameOptions = {}): ArrayBuffer {
  return frameOf(message, options, false) as ArrayBuffer;
}

/**
 * A call's message as it is sent: a binary frame if `binary` and its command holds a
 * typed array, or if `numberArrays` and its command holds a plain Array of numbers
 * that travels raw; else JSON text ({@link jsonStringify}).
 */
export function encodeMessage(message: Record<string, unknown>, options: { binary: boolean; numberArrays: boolean }): string | ArrayBuffer {
  if (options.binary && containsBinary(message.command)) return encodeFrame(message, { numberArrays: options.numberArrays });
  if (options.numberArrays && containsLongArray(message.command, new Set())) {
    const frame = frameOf(message, { typedArrays: false, numberArrays: true }, true);
    if (frame) return frame;
  }
  return jsonStringify(message);
}

/** True if `value` holds an Array long enough to maybe travel raw (a cheap first look). */
function containsLongArray(value: unknown, seen: Set<unknown>): boolean {
  if (typeof value !== "object" || value === null || seen.has(value) || isBinaryValue(value)) return false;
  if (isLongArray(value)) return true;
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === "object" && item !== null && containsLongArray(item, seen)) return true;
    }
    return false;
  }
  return Object.values(value).some((v) => containsLongArray(v, seen));
}

function frameOf(message: Record<string, unknown>, options: FrameOptions, onlyWithBuffers: boolean): ArrayBuffer | null {
  const typedArrays = options.typedArrays ?? true;
  const parts: Uint8Array[] = [];
  const push = (bytes: Uint8Array, size: number): number => {
    parts.push(size > 1 && !LITTLE_ENDIAN ? swapBytes(bytes, size) : bytes);
    return parts.length - 1;
  };
  const replace = (value: unknown, seen: Set<unknown>, numberArrays: boolean): unknown => {
    if (isBinaryValue(value)) {
      if (!typedArrays) return value; // jsonStringify makes it a JSON array
      const view = value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
      const dtype = value instanceof ArrayBuffer ? "bytes" : dtypeOf(value);
      const placeholder: Record<string, unknown> = { $buffer: push(view, DTYPES[dtype]?.BYTES_PER_ELEMENT ?? 1), dtype };
      if (dtype !== "bytes") {
        const n = (value as TypedArray).length ?? view.length;
        const shape = (value as { shape?: unknown }).shape;
        const ok = Array.isArray(shape) && shape.every((s) => Number.isInteger(s) && s >= 0) && shape.reduce((a: number, b: number) => a * b, 1) === n;
        placeholder.shape = ok ? [...(shape as number[])] : [n];
      }
      return placeholder;
    }
    if (typeof value !== "object" || value === null) return value;
    if (seen.has(value)) throw new LiaisonError("EncodingError", "cannot encode a circular structure");
    if (typeof (value as { toJSON?: unknown }).toJSON === "function") return value; // Dates and friends
    if (numberArrays && isLongArray(value)) {
      const raw = numberArrayParts(value);
      if (raw) {
        const placeholder: Record<string, unknown> = { $buffer: push(raw.values, raw.dtype === "float64" ? 8 : 4), dtype: raw.dtype, as: "list" };
        if (raw.ints) placeholder.ints = push(raw.ints, 4);
        if (raw.nulls) placeholder.nulls = push(raw.nulls, 4);
        return placeholder;
      }
    }
    seen.add(value);
    let out: unknown;
    if (Array.isArray(value)) out = value.map((v) => replace(v, seen, numberArrays));
    else out = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replace(v, seen, numberArrays)]));
    seen.delete(value);
    return out;
  };
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(message)) body[key] = replace(value, new Set(), key === "command" && (options.numberArrays ?? false));
  if (onlyWithBuffers && !parts.length) return null;
  const encoder = new TextEncoder();
  // The offsets depend on the header's length, which depends on the offsets: iterate
  // until stable, padding the header with spaces (valid JSON) when it shrinks.
  let headerLength = 0;
  let header = new Uint8Array(0);
  let offsets: [number, number][] = [];
  for (let round = 0; round < 10; round++) {
    let pos = align8(4 + headerLength);
    offsets = parts.map((p) => {
      const at = pos;
      pos = align8(pos + p.byteLength);
      return [at, p.byteLength];
    });
    header = encoder.encode(jsonStringify({ ...body, buffers: offsets }));
    if (header.byteLength === headerLength) break;
    if (header.byteLength < headerLength) {
      const padded = new Uint8Array(headerLength).fill(0x20);
      padded.set(header);
      header = padded;
      break;
    }
    headerLength = header.byteLength;
  }
  const total = offsets.length ? offsets[offsets.length - 1][0] + offsets[offsets.length - 1][1] : 4 + header.byteLength;
  const frame = new Uint8Array(total);
  new DataView(frame.buffer).setUint32(0, header.byteLength, true);
  frame.set(header, 4);
  parts.forEach((p, i) => frame.set(p, offsets[i][0]));
  return frame.buffer;
}

/**
 * `JSON.stringify` for messages: typed arrays become (nested, by their `shape`) arrays,
 * ArrayBuffers and DataViews arrays of byte values, and BigInts numbers (when exact).
 */
export function jsonStringify(value: unknown): string {
  // A replacer function costs V8 its fast path: 1M numbers take 2x as long (300 ms
  // against 150 here). Most messages need none, and finding out is a cheap walk.
  if (!needsReplacer(value, new Set())) return JSON.stringify(value);
  return JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
    const raw = this[key]; // before toJSON: a Node Buffer's toJSON would hide it
    if (ArrayBuffer.isView(raw) || raw instanceof ArrayBuffer) v = raw;
    if (typeof v === "bigint") {
      if (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER)) return Number(v);
      throw new LiaisonError("EncodingError", `the BigInt ${v} does not fit a JSON number exactly; send it as a string, or use binary: true with a BigInt64Array`);
    }
    if (v instanceof ArrayBuffer) return Array.from(new Uint8Array(v));
    if (ArrayBuffer.isView(v)) {
      if (v instanceof DataView) return Array.from(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
      const flat = Array.from(v as unknown as ArrayLike<number | bigint>, (x) => (typeof x === "bigint" ? Number(x) : x));
      const shape = (v as { shape?: unknown }).shape;
      if (Array.isArray(shape) && shape.length > 1 && shape.reduce((a: number, b: number) => a * b, 1) === flat.length) return nest(flat, shape as number[]);
      return flat;
    }
    return v;
  });
}

/**
 * False only if plain `JSON.stringify(value)` gives what the replacer would: no BigInt,
 * typed array, DataView or ArrayBuffer, and no `toJSON` (which might return one), anywhere.
 * A cycle also answers true, so that the replacer's pass reports it as before.
 */
function needsReplacer(value: unknown, seen: Set<unknown>): boolean {
  if (typeof value === "bigint") return true;
  if ((typeof value !== "object" && typeof value !== "function") || value === null) return false;
  if (seen.has(value) || isBinaryValue(value)) return true;
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") return true;
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === "number" || typeof item === "string" || typeof item === "boolean") continue; // most items
      if (needsReplacer(item, seen)) return true;
    }
  } else {
    for (const key of Object.keys(value)) {
      if (needsReplacer((value as Record<string, unknown>)[key], seen)) return true;
    }
  }
  seen.delete(value); // shared (not cyclic) references are fine
  return false;
}

function nest(flat: unknown[], shape: number[]): unknown[] {
  if (shape.length <= 1) return flat;
  const step = flat.length / shape[0];
  const out: unknown[] = [];
  for (let i = 0; i < shape[0]; i++) out.push(nest(flat.slice(i * step, (i + 1) * step), shape.slice(1)));
  return out;
}
