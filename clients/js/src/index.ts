/**
 * liaison-client: drive a Python liaison over a WebSocket.
 *
 * This is the browser-safe entry (no Node built-ins). In Node and Electron's main
 * process, `liaison-client/node` re-exports all of it and adds `spawnLiaison`.
 */
export { connect, Liaison, CLIENT_TIMEOUT_GRACE, newId, openSocket, resolveWebSocket, tokenUrl } from "./client.js";
export type { CallOptions, CloseInfo, ConnectOptions, Handler, WebSocketConstructor, WebSocketLike } from "./client.js";
export { CallCancelled, CallTimeout, ConnectFailed, ConnectionLost, LiaisonError, RemoteError, SpawnError } from "./errors.js";
export { kw } from "./proxy.js";
export type { Keywords, PyAttribute, PyProxy } from "./proxy.js";
export { bytes, decodeFrame, dtypeOf, encodeFrame, encodeMessage, jsonStringify, ndarray, normalizeDtype, viewBuffer } from "./binary.js";
export type { FrameOptions, NDArray, TypedArray } from "./binary.js";
export { INDEXED_SHARE_MAX, NUMBER_ARRAY_MIN } from "./numberArrays.js";

/** The marker a liaison writes to stdout once it listens: `LIAISON:CONNECTED@HOST:PORT`. */
export const START_MARKER = "LIAISON:CONNECTED";
/** The marker a liaison writes to stdout when it stops: `LIAISON:DISCONNECTED@HOST:PORT`. */
export const STOP_MARKER = "LIAISON:DISCONNECTED";
