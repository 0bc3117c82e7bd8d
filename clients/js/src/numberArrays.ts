/**
 * Plain Arrays of numbers sent raw (protocol.md, "Binary frames", list placeholders):
 * the liaison rebuilds the list JSON text would have given it, element for element.
 * JSON prints an integral number below 1e21 in magnitude without `.` or exponent
 * (Python reads an int) and NaN and ±Infinity as `null`; every other number is a float.
 * So an Array of 32-bit integers travels as int32, any other as float64 plus the
 * indices (uint32) of its integral and of its non-finite elements.
 */

/**
 * Plain Arrays of at least this many numbers travel raw. Below it JSON text is as fast
 * (measured with `run builtins:len`, sin values, median of 200 calls: 340 us JSON against
 * 370 raw at 512, 420 against 370 at 1024, 3.4 ms against 1.0 at 16384; bench/README.md,
 * "Large JSON arguments").
 */
export const NUMBER_ARRAY_MIN = 1024;

/**
 * Past this share of integral and non-finite elements (a 4-byte index each, and a Python
 * `int()` each on the liaison), a float64 Array goes as JSON text, whose short integers
 * are cheap. Measured on 262,144 elements: at a share of 0.25, 33 ms raw against 46 JSON;
 * at 0.4, 47 against 40; all integers (not int32), 86-90 against 17-61.
 */
export const INDEXED_SHARE_MAX = 0.25;

/** The buffers and placeholder fields of one number Array. */
export interface NumberArrayParts {
  dtype: "float64" | "int32";
  values: Uint8Array;
  ints?: Uint8Array;
  nulls?: Uint8Array;
}

function bytesOf(view: Float64Array | Int32Array | Uint32Array): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** True if `value` is an Array long enough for {@link numberArrayParts} to be worth trying. */
export function isLongArray(value: unknown): value is unknown[] {
  return Array.isArray(value) && value.length >= NUMBER_ARRAY_MIN;
}

/**
 * The raw form of `array` (native byte order: the caller swaps on big-endian hosts), or
 * `null` if it must stay JSON text: an element is not a number (or a hole), or too many
 * elements need an index.
 */
export function numberArrayParts(array: unknown[]): NumberArrayParts | null {
  const n = array.length;
  let int32 = true;
  for (let i = 0; i < n; i++) {
    const x = array[i];
    if (typeof x !== "number") return null;
    if (int32 && x !== (x | 0)) int32 = false; // -0 passes, and JSON prints it "0"
  }
  if (int32) return { dtype: "int32", values: bytesOf(Int32Array.from(array as number[])) };
  const values = new Float64Array(n);
  const ints: number[] = [];
  const nulls: number[] = [];
  const most = n * INDEXED_SHARE_MAX;
  for (let i = 0; i < n; i++) {
    const x = array[i] as number;
    values[i] = x;
    if (x % 1 === 0) {
      if (Math.abs(x) < 1e21) ints.push(i); // else JSON prints an exponent: a float
    } else if (x - x !== 0) {
      nulls.push(i); // NaN or ±Infinity
    } else continue;
    if (ints.length + nulls.length > most) return null;
  }
  const parts: NumberArrayParts = { dtype: "float64", values: bytesOf(values) };
  if (ints.length) parts.ints = bytesOf(Uint32Array.from(ints));
  if (nulls.length) parts.nulls = bytesOf(Uint32Array.from(nulls));
  return parts;
}
