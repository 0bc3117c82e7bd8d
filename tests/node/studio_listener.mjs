// A client written the way PsychoPy Studio's launcher (electron/src/python/liaison.js) is:
// one call at a time, each with its own "message" listener that parses every incoming
// message and reads data.evt.id until its reply arrives, resolving on `"response" in data`.
// A pushed message (no evt) reaching such a listener throws a TypeError in the listener,
// which Node reports as an uncaught exception (Electron shows an error dialog).
//
//   node --experimental-websocket studio_listener.mjs ws://127.0.0.1:PORT COUNT
// Prints {"throws": n, "alerts": [...], "replies": [...], "order": [...]} as JSON.
const [url, countText] = process.argv.slice(2);
const count = Number(countText);
const throws = [];
process.on("uncaughtException", (error) => throws.push(String(error)));

const socket = new WebSocket(url);
await new Promise((resolve, reject) => {
  socket.onopen = resolve;
  socket.onerror = reject;
});
const alerts = [];
const order = []; // "reply:<id>" and "alert:<text>", as they arrived
socket.addEventListener("message", (event) => {
  const msg = JSON.parse(event.data);
  if (msg.tag === "alert") {
    alerts.push(msg.text);
    order.push(`alert:${msg.text}`);
  }
});

let pending = [];
let counter = 0;
async function send(command) {
  await Promise.allSettled(pending);
  const id = `call-${++counter}`;
  socket.send(JSON.stringify({ command, id }));
  const promise = new Promise((resolve, reject) => {
    const listener = (event) => {
      const data = JSON.parse(event.data);
      if (data.evt.id !== id) return; // throws for a message without evt, as Studio's does
      socket.removeEventListener("message", listener);
      order.push(`reply:${id}`);
      if ("response" in data) resolve(data.response);
      else reject(data);
    };
    socket.addEventListener("message", listener);
  });
  pending.push(promise);
  return promise;
}

const replies = [];
await send({ command: "init", args: ["alerts", "remote_helpers:Pusher"], kwargs: { liaison: "$liaison" } });
for (let i = 0; i < count; i++) {
  replies.push(await send({ command: "run", args: ["alerts.alert", `compile ${i}`] }));
}
// One more call, so the last alert has surely arrived before we report.
await send({ command: "ping" });
socket.close();
console.log(JSON.stringify({ throws, alerts, replies, order }));
