/**
 * The memory the client's thread and the liaison's worker share (a SharedArrayBuffer),
 * through which the client's side interrupts a running synchronous command without the
 * worker's cooperation: Pyodide checks word 0 (its interrupt buffer) between bytecodes
 * and runs Python's SIGINT handler, which is the host's (liaison.server.transports.pyodide).
 *
 * Words (Int32): 0 the interrupt buffer (2: SIGINT); 1 the number of the synchronous
 * command running (0: none), written by the worker; 2 what the client's side asks
 * (0 nothing, 1 cancel, 2 timeout); 3 the command number a timeout is for; 4 the byte
 * length of the cancelled request's id as JSON, whose UTF-8 bytes start at byte 32.
 */

export const SHARED_BYTES = 512;
const INTERRUPT = 0;
const RUNNING = 1;
const KIND = 2;
const TIMEOUT_SEQ = 3;
const ID_LENGTH = 4;
const ID_AT = 32;
const ID_MAX = SHARED_BYTES - ID_AT;
const SIGINT = 2;
const CANCEL = 1;
const TIMEOUT = 2;
// Pyodide reads the interrupt buffer and then zeroes it, not atomically: a write landing
// between the two is lost (about one in ten interrupts of a busy loop, measured). Until
// the worker has taken the request (word 2 back to 0), the buffer is written again this
// often (ms), for at most this long (ms: a dead worker takes nothing).
const REPEAT_MS = 10;
const REPEAT_FOR_MS = 10_000;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();

/** The interrupt buffer for `pyodide.setInterruptBuffer`. */
export function interruptBuffer(shared: SharedArrayBuffer): Int32Array {
  return new Int32Array(shared, 0, 1);
}

/** The client's thread: interrupt the running command if it is `seq` (a timeout) or may be `id` (a cancel). */
export class Interrupter {
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;
  #repeat: ReturnType<typeof setInterval> | undefined;

  constructor(shared: SharedArrayBuffer) {
    this.#words = new Int32Array(shared);
    this.#bytes = new Uint8Array(shared);
  }

  /** True while a synchronous command runs in the worker. */
  get busy(): boolean {
    return Atomics.load(this.#words, RUNNING) !== 0;
  }

  /** Interrupt command `seq` if it still runs; its timeout passed. */
  timeout(seq: number): void {
    if (Atomics.load(this.#words, RUNNING) !== seq) return;
    Atomics.store(this.#words, TIMEOUT_SEQ, seq);
    this.#ask(TIMEOUT);
  }

  /**
   * Interrupt the running command if its id is `id` (the worker decides); if it has not
   * run yet, it is cancelled when its turn comes. Only while a synchronous command
   * runs: otherwise the worker reads the cancel message itself.
   */
  cancel(id: unknown): void {
    if (!this.busy) return;
    const text = utf8Encoder.encode(JSON.stringify(id) ?? "null");
    if (text.length > ID_MAX) return; // ids are short; a longer one waits for its cancel message
    this.#bytes.set(text, ID_AT);
    Atomics.store(this.#words, ID_LENGTH, text.length);
    this.#ask(CANCEL);
  }

  /** Stop writing the buffer (the worker is gone). */
  close(): void {
    clearInterval(this.#repeat);
    this.#repeat = undefined;
  }

  #ask(kind: number): void {
    Atomics.store(this.#words, KIND, kind);
    Atomics.store(this.#words, INTERRUPT, SIGINT);
    if (this.#repeat !== undefined) return;
    const until = Date.now() + REPEAT_FOR_MS;
    this.#repeat = setInterval(() => {
      if (Atomics.load(this.#words, KIND) === 0 || Date.now() > until) this.close();
      else Atomics.store(this.#words, INTERRUPT, SIGINT);
    }, REPEAT_MS);
    (this.#repeat as { unref?: () => void }).unref?.(); // Node: never what keeps it running
  }
}

/** The worker: what the host (Python's SyncInterrupts) calls. */
export class InterruptRequests {
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #arm: (seq: number, ms: number) => void;

  /** `arm(seq, ms)` asks the client's thread to time command `seq` out in `ms`. */
  constructor(shared: SharedArrayBuffer, arm: (seq: number, ms: number) => void) {
    this.#words = new Int32Array(shared);
    this.#bytes = new Uint8Array(shared);
    this.#arm = arm;
  }

  running(seq: number, timeout: number | undefined | null): void {
    Atomics.store(this.#words, RUNNING, seq);
    if (seq !== 0 && typeof timeout === "number") this.#arm(seq, Math.max(0, timeout * 1000));
  }

  take(): string | undefined {
    const kind = Atomics.exchange(this.#words, KIND, 0);
    if (kind === TIMEOUT) return `timeout:${Atomics.load(this.#words, TIMEOUT_SEQ)}`;
    if (kind === CANCEL) {
      const length = Atomics.load(this.#words, ID_LENGTH);
      // A copy: TextDecoder refuses views of shared memory.
      return `cancel:${utf8Decoder.decode(this.#bytes.slice(ID_AT, ID_AT + length))}`;
    }
    return undefined;
  }
}
