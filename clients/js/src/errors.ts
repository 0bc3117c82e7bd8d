/**
 * The base class of every error liaison-client throws. The subclasses below carry the
 * Python client's names (`liaison.client`), so the same failure has the same class in
 * both: `RemoteError` (`CallCancelled`, `CallTimeout`), `ConnectFailed`,
 * `ConnectionLost`, `SpawnError`. Other failures (`AbortError`, `EncodingError`,
 * `ProtocolError`) are plain `LiaisonError`s.
 *
 * `type` is the Python exception type taken from the reply's `exception.type`
 * (`"ZeroDivisionError"`, `"TimeoutError"`, `"CancelledError"`, ...) or one of the
 * client-side types:
 *
 * | type | when |
 * |---|---|
 * | `ConnectionError` | the WebSocket could not be opened (refused, 401/403/503, bad URL) |
 * | `ConnectionClosed` | the connection closed (or `close()` was called) while the call was pending, or a call was made on a closed connection |
 * | `TimeoutError` | also used client-side: no connection / no reply within the timeout |
 * | `AbortError` | the call's `AbortSignal` fired and the server could not be asked to cancel (connection gone, or already aborted before sending) |
 * | `EncodingError` | an argument could not be encoded (e.g. a BigInt beyond 2^53 in a JSON message) |
 * | `ProtocolError` | the server sent something this client cannot read |
 * | `SpawnError` | `spawnLiaison` could not start the Python process (its stderr is in the message) |
 */
export class LiaisonError extends Error {
  /** The Python exception type, or a client-side type (see above). */
  readonly type: string;
  /** The Python traceback: the reply's `error` lines joined; `""` for client-side errors. */
  readonly traceback: string;
  /** The original reply from the liaison (`undefined` for client-side errors). */
  readonly reply: unknown;

  constructor(type: string, message: string, options: { traceback?: string; reply?: unknown; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.type = type;
    this.traceback = options.traceback ?? "";
    this.reply = options.reply;
  }

  /** Builds the error for a failure reply (`{"error": [...], "exception": {...}, ...}`). */
  static fromReply(reply: Record<string, unknown>): LiaisonError {
    const lines = Array.isArray(reply.error) ? reply.error.map(String) : typeof reply.error === "string" ? [reply.error] : [];
    const traceback = lines.join("");
    const exc = reply.exception && typeof reply.exception === "object" ? (reply.exception as Record<string, unknown>) : undefined;
    let type = typeof exc?.type === "string" ? exc.type : undefined;
    let message = typeof exc?.message === "string" ? exc.message : undefined;
    if (type === undefined || message === undefined) {
      // A liaison 1.0 reply has only the traceback: its last line is "Type: message".
      const last = lines.length ? lines[lines.length - 1].trim() : "";
      const m = /^([A-Za-z_][\w.]*)(?::\s?([\s\S]*))?$/.exec(last);
      type ??= m ? m[1].split(".").pop()! : "Error";
      message ??= m ? (m[2] ?? "") : last;
    }
    const Class = type === "CancelledError" ? CallCancelled : type === "TimeoutError" ? CallTimeout : RemoteError;
    return new Class(type, message, { traceback, reply });
  }

  override toString(): string {
    return `${this.name} [${this.type}]: ${this.message}`;
  }
}

/** The liaison answered a call with an error reply (`reply` holds it). */
export class RemoteError extends LiaisonError {}

/** The call was cancelled (`cancel`, an `AbortSignal`, or the liaison shutting down): type `CancelledError`. */
export class CallCancelled extends RemoteError {}

/**
 * The call ran past its timeout: type `TimeoutError`. Either the liaison replied so
 * (`reply` holds it), or no reply came in time and the client gave up (`reply` undefined).
 */
export class CallTimeout extends RemoteError {}

/** The connection could not be opened: type `ConnectionError`, or `TimeoutError` if it took too long. */
export class ConnectFailed extends LiaisonError {}

/** The connection closed while the call was pending, or before it was made: type `ConnectionClosed`. */
export class ConnectionLost extends LiaisonError {}

/** `spawnLiaison` could not start a liaison (its stderr is in the message): type `SpawnError`, or `TimeoutError`. */
export class SpawnError extends LiaisonError {}
