// The Node example of liaison-py 1.0's README, run as written but with its two bugs fixed:
// `spawn` of a command string needs `shell: true`, and the reply filter must be `===`
// (it was `!==`, which took the first message that was NOT the reply). And since Node 20
// lacks `Promise.withResolvers` (Node >= 22), a three-line stand-in replaces it.
//
// It uses no liaison-client: it is what a 1.0 frontend does by hand, and shows that it
// still works against this liaison.
//
//   node examples/seed-readme.mjs
//
// Prints one JSON line: {"response": [statistic, pvalue], "pid": <liaison pid>, "address": "HOST:PORT"}.
// Environment: LIAISON_PYTHON (default: the repository's .venv, else python3; see
// python.mjs), LIAISON_ADDRESS (default "127.0.0.1:0", port 0 picks a free port, read
// back from the start marker).
import proc from "node:child_process";
import { python } from "./python.mjs";

const requestedAddress = process.env.LIAISON_ADDRESS ?? "127.0.0.1:0";
// Node 20 has a global WebSocket only with --experimental-websocket; else use `ws`.
const WebSocket = globalThis.WebSocket ?? (await import("ws")).WebSocket;

const withResolvers = () => {
  let resolve, reject;
  const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
};

// binary decoder for the child's stdout
const decoder = new TextDecoder();
// get liaison constants (a Python without liaison fails here: say so, not a stack trace)
let liaisonConstants;
try {
  liaisonConstants = JSON.parse(proc.execSync(`${python} -m liaison.constants`, { stdio: "pipe" }));
} catch (error) {
  const why = String(error.stderr ?? error.message).trim().split("\n").at(-1);
  console.error(
    `${python} cannot run liaison (${why}). Set LIAISON_PYTHON to a Python with ` +
      `liaison-backend installed, e.g. the repository's .venv/bin/python.`,
  );
  process.exit(1);
}
// start process running liaison (a command string: it needs a shell)
const liaisonProcess = proc.spawn(`${python} -m liaison.websocket ${requestedAddress}`, { shell: true });
let stderr = "";
liaisonProcess.stderr.on("data", (chunk) => (stderr += chunk));
// wait for started message, which names the address really bound
const liaisonStarted = withResolvers();
liaisonProcess.stdout.on("data", (evt) => {
  const text = decoder.decode(evt);
  if (text.startsWith(`${liaisonConstants.START_MARKER}@`)) {
    liaisonStarted.resolve(text.slice(liaisonConstants.START_MARKER.length + 1));
  }
});
liaisonProcess.on("exit", (code) => liaisonStarted.reject(new Error(`liaison exited with ${code} before it started:\n${stderr}`)));
const address = await liaisonStarted.promise;
// create websocket to send messages over
const liaisonSocket = new WebSocket(`ws://${address}`);
await new Promise((resolve, reject) => {
  liaisonSocket.addEventListener("open", resolve, { once: true });
  liaisonSocket.addEventListener("error", reject, { once: true });
});

/** Sends one command and resolves with its response (rejects with the error reply). */
function send(command, args, kwargs = {}) {
  const cmd = { command: { command, args, kwargs }, id: crypto.randomUUID() };
  liaisonSocket.send(JSON.stringify(cmd));
  const replied = withResolvers();
  const lsnr = (evt) => {
    const data = JSON.parse(evt.data);
    // if message is a reply to our command... (`evt` is absent from pushed messages)
    if (data.evt?.id === cmd.id) {
      liaisonSocket.removeEventListener("message", lsnr);
      if ("response" in data) replied.resolve(data.response);
      else replied.reject(data);
    }
  };
  liaisonSocket.addEventListener("message", lsnr);
  return replied.promise;
}

try {
  // the README's T-Test in scipy
  const a = [0.5982758, 0.67019733, 0.68617796, 0.28764011];
  const b = [0.41138649, 1.67023998, 1.0420896, 1.49671732];
  const response = await send("run", ["scipy.stats:ttest_ind", a, b], { equal_var: false });
  const pid = await send("run", ["os:getpid"]);
  console.log(JSON.stringify({ response, pid, address }));
} finally {
  liaisonSocket.close();
  // Kills the shell; if the shell did not exec python, python is orphaned and exits
  // by itself once it notices (the liaison polls its parent).
  liaisonProcess.kill();
}
