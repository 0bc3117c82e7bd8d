// Unit tests of the binary frame codec (protocol.md, "Binary frames"), on frames built here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { bytes, decodeFrame, encodeFrame, jsonStringify, ndarray, LiaisonError } from "../dist/index.js";

/** Builds a frame the way the protocol describes, independently of encodeFrame. */
function buildFrame(message, buffers, { headerPad = 0 } = {}) {
  const enc = new TextEncoder();
  let offsets = [];
  let header;
  let len = 0;
  for (;;) {
    let pos = Math.ceil((4 + len) / 8) * 8;
    offsets = buffers.map((b) => {
      const at = pos;
      pos = Math.ceil((pos + b.byteLength) / 8) * 8;
      return [at, b.byteLength];
    });
    header = enc.encode(JSON.stringify({ ...message, buffers: offsets }) + " ".repeat(headerPad));
    if (header.byteLength === len) break;
    len = header.byteLength;
  }
  const end = offsets.length ? offsets.at(-1)[0] + offsets.at(-1)[1] : 4 + header.byteLength;
  const frame = new Uint8Array(end);
  new DataView(frame.buffer).setUint32(0, header.byteLength, true);
  frame.set(header, 4);
  buffers.forEach((b, i) => frame.set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), offsets[i][0]));
  return { frame: frame.buffer, offsets };
}

test("decodes a float64 2x3 array as a zero-copy Float64Array view with shape and dtype", () => {
  const data = new Float64Array([1, 2, 3, 4, 5, 6.5]);
  const { frame, offsets } = buildFrame(
    { response: { $buffer: 0, dtype: "float64", shape: [2, 3] }, tag: "response", id: "a" },
    [data],
  );
  const msg = decodeFrame(frame);
  assert.ok(msg.response instanceof Float64Array);
  assert.deepEqual(Array.from(msg.response), [1, 2, 3, 4, 5, 6.5]);
  assert.deepEqual(msg.response.shape, [2, 3]);
  assert.equal(msg.response.dtype, "float64");
  assert.equal(msg.response.buffer, frame, "a view on the frame, not a copy");
  assert.equal(msg.response.byteOffset, offsets[0][0]);
  assert.equal(msg.id, "a");
  assert.equal(msg.tag, "response");
});

test("decodes every numeric dtype, bool and bytes, nested anywhere in the reply", () => {
  const cases = [
    ["float32", Float32Array, [1.5, -2]],
    ["int8", Int8Array, [-128, 127]],
    ["int16", Int16Array, [-32768, 32767]],
    ["int32", Int32Array, [-5, 7]],
    ["uint8", Uint8Array, [0, 255]],
    ["uint16", Uint16Array, [0, 65535]],
    ["uint32", Uint32Array, [0, 4294967295]],
    ["int64", BigInt64Array, [-(2n ** 63n), 2n ** 62n]],
    ["uint64", BigUint64Array, [0n, 2n ** 64n - 1n]],
    ["bool", Uint8Array, [1, 0]],
  ];
  const buffers = cases.map(([, C, v]) => new C(v));
  buffers.push(new TextEncoder().encode("héllo"));
  const response = {
    arrays: cases.map(([dtype], i) => ({ $buffer: i, dtype, shape: [2] })),
    nested: [{ deep: { $buffer: cases.length, dtype: "bytes" } }],
    plain: [1, "two", null],
  };
  const { frame } = buildFrame({ response, tag: "response", id: 7 }, buffers);
  const msg = decodeFrame(frame);
  msg.response.arrays.forEach((arr, i) => {
    const [dtype, C, values] = cases[i];
    assert.ok(arr instanceof C, `${dtype} → ${C.name}`);
    assert.deepEqual(Array.from(arr), values, dtype);
    assert.equal(arr.dtype, dtype);
    assert.deepEqual(arr.shape, [2]);
  });
  const b = msg.response.nested[0].deep;
  assert.ok(b instanceof Uint8Array);
  assert.equal(b.dtype, "bytes");
  assert.equal(new TextDecoder().decode(b), "héllo");
  assert.deepEqual(msg.response.plain, [1, "two", null]);
});

test("leaves evt alone (its placeholders refer to the client's frame) and copies misaligned buffers", () => {
  const data = new Float64Array([3, 4]);
  const { frame, offsets } = buildFrame(
    { response: { $buffer: 0, dtype: "float64", shape: [2] }, evt: { command: { args: [{ $buffer: 0, dtype: "int8" }] } } },
    [data],
  );
  const msg = decodeFrame(frame);
  assert.deepEqual(msg.evt.command.args[0], { $buffer: 0, dtype: "int8" });
  // Move the buffer to an odd offset: still decoded (as a copy), not a RangeError.
  const shifted = new Uint8Array(frame.byteLength + 1);
  shifted.set(new Uint8Array(frame));
  const view = new DataView(shifted.buffer);
  const hlen = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(shifted.subarray(4, 4 + hlen)));
  header.buffers[0][0] = offsets[0][0] + 1;
  shifted.copyWithin(offsets[0][0] + 1, offsets[0][0], offsets[0][0] + 16);
  const text = new TextEncoder().encode(JSON.stringify(header).padEnd(hlen, " "));
  assert.equal(text.byteLength, hlen);
  shifted.set(text, 4);
  const again = decodeFrame(shifted.buffer);
  assert.deepEqual(Array.from(again.response), [3, 4]);
});

test("decodes a frame given as a Node Buffer / Uint8Array view", () => {
  const { frame } = buildFrame({ response: { $buffer: 0, dtype: "int32", shape: [3] } }, [new Int32Array([1, 2, 3])]);
  const msg = decodeFrame(Buffer.from(frame));
  assert.deepEqual(Array.from(msg.response), [1, 2, 3]);
});

test("rejects malformed frames with a ProtocolError", () => {
  assert.throws(() => decodeFrame(new ArrayBuffer(2)), (e) => e instanceof LiaisonError && e.type === "ProtocolError");
  const bad = new Uint8Array(8);
  new DataView(bad.buffer).setUint32(0, 100, true);
  assert.throws(() => decodeFrame(bad.buffer), /100 bytes of JSON/);
  const { frame } = buildFrame({ response: { $buffer: 3, dtype: "float64" } }, []);
  assert.throws(() => decodeFrame(frame), /buffer 3/);
});

test("encodeFrame lays out typed arrays at 8-aligned offsets and round-trips through decodeFrame", () => {
  const a = ndarray(new Float64Array([1, 2, 3, 4, 5, 6]), [3, 2]);
  const b = new Int16Array([1, -1, 3]);
  const c = new Float32Array(new Float32Array([9, 8, 7, 6]).buffer, 4, 2); // a view with an offset
  const raw = bytes(new TextEncoder().encode("raw"));
  const frame = encodeFrame({ command: { command: "run", args: ["numpy:sum", a], kwargs: { w: b, c, raw, ab: new Uint8Array([1, 2]).buffer } }, id: "x", binary: true });
  const view = new DataView(frame);
  const hlen = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(frame, 4, hlen)));
  assert.equal(header.id, "x");
  assert.deepEqual(header.command.args[1], { $buffer: 0, dtype: "float64", shape: [3, 2] });
  assert.deepEqual(header.command.kwargs.w, { $buffer: 1, dtype: "int16", shape: [3] });
  assert.deepEqual(header.command.kwargs.c, { $buffer: 2, dtype: "float32", shape: [2] });
  assert.deepEqual(header.command.kwargs.raw, { $buffer: 3, dtype: "bytes" });
  assert.deepEqual(header.command.kwargs.ab, { $buffer: 4, dtype: "bytes" });
  assert.equal(header.buffers.length, 5);
  for (const [offset] of header.buffers) assert.equal(offset % 8, 0);
  assert.ok(header.buffers[0][0] >= 4 + hlen);
  // Decoding the same layout gives the arrays back.
  const back = decodeFrame(frame);
  assert.deepEqual(Array.from(back.command.args[1]), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(back.command.args[1].shape, [3, 2]);
  assert.deepEqual(Array.from(back.command.kwargs.c), [8, 7]);
  assert.equal(new TextDecoder().decode(back.command.kwargs.raw), "raw");
  assert.deepEqual(Array.from(back.command.kwargs.ab), [1, 2]);
});

test("encodeFrame keeps a consistent header length across the digit-count boundary", () => {
  // Header lengths around 100/1000 change the offsets' digit counts; try many sizes.
  for (let n = 0; n < 400; n += 7) {
    const frame = encodeFrame({ pad: "x".repeat(n), a: new Float64Array([n]), b: new Uint8Array(n % 13) });
    const back = decodeFrame(frame);
    assert.equal(back.a[0], n);
    assert.equal(back.b.length, n % 13);
  }
});

test("jsonStringify turns typed arrays into (nested) arrays and refuses inexact BigInts", () => {
  assert.equal(jsonStringify({ a: new Float64Array([1, 2]) }), '{"a":[1,2]}');
  assert.equal(jsonStringify({ a: ndarray(new Int32Array([1, 2, 3, 4, 5, 6]), [2, 3]) }), '{"a":[[1,2,3],[4,5,6]]}');
  assert.equal(jsonStringify({ b: Buffer.from([1, 2]) }), '{"b":[1,2]}');
  assert.equal(jsonStringify({ n: 5n, l: new BigInt64Array([3n]) }), '{"n":5,"l":[3]}');
  assert.throws(() => jsonStringify({ n: 2n ** 60n }), (e) => e.type === "EncodingError");
});

test("jsonStringify finds typed arrays, BigInts and toJSON anywhere, and is JSON.stringify without them", () => {
  const deep = { k: [1, "a", [true, null, { x: [2.5, new Uint8Array([7])] }]] };
  assert.equal(jsonStringify(deep), '{"k":[1,"a",[true,null,{"x":[2.5,[7]]}]]}');
  assert.equal(jsonStringify([[{ n: [4n] }]]), "[[{\"n\":[4]}]]");
  assert.equal(jsonStringify({ a: [new ArrayBuffer(2)] }), '{"a":[[0,0]]}');
  const custom = { toJSON: () => new Float32Array([0.5]) };
  assert.equal(jsonStringify({ c: [custom] }), '{"c":[[0.5]]}');
  const when = new Date(0);
  assert.equal(jsonStringify({ when, b: [Buffer.from([9])] }), `{"when":${JSON.stringify(when)},"b":[[9]]}`);
  const shared = [1, 2];
  const plain = { a: shared, b: [shared, { s: shared }], big: Array.from({ length: 5000 }, (_, i) => i / 7), f() {} };
  assert.equal(jsonStringify(plain), JSON.stringify(plain));
  const cyclic = { list: [1] };
  cyclic.list.push(cyclic);
  assert.throws(() => jsonStringify(cyclic), TypeError);
});
