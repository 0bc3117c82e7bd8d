/// <reference types="node" />
/**
 * The stdio transport's client side: a {@link WebSocketLike} over a child's stdin and
 * stdout, so `Liaison` (client.ts) runs over it unchanged. Used by node.ts; it imports no
 * Node module itself (bytes are plain Uint8Arrays, which Node's Buffers are).
 *
 * The framing is the liaison's (docs/protocol.md, "The stdio transport"): a text message
 * is one line of UTF-8 JSON; a binary frame is a header line `#N`, N raw bytes and a
 * newline. The first line from the child is the start marker, the last the stop marker.
 */
import type { Readable, Writable } from "node:stream";
import type { WebSocketLike } from "./client.js";

const NEWLINE = 0x0a;
const HASH = 0x23;
const HEADER_DIGITS = 20; // a longer "#..." line is no header (as core/lines.py)
const utf8 = new TextDecoder();

function concat(parts: Uint8Array[]): Uint8Array {
  const whole = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    whole.set(part, at);
    at += part.length;
  }
  return whole;
}

type Listener = (event: any) => void;

/** One piece of what {@link LineReader.feed} splits: a text line or a binary frame. */
export type Piece = string | ArrayBuffer;

/** Splits a byte stream into text lines and binary frames; throws on a bad header. */
export class LineReader {
  #chunks: Uint8Array[] = []; // bytes of an unfinished line (holding no newline) or frame
  #length = 0;
  #frameSize: number | null = null; // set while a binary frame's bytes come in

  /** The messages completed by `chunk`, in order. */
  feed(chunk: Uint8Array): Piece[] {
    const pieces: Piece[] = [];
    let rest = chunk;
    while (rest.length > 0) {
      if (this.#frameSize !== null) {
        const wanted = this.#frameSize + 1 - this.#length; // the frame and its newline
        if (rest.length < wanted) {
          this.#keep(rest);
          break;
        }
        const frame = this.#take(rest.subarray(0, wanted - 1));
        rest = rest.subarray(wanted);
        this.#frameSize = null;
        pieces.push(frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.length) as ArrayBuffer);
        continue;
      }
      // Only the new bytes are searched: what is kept holds no newline.
      const end = rest.indexOf(NEWLINE);
      if (end < 0) {
        this.#keep(rest);
        break;
      }
      const line = this.#take(rest.subarray(0, end));
      rest = rest.subarray(end + 1);
      if (line.length === 0) continue; // blank lines are skipped
      if (line[0] === HASH) {
        const digits = String.fromCharCode(...line.subarray(1, HEADER_DIGITS + 2));
        if (!/^\d+$/.test(digits) || digits.length > HEADER_DIGITS) throw new Error(`bad binary frame header ${JSON.stringify("#" + digits)}`);
        this.#frameSize = Number(digits);
      } else {
        pieces.push(utf8.decode(line));
      }
    }
    return pieces;
  }

  #keep(bytes: Uint8Array): void {
    this.#chunks.push(bytes);
    this.#length += bytes.length;
  }

  /** What is kept followed by `last`, as one buffer; nothing is kept after. */
  #take(last: Uint8Array): Uint8Array {
    const whole = this.#chunks.length === 0 ? last : concat([...this.#chunks, last]);
    this.#chunks = [];
    this.#length = 0;
    return whole;
  }
}

/** `text` (JSON) as one line: newlines (only whitespace in JSON) become spaces; a leading `#` gets a space. */
export function encodeTextLine(text: string): string {
  let line = text.includes("\n") ? text.replace(/\n/g, " ") : text;
  if (line.startsWith("#")) line = " " + line;
  return line + "\n";
}

/**
 * A {@link WebSocketLike} over a child's pipes. It is OPEN once the child's first line,
 * `startMarker`, has come (`onStarted` is then called); `close()` ends the child's stdin,
 * which stops a stdio liaison. It closes (a `close` event, code 1000 if the stop marker
 * came first, else 1006) when the child's stdout ends.
 */
export class PipeSocket implements WebSocketLike {
  readyState = 0;
  binaryType = "arraybuffer";
  #input: Writable;
  #listeners = new Map<string, Set<Listener>>();
  #reader = new LineReader();
  #stopMarker: string;
  #stopped = false;

  constructor(input: Writable, output: Readable, markers: { start: string; stop: string }, onStarted: () => void, onBadStart: (line: string) => void) {
    this.#input = input;
    this.#stopMarker = markers.stop;
    input.on("error", () => undefined); // EPIPE once the child is gone: the close follows
    output.on("data", (chunk: Uint8Array) => {
      let pieces: Piece[];
      try {
        pieces = this.#reader.feed(chunk);
      } catch (e) {
        this.#emit("error", { error: e });
        this.close();
        return;
      }
      for (const piece of pieces) {
        if (this.readyState === 0) {
          if (piece === markers.start) {
            this.readyState = 1;
            onStarted();
          } else {
            onBadStart(typeof piece === "string" ? piece : `a binary frame of ${piece.byteLength} bytes`);
          }
        } else if (piece === this.#stopMarker) {
          this.#stopped = true;
        } else {
          this.#emit("message", { data: piece });
        }
      }
    });
    output.once("close", () => {
      const clean = this.#stopped;
      this.readyState = 3;
      this.#emit("close", { code: clean ? 1000 : 1006, reason: clean ? "the liaison stopped" : "", wasClean: clean });
    });
  }

  send(data: string | ArrayBuffer | ArrayBufferView): void {
    if (this.readyState !== 1) throw new Error("the liaison's stdin is closed");
    if (typeof data === "string") {
      this.#input.write(encodeTextLine(data));
      return;
    }
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.#input.write(`#${bytes.length}\n`);
    this.#input.write(bytes);
    this.#input.write("\n");
  }

  /**
   * Ends the child's stdin (EOF): a stdio liaison answers every message it has read,
   * then stops, and the close event follows.
   */
  close(): void {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    this.#input.end();
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
